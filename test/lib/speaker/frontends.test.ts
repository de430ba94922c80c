import t from 'tap';
import { desiredFrontends, type DesiredInput } from '../../../lib/speaker/frontends.js';
import type { EndpointSlice } from '../../../lib/speaker/endpoints.js';
import type { Service } from '../../../lib/service/types.js';
import { DEFAULT_CLASS_POLICY } from '../../../lib/service/class.js';

const svc = (name: string, ips: string[], ports: { name?: string; port: number; protocol?: string }[], extra: { annotations?: Record<string, string>; spec?: Service['spec']; cls?: string } = {}): Service => ({
  metadata: { name, namespace: 'demo', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: { type: 'LoadBalancer', loadBalancerClass: extra.cls ?? 'beacon-lb.io/lb', ports, ...extra.spec },
  status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'Proxy' })) } },
});
const slices = (entries: [string, EndpointSlice['ports'], string[]][]): Map<string, EndpointSlice[]> => {
  const m = new Map<string, EndpointSlice[]>();
  for (const [key, ports, ips] of entries) {
    m.set(key, [...(m.get(key) ?? []), { metadata: { name: key }, addressType: 'IPv4', ports, endpoints: ips.map((ip) => ({ addresses: [ip] })) }]);
  }
  return m;
};
const input = (services: Service[], s = new Map<string, EndpointSlice[]>(), more: Partial<DesiredInput> = {}): DesiredInput => ({
  services, slices: s, policy: DEFAULT_CLASS_POLICY, owns: () => true, lastValid: new Map(), ...more,
});

t.test('frontends per owned IP and port', async (t) => {
  const web = svc('web', ['192.0.2.10', '2001:db8::10'], [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }]);
  const eps = slices([['demo/web', [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }], ['10.0.0.1', '10.0.0.2']]]);
  const rows: { desc: string; in: DesiredInput; keys: string[] }[] = [
    { desc: 'every IP times every port', in: input([web], eps), keys: ['demo/web:192.0.2.10:80/TCP', 'demo/web:[2001:db8::10]:80/TCP', 'demo/web:192.0.2.10:53/UDP', 'demo/web:[2001:db8::10]:53/UDP'] },
    { desc: 'only the IPs this node owns', in: input([web], eps, { owns: (ip) => ip === '192.0.2.10' }), keys: ['demo/web:192.0.2.10:80/TCP', 'demo/web:192.0.2.10:53/UDP'] },
    { desc: 'nothing owned, nothing served', in: input([web], eps, { owns: () => false }), keys: [] },
    { desc: 'not yet allocated: nothing', in: input([svc('new', [], [{ port: 80 }])]), keys: [] },
    { desc: 'another class: not ours', in: input([svc('other', ['192.0.2.11'], [{ port: 80 }], { cls: 'example.com/lb' })]), keys: [] },
    { desc: 'opted out of the proxy: kube-proxy forwards', in: input([svc('vip', ['192.0.2.12'], [{ port: 80 }], { annotations: { 'beacon-lb.io/proxy': 'false' } })]), keys: [] },
    { desc: 'IPv6 ingress written uncanonically is canonical here', in: input([svc('v6', ['2001:DB8:0::1'], [{ port: 80 }])]), keys: ['demo/v6:[2001:db8::1]:80/TCP'] },
  ];
  for (const row of rows) {
    const before = JSON.stringify(row.in.services);
    t.same(desiredFrontends(row.in).frontends.map((f) => f.key), row.keys, row.desc);
    t.equal(JSON.stringify(row.in.services), before, `${row.desc}: input not mutated`);
  }
  const [http, , dns] = desiredFrontends(input([web], eps)).frontends;
  t.same(http?.backends, [{ ip: '10.0.0.1', port: 8080, state: 'ready' }, { ip: '10.0.0.2', port: 8080, state: 'ready' }], 'TCP port maps to the slice port of its name');
  t.same(dns?.backends.map((b) => b.port), [5353, 5353], 'UDP port likewise');
  t.match(http, { service: 'demo/web', ip: '192.0.2.10', port: 80, protocol: 'TCP' });
});

t.test('Services we cannot serve as asked are reported with the field', async (t) => {
  const sctp = svc('sctp', ['192.0.2.20'], [{ port: 80 }, { port: 9, protocol: 'SCTP' }]);
  const state = desiredFrontends(input([sctp]));
  t.same(state.frontends.map((f) => f.key), ['demo/sctp:192.0.2.20:80/TCP'], 'the TCP port is still served');
  t.match(state.services, [{ service: 'demo/sctp', frontends: 1, problems: [{ field: 'spec.ports[1].protocol', reason: /SCTP is not forwarded/ }] }]);
});

t.test('a misread annotation keeps the last valid options; spec fields stay fresh', async (t) => {
  const good = svc('web', ['192.0.2.30'], [{ port: 80 }], { annotations: { 'beacon-lb.io/balance': 'leastconn', 'beacon-lb.io/proxy-protocol': 'v2' } });
  const first = desiredFrontends(input([good]));
  t.same(first.frontends[0]?.options, { balance: 'leastConnections', proxyProtocol: 'v2' });
  t.same(first.services[0]?.problems, []);

  const typo = svc('web', ['192.0.2.30'], [{ port: 80 }], {
    annotations: { 'beacon-lb.io/balance': 'leastconnz', 'beacon-lb.io/proxy-protocol': 'v1' },
    spec: { loadBalancerSourceRanges: ['198.51.100.0/24'], sessionAffinity: 'ClientIP' },
  });
  const second = desiredFrontends(input([typo], undefined, { lastValid: first.lastValid }));
  t.same(second.frontends[0]?.options, { balance: 'leastConnections', proxyProtocol: 'v2', sourceRanges: ['198.51.100.0/24'], affinityTimeoutMs: 10_800_000 },
    'annotations as last read whole, source ranges and affinity as the spec says now');
  t.match(second.services[0]?.problems, [{ field: 'metadata.annotations[beacon-lb.io/balance]' }]);
  t.ok(second.lastValid.has('demo/web'), 'the last valid options are remembered across more misreads');

  const fresh = desiredFrontends(input([typo]));
  t.same(fresh.frontends[0]?.options, { proxyProtocol: 'v1', sourceRanges: ['198.51.100.0/24'], affinityTimeoutMs: 10_800_000 }, 'never valid before: what was read correctly applies');
  t.notOk(fresh.lastValid.has('demo/web'), 'and nothing is remembered as valid');

  const gone = desiredFrontends(input([], undefined, { lastValid: first.lastValid }));
  t.equal(gone.lastValid.size, 0, 'a deleted Service is forgotten');
});

t.test('the answer does not depend on the order of Services', async (t) => {
  const a = svc('a', ['192.0.2.1'], [{ port: 80 }]);
  const b = svc('b', ['192.0.2.2'], [{ port: 80 }]);
  t.same(desiredFrontends(input([a, b])), desiredFrontends(input([b, a])));
});
