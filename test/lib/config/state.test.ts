import t from 'tap';
import { ConfigState, diffPools, parseConfigYAML, EMPTY_CONFIG } from '../../../lib/config/index.js';

const valid = (cidr: string, name = 'p') => parseConfigYAML(`apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: ${name}}\nspec:\n  addresses: [${cidr}]`);

t.test('an invalid configuration never replaces the last valid one', async (t) => {
  const state = new ConfigState();
  const rows: { desc: string; result: ReturnType<typeof parseConfigYAML>; accepted: boolean; changed: boolean; stale: boolean; current: string }[] = [
    { desc: 'starts empty, nothing loaded yet', result: valid('10.0.0.0/24'), accepted: true, changed: true, stale: false, current: 'p' },
    { desc: 'the same configuration again is accepted but unchanged', result: valid('10.0.0.0/24'), accepted: true, changed: false, stale: false, current: 'p' },
    { desc: 'an invalid one is refused and flagged stale', result: valid('10.0.0.0/33'), accepted: false, changed: false, stale: true, current: 'p' },
    { desc: 'another valid one replaces it and clears stale', result: valid('10.0.1.0/24', 'q'), accepted: true, changed: true, stale: false, current: 'q' },
  ];
  t.equal(state.current, EMPTY_CONFIG);
  t.notOk(state.loaded);
  for (const row of rows) {
    t.same(state.apply(row.result), { accepted: row.accepted, changed: row.changed, stale: row.stale }, row.desc);
    t.equal(state.stale, row.stale, `${row.desc}: stale`);
    t.same(state.current.pools.map((p) => p.name), [row.current], `${row.desc}: current`);
    t.equal(state.problems.length > 0, row.stale, `${row.desc}: problems kept while stale`);
    t.ok(state.loaded, `${row.desc}: loaded`);
  }
});

t.test('diffPools names what changed', async (t) => {
  const a = parseConfigYAML(`${'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: keep}\nspec: {addresses: [10.0.0.0/24]}'}\n---\napiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: gone}\nspec: {addresses: [10.0.1.0/24]}\n---\napiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: edit}\nspec: {addresses: [10.0.2.0/24]}`);
  const b = parseConfigYAML(`${'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: keep}\nspec: {addresses: [10.0.0.0/24]}'}\n---\napiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: edit}\nspec: {addresses: [10.0.2.0/25]}\n---\napiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: new}\nspec: {addresses: [10.0.3.0/24]}`);
  if (!a.ok || !b.ok) return t.fail('fixtures invalid');
  t.same(diffPools(a.config, b.config), { added: ['new'], removed: ['gone'], changed: ['edit'] });
  t.same(diffPools(a.config, a.config), { added: [], removed: [], changed: [] });
});
