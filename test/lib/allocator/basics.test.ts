import t from 'tap';
import { pool, req } from '../../helpers/alloc.js';
import { runScenario } from '../../helpers/scenario.js';

t.test('lowest free first, the same IP back, requested IPs', async (t) => {
  const config = { pools: [pool('a', ['10.0.0.0/30']), pool('b', ['10.0.1.0/31'], { autoAssign: false })], l2Advertisements: [] };
  runScenario(t, config, [
    { desc: 's1 gets the lowest address', allocate: req('s1'), expect: 'a:10.0.0.0' },
    { desc: 's1 again keeps it', allocate: req('s1'), expect: 'a:10.0.0.0' },
    { desc: 's2 gets the next', allocate: req('s2'), expect: 'a:10.0.0.1' },
    { desc: 's2 cannot take s1\'s IP', allocate: req('s2', { ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: '...and its failed request released what it held', holders: '10.0.0.1', expect: [] },
    { desc: 's3 asks for a free address in the middle', allocate: req('s3', { ips: ['10.0.0.3'] }), expect: 'a:10.0.0.3' },
    { desc: 's4 gets the lowest free, skipping s3\'s', allocate: req('s4'), expect: 'a:10.0.0.1' },
    { desc: 's5 takes the last one', allocate: req('s5'), expect: 'a:10.0.0.2' },
    { desc: 'pool a is full; b does not auto-assign', allocate: req('s6'), expect: 'poolExhausted' },
    { desc: 'b by annotation, although autoAssign is false', allocate: req('s6', { pool: 'b' }), expect: 'b:10.0.1.0' },
    { desc: 'b by requested IP', allocate: req('s7', { ips: ['10.0.1.1'] }), expect: 'b:10.0.1.1' },
    { desc: 'an IP in no pool', allocate: req('s8', { ips: ['192.168.0.1'] }), expect: 'ipNotInPool' },
    { desc: 'an IP outside the annotated pool', allocate: req('s8', { ips: ['10.0.0.3'], pool: 'b' }), expect: 'ipNotInPool' },
    { desc: 'an unknown pool', allocate: req('s8', { pool: 'nope' }), expect: 'noSuchPool' },
    { desc: 'release s1', release: 'default/s1', expect: true },
    { desc: 'release twice is a no-op', release: 'default/s1', expect: false },
    { desc: 'the freed lowest address goes to the next Service', allocate: req('s9'), expect: 'a:10.0.0.0' },
    { desc: 'changing the pool annotation moves the Service', allocate: req('s5', { pool: 'b' }), expect: 'poolExhausted' },
    { desc: '...and a failed move leaves it with nothing', holders: '10.0.0.2', expect: [] },
    { desc: 'changing the requested IP moves the Service', allocate: req('s9', { ips: ['10.0.0.2'] }), expect: 'a:10.0.0.2' },
    { desc: 'its old address is free again', allocate: req('s10'), expect: 'a:10.0.0.0' },
  ]);
});

t.test('avoidBuggyIPs skips .0 and .255, also when asked for', async (t) => {
  const config = { pools: [pool('edge', ['10.0.0.254-10.0.1.1'], { avoidBuggyIPs: true })], l2Advertisements: [] };
  runScenario(t, config, [
    { desc: 'first usable is .254', allocate: req('s1'), expect: 'edge:10.0.0.254' },
    { desc: '.255 and .0 are skipped', allocate: req('s2'), expect: 'edge:10.0.1.1' },
    { desc: 'a requested .255 is not in the pool', allocate: req('s3', { ips: ['10.0.0.255'] }), expect: 'ipNotInPool' },
    { desc: 'then the pool is full', allocate: req('s3'), expect: 'poolExhausted' },
  ]);
});

t.test('ranges are used in the order the pool lists them', async (t) => {
  const config = { pools: [pool('p', ['10.0.5.0/31', '10.0.1.0/31'])], l2Advertisements: [] };
  runScenario(t, config, [
    { desc: 'the first listed range first', allocate: req('s1'), expect: 'p:10.0.5.0' },
    { desc: 'still the first range', allocate: req('s2'), expect: 'p:10.0.5.1' },
    { desc: 'then the second', allocate: req('s3'), expect: 'p:10.0.1.0' },
  ]);
});

t.test('restart: assign() claims existing addresses before pending Services allocate', async (t) => {
  const config = { pools: [pool('p', ['10.0.0.0/30'])], l2Advertisements: [] };
  runScenario(t, config, [
    { desc: 'an existing assignment is claimed', assign: req('old2'), ips: ['10.0.0.2'], expect: 'p:10.0.0.2' },
    { desc: 'another, out of order', assign: req('old0'), ips: ['10.0.0.0'], expect: 'p:10.0.0.0' },
    { desc: 'a conflicting claim is refused', assign: req('dup'), ips: ['10.0.0.0'], expect: 'ipUnavailable' },
    { desc: 'a claim of two IPv4 addresses is refused', assign: req('two'), ips: ['10.0.0.1', '10.0.0.3'], expect: 'invalidRequest' },
    { desc: 'a claim outside every pool is refused', assign: req('gone'), ips: ['10.9.9.9'], expect: 'ipNotInPool' },
    { desc: 'pending Services get what is left, lowest first', allocate: req('new1'), expect: 'p:10.0.0.1' },
    { desc: 'and the rest', allocate: req('new2'), expect: 'p:10.0.0.3' },
    { desc: 'an old Service reconciled keeps its address', allocate: req('old2'), expect: 'p:10.0.0.2' },
  ]);
});
