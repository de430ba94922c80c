import t from 'tap';
import { pool, req } from '../../helpers/alloc.js';
import { runScenario } from '../../helpers/scenario.js';

t.test('IP families: SingleStack, PreferDualStack, RequireDualStack', async (t) => {
  const config = {
    pools: [
      pool('a-v4', ['10.0.0.0/31']),
      pool('b-v6', ['fd00::/127']),
      pool('c-dual', ['10.1.0.0/32', 'fd01::/128']),
    ],
    l2Advertisements: [],
  };
  runScenario(t, config, [
    { desc: 'SingleStack IPv4 from the first pool by name', allocate: req('v4'), expect: 'a-v4:10.0.0.0' },
    { desc: 'SingleStack IPv6 skips IPv4-only pools', allocate: req('v6', { families: [6] }), expect: 'b-v6:fd00::' },
    { desc: 'RequireDualStack needs one pool with both', allocate: req('dual', { families: [4, 6], policy: 'RequireDualStack' }), expect: 'c-dual:10.1.0.0,fd01::' },
    { desc: 'RequireDualStack fails when no pool has both free', allocate: req('dual2', { families: [4, 6], policy: 'RequireDualStack' }), expect: 'poolExhausted' },
    { desc: 'PreferDualStack falls back to the primary family', allocate: req('pref', { families: [6, 4], policy: 'PreferDualStack' }), expect: 'b-v6:fd00::1' },
    { desc: 'PreferDualStack falls back to the secondary when the primary is gone', allocate: req('pref2', { families: [6, 4], policy: 'PreferDualStack' }), expect: 'a-v4:10.0.0.1' },
    { desc: 'a requested address must match the family', allocate: req('bad', { ips: ['fd00::1'] }), expect: 'invalidRequest' },
    { desc: 'RequireDualStack must request both families', allocate: req('bad', { families: [4, 6], policy: 'RequireDualStack', ips: ['10.0.0.1'] }), expect: 'invalidRequest' },
    { desc: 'a requested pair of one family is refused', allocate: req('bad', { families: [4, 6], policy: 'RequireDualStack', ips: ['10.0.0.0', '10.0.0.1'] }), expect: 'invalidRequest' },
    { desc: 'a requested pair split over two pools is refused', allocate: req('bad', { families: [4, 6], policy: 'RequireDualStack', ips: ['10.0.0.1', 'fd00::1'] }), expect: 'ipNotInPool' },
  ]);
});

t.test('no pool of the family at all says so', async (t) => {
  const config = { pools: [pool('v4', ['10.0.0.0/31'])], l2Advertisements: [] };
  runScenario(t, config, [
    { desc: 'IPv6 wanted, none offered', allocate: req('v6', { families: [6] }), expect: 'familyNotAvailable' },
    { desc: 'RequireDualStack, none offered', allocate: req('d', { families: [4, 6], policy: 'RequireDualStack' }), expect: 'familyNotAvailable' },
    { desc: 'PreferDualStack takes what there is', allocate: req('p', { families: [4, 6], policy: 'PreferDualStack' }), expect: 'v4:10.0.0.0' },
  ]);
});

t.test('PreferDualStack holding one family gains the other when its pool can give it', async (t) => {
  const v4only = { pools: [pool('p', ['10.0.0.0/31', 'fd00::/128'])], l2Advertisements: [] };
  runScenario(t, v4only, [
    { desc: 'x takes the only IPv6', allocate: req('x', { families: [6] }), expect: 'p:fd00::' },
    { desc: 'pref gets IPv4 only', allocate: req('pref', { families: [4, 6], policy: 'PreferDualStack' }), expect: 'p:10.0.0.0' },
    { desc: 'x goes away', release: 'default/x', expect: true },
    { desc: 'pref, reconciled, adds the IPv6 and keeps its IPv4', allocate: req('pref', { families: [4, 6], policy: 'PreferDualStack' }), expect: 'p:10.0.0.0,fd00::' },
  ]);
});
