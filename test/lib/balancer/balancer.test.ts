import t from 'tap';
import { Balancer, type BackendSpec } from '../../../lib/balancer/balancer.js';

const ready = (...ids: string[]): BackendSpec[] => ids.map((id) => ({ id, state: 'ready' as const }));
const picks = (b: Balancer, n: number, client = 'c', now = 0) => Array.from({ length: n }, () => { const p = b.pick(client, now); return 'backend' in p ? p.backend : p.none; });

t.test('round-robin skips what may not take new connections', async (t) => {
  const b = new Balancer({ mode: 'roundRobin', affinityTimeoutMs: 0 });
  const rows: { desc: string; act: () => void; expect: string[] }[] = [
    { desc: 'nothing configured', act: () => undefined, expect: ['noBackend'] },
    { desc: 'three ready backends, in turn', act: () => b.update(ready('a', 'b', 'c'), true), expect: ['a', 'b', 'c', 'a'] },
    { desc: 'an unhealthy one is skipped', act: () => b.setHealthy('b', false), expect: ['c', 'a', 'c'] },
    { desc: 'a terminating one gets no new connections', act: () => b.update([{ id: 'a', state: 'terminating' }, ...ready('b', 'c')], true), expect: ['c', 'c'] },
    { desc: 'a new backend without evidence is not healthy', act: () => b.update(ready('a', 'b', 'c', 'd'), false), expect: ['a', 'c', 'a'] },
    { desc: 'it joins once proven', act: () => b.setHealthy('d', true), expect: ['c', 'd', 'a'] },
    { desc: 'none healthy', act: () => ['a', 'b', 'c', 'd'].forEach((id) => b.setHealthy(id, false)), expect: ['noHealthyBackend'] },
  ];
  for (const row of rows) {
    row.act();
    t.same(picks(b, row.expect.length), row.expect, row.desc);
  }
});

t.test('excluded backends (a failed first try) are never picked again for that connection', async (t) => {
  const b = new Balancer({ mode: 'roundRobin', affinityTimeoutMs: 0 });
  b.update(ready('a', 'b'), true);
  t.same(b.pick('c', 0, new Set(['a'])), { backend: 'b' });
  t.same(b.pick('c', 0, new Set(['a', 'b'])), { none: 'noHealthyBackend' });
});

t.test('least connections, ties round-robin', async (t) => {
  const b = new Balancer({ mode: 'leastConnections', affinityTimeoutMs: 0 });
  b.update(ready('a', 'b', 'c'), true);
  b.opened('a'); b.opened('a'); b.opened('b');
  t.same(picks(b, 1), ['c'], 'the idle one');
  b.opened('c');
  t.same(picks(b, 1), ['b'], 'b and c tie at 1; the turn moves on from c');
  b.closed('a'); b.closed('a'); b.closed('a');
  t.equal(b.active('a'), 0, 'never below zero');
  t.same(picks(b, 1), ['a']);
  b.update(ready('a', 'b'), true);
  t.equal(b.active('b'), 1, 'counters survive an update for backends that stay');
});

t.test('ClientIP affinity sticks until the timeout, and yields to health', async (t) => {
  const b = new Balancer({ mode: 'roundRobin', affinityTimeoutMs: 1000 });
  b.update(ready('a', 'b'), true);
  t.same(picks(b, 3, 'x', 0), ['a', 'a', 'a'], 'one client, one backend');
  t.same(picks(b, 1, 'y', 0), ['b'], 'another client goes round-robin');
  t.same(picks(b, 1, 'x', 999), ['a'], 'each use extends the timeout');
  t.same(picks(b, 1, 'x', 1998), ['a']);
  t.same(picks(b, 1, 'x', 3000), ['a'], 'expired: chosen afresh (round-robin lands on a again)');
  b.setHealthy('a', false);
  t.same(picks(b, 1, 'x', 3001), ['b'], 'an unhealthy sticky backend is left');
  t.equal(b.expireAffinity(10_000), 2, 'expired entries are dropped');
});
