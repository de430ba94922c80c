import t from 'tap';
import { Allocator } from '../../../lib/allocator/allocator.js';
import { allocation, ip, labelsSelector, pool, req } from '../../helpers/alloc.js';
import { runScenario } from '../../helpers/scenario.js';

t.test('serviceAllocation pins pools by namespace, labels and priority', async (t) => {
  const config = {
    pools: [
      pool('general', ['10.0.0.0/32']),
      pool('team-a', ['10.1.0.0/32'], { serviceAllocation: allocation({ namespaces: ['team-a'], priority: 20 }) }),
      pool('team-a-vip', ['10.1.1.0/32'], { serviceAllocation: allocation({ namespaces: ['team-a'], priority: 10 }) }),
      pool('labelled-ns', ['10.2.0.0/32'], { serviceAllocation: allocation({ namespaceSelectors: [labelsSelector({ tier: 'gold' })] }) }),
      pool('web-only', ['10.3.0.0/32'], { serviceAllocation: allocation({ namespaces: ['shop'], serviceSelectors: [labelsSelector({ app: 'web' })] }) }),
      pool('manual', ['10.4.0.0/32'], { autoAssign: false, serviceAllocation: allocation({ namespaces: ['team-a'] }) }),
    ],
    l2Advertisements: [],
  };
  runScenario(t, config, [
    { desc: 'team-a: the lower priority number wins', allocate: req('s1', { ns: 'team-a' }), expect: 'team-a-vip:10.1.1.0' },
    { desc: 'team-a: then the next priority', allocate: req('s2', { ns: 'team-a' }), expect: 'team-a:10.1.0.0' },
    { desc: 'team-a: pinned pools full, falls back to general (autoAssign false pool skipped)', allocate: req('s3', { ns: 'team-a' }), expect: 'general:10.0.0.0' },
    { desc: 'team-a: all full', allocate: req('s4', { ns: 'team-a' }), expect: 'poolExhausted' },
    { desc: 'a pinned pool refuses other namespaces, even by annotation', allocate: req('x', { ns: 'other', pool: 'team-a' }), expect: 'poolNotCompatible' },
    { desc: 'and by requested IP', allocate: req('x', { ns: 'other', ips: ['10.4.0.0'] }), expect: 'poolNotCompatible' },
    { desc: 'a namespace labelled tier=gold', allocate: req('g', { ns: 'gold-ns', nsLabels: { tier: 'gold' } }), expect: 'labelled-ns:10.2.0.0' },
    { desc: 'shop/web matches namespace AND service selector', allocate: req('w', { ns: 'shop', labels: { app: 'web' } }), expect: 'web-only:10.3.0.0' },
    { desc: 'shop/db matches the namespace only: not admitted', allocate: req('d', { ns: 'shop', labels: { app: 'db' } }), expect: 'poolExhausted' },
    { desc: 'the autoAssign:false pinned pool by annotation', allocate: req('m', { ns: 'team-a', pool: 'manual' }), expect: 'manual:10.4.0.0' },
  ]);
});

t.test('configuration changes: removed, shrunk and regrouped pools', async (t) => {
  const before = { pools: [pool('a', ['10.0.0.0/30']), pool('b', ['10.0.1.0/30'])], l2Advertisements: [] };
  runScenario(t, before, [
    { desc: 's1 in a', allocate: req('s1'), expect: 'a:10.0.0.0' },
    { desc: 's2 in a', allocate: req('s2'), expect: 'a:10.0.0.1' },
    { desc: 's3 in b', allocate: req('s3', { pool: 'b' }), expect: 'b:10.0.1.0' },
    {
      desc: 'a shrinks to one address, b is removed: the Services outside are released',
      config: { pools: [pool('a', ['10.0.0.0/32']), pool('c', ['10.0.1.1/32'])], l2Advertisements: [] },
      expectReleased: ['default/s2', 'default/s3'],
    },
    { desc: 's1 kept its address', holders: '10.0.0.0', expect: ['default/s1'] },
    { desc: 's3 re-allocated: its annotated pool is gone', allocate: req('s3', { pool: 'b' }), expect: 'noSuchPool' },
    { desc: 's2 re-allocated into what is left', allocate: req('s2'), expect: 'c:10.0.1.1' },
    {
      desc: 'pool renamed with the same addresses: the Service moves silently',
      config: { pools: [pool('renamed', ['10.0.0.0/32']), pool('c', ['10.0.1.1/32'])], l2Advertisements: [] },
      expectReleased: [],
    },
    { desc: 's1 keeps its address in the renamed pool', allocate: req('s1'), expect: 'renamed:10.0.0.0' },
    {
      desc: 'avoidBuggyIPs turned on releases a .0 holder',
      config: { pools: [pool('renamed', ['10.0.0.0/31'], { avoidBuggyIPs: true }), pool('c', ['10.0.1.1/32'])], l2Advertisements: [] },
      expectReleased: ['default/s1'],
    },
  ]);
});

t.test('counters: assigned and available per family, IPv6 /64 included', async (t) => {
  const a = new Allocator();
  a.setConfig({ pools: [pool('p', ['10.0.0.0/24', 'fd00::/64'], { avoidBuggyIPs: true })], l2Advertisements: [] });
  t.same(a.counters('p'), { assignedIPv4: 0n, assignedIPv6: 0n, availableIPv4: 254n, availableIPv6: 2n ** 64n });
  a.allocate(req('s1', { share: 'k', ports: ['TCP/1'] }));
  a.allocate(req('s2', { share: 'k', ports: ['TCP/2'] }));
  a.allocate(req('s3', { families: [6] }));
  t.same(a.counters('p'), { assignedIPv4: 1n, assignedIPv6: 1n, availableIPv4: 253n, availableIPv6: 2n ** 64n - 1n }, 'a shared address counts once');
  a.release('default/s1');
  t.equal(a.counters('p')?.assignedIPv4, 1n, 'still held by s2');
  a.release('default/s2');
  t.equal(a.counters('p')?.assignedIPv4, 0n, 'freed with its last user');
  t.equal(a.counters('nope'), undefined);
  t.equal(a.poolOf('default/s3'), 'p');
  t.same(a.ipsOf('default/s3'), [ip('fd00::')]);
  t.equal(a.ipsOf('default/s1'), undefined);
});
