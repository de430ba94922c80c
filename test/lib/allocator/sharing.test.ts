import t from 'tap';
import { pool, req } from '../../helpers/alloc.js';
import { runScenario } from '../../helpers/scenario.js';

const config = { pools: [pool('p', ['10.0.0.0/30'])], l2Advertisements: [] };

t.test('sharing rules (MetalLB): same key, same backend key, no port clash', async (t) => {
  runScenario(t, config, [
    { desc: 'dns-udp takes the lowest', allocate: req('dns-udp', { share: 'dns', ports: ['UDP/53'] }), expect: 'p:10.0.0.0' },
    { desc: 'dns-tcp shares it: TCP/53 and UDP/53 do not clash', allocate: req('dns-tcp', { share: 'dns', ports: ['TCP/53'] }), expect: 'p:10.0.0.0' },
    { desc: 'both are on the address', holders: '10.0.0.0', expect: ['default/dns-tcp', 'default/dns-udp'] },
    { desc: 'a port clash is refused for a requested IP', allocate: req('dns-udp2', { share: 'dns', ports: ['UDP/53'], ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: 'a port clash with automatic choice moves to the next address', allocate: req('dns-udp2', { share: 'dns', ports: ['UDP/53'] }), expect: 'p:10.0.0.1' },
    { desc: 'a wrong key is refused', allocate: req('other', { share: 'web', ports: ['TCP/80'], ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: 'no key at all is refused', allocate: req('other', { ports: ['TCP/80'], ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: 'a wrong backend key is refused', allocate: req('other', { share: 'dns', backend: 'app=x', ports: ['TCP/80'], ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: 'the right key and backend, new port: shared', allocate: req('other', { share: 'dns', ports: ['TCP/80'], ips: ['10.0.0.0'] }), expect: 'p:10.0.0.0' },
    { desc: 'a non-sharing Service never lands on a shared address', allocate: req('solo', { ports: ['TCP/9'] }), expect: 'p:10.0.0.2' },
    { desc: 'a sharing Service cannot join a non-sharing one', allocate: req('late', { share: 'dns', ports: ['TCP/9'], ips: ['10.0.0.2'] }), expect: 'ipUnavailable' },
    { desc: 'a shared holder changing its key is refused while others remain', allocate: req('other', { share: 'web', ports: ['TCP/80'], ips: ['10.0.0.0'] }), expect: 'ipUnavailable' },
    { desc: 'releasing one sharer keeps the address for the others', release: 'default/dns-tcp', expect: true },
    { desc: 'the remaining sharers', holders: '10.0.0.0', expect: ['default/dns-udp'] },
  ]);
});

t.test('a sole user changes its sharing key and ports in place', async (t) => {
  runScenario(t, config, [
    { desc: 'alone with key k1', allocate: req('s', { share: 'k1', ports: ['TCP/80'] }), expect: 'p:10.0.0.0' },
    { desc: 'changes to key k2: keeps the address', allocate: req('s', { share: 'k2', ports: ['TCP/80'] }), expect: 'p:10.0.0.0' },
    { desc: 'a k1 Service no longer fits there', allocate: req('t', { share: 'k1', ports: ['TCP/81'] }), expect: 'p:10.0.0.1' },
    { desc: 'a k2 Service does', allocate: req('u', { share: 'k2', ports: ['TCP/81'] }), expect: 'p:10.0.0.0' },
    { desc: 's changes its port onto u\'s: must move', allocate: req('s', { share: 'k2', ports: ['TCP/81'] }), expect: 'p:10.0.0.2' },
    { desc: 's stops sharing: keeps its now-sole address', allocate: req('s', { ports: ['TCP/81'] }), expect: 'p:10.0.0.2' },
  ]);
});

t.test('sharing prefers the lowest compatible address, free or shared', async (t) => {
  runScenario(t, config, [
    { desc: 'a takes .0 without sharing', allocate: req('a'), expect: 'p:10.0.0.0' },
    { desc: 'b takes .1 with key k', allocate: req('b', { share: 'k', ports: ['TCP/1'] }), expect: 'p:10.0.0.1' },
    { desc: 'a leaves, .0 is free', release: 'default/a', expect: true },
    { desc: 'c with key k: the free .0 is lower than the shareable .1', allocate: req('c', { share: 'k', ports: ['TCP/2'] }), expect: 'p:10.0.0.0' },
    { desc: 'd with key k: .0 is lowest and shareable', allocate: req('d', { share: 'k', ports: ['TCP/3'] }), expect: 'p:10.0.0.0' },
  ]);
});
