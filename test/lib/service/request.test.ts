import t from 'tap';
import { formatIP } from '../../../lib/ip/address.js';
import { toServiceRequest } from '../../../lib/service/request.js';
import { eligibility, DEFAULT_CLASS_POLICY } from '../../../lib/service/class.js';
import type { Service } from '../../../lib/service/types.js';

const svc = (over: { annotations?: Record<string, string>; spec?: Service['spec']; labels?: Record<string, string> } = {}): Service => ({
  metadata: { name: 'web', namespace: 'shop', labels: over.labels ?? { app: 'web' }, annotations: over.annotations ?? {} },
  spec: { type: 'LoadBalancer', ports: [{ port: 80 }], selector: { app: 'web', tier: 'front' }, ...over.spec },
});

t.test('a Service becomes allocator input', async (t) => {
  const rows: {
    desc: string;
    svc: Service;
    expect: { ips?: string[]; pool?: string | undefined; sharingKey?: string; backendKey?: string; families?: number[]; policy?: string; ports?: string[] };
  }[] = [
    { desc: 'defaults: TCP, IPv4, SingleStack, no sharing', svc: svc(), expect: { ips: [], pool: undefined, sharingKey: '', backendKey: '', families: [4], policy: 'SingleStack', ports: ['TCP/80'] } },
    { desc: 'beacon annotation requests two IPs', svc: svc({ annotations: { 'beacon-lb.io/loadBalancerIPs': '10.0.0.5, fd00::5' } }), expect: { ips: ['10.0.0.5', 'fd00::5'] } },
    { desc: 'metallb.io annotation is read', svc: svc({ annotations: { 'metallb.io/loadBalancerIPs': '10.0.0.6' } }), expect: { ips: ['10.0.0.6'] } },
    { desc: 'legacy metallb.universe.tf annotation is read', svc: svc({ annotations: { 'metallb.universe.tf/address-pool': 'gold' } }), expect: { pool: 'gold' } },
    { desc: 'same value under two prefixes is a migration, not a conflict', svc: svc({ annotations: { 'beacon-lb.io/address-pool': 'gold', 'metallb.io/address-pool': 'gold' } }), expect: { pool: 'gold' } },
    { desc: 'spec.loadBalancerIP is honoured', svc: svc({ spec: { type: 'LoadBalancer', loadBalancerIP: '10.0.0.7' } }), expect: { ips: ['10.0.0.7'] } },
    { desc: 'spec.loadBalancerIP equal to the annotation is accepted', svc: svc({ annotations: { 'metallb.io/loadBalancerIPs': '10.0.0.7' }, spec: { type: 'LoadBalancer', loadBalancerIP: '10.0.0.7' } }), expect: { ips: ['10.0.0.7'] } },
    { desc: 'sharing key; Cluster policy needs no backend key', svc: svc({ annotations: { 'metallb.io/allow-shared-ip': 'k1' } }), expect: { sharingKey: 'k1', backendKey: '' } },
    { desc: 'Local policy: backend key is the sorted selector', svc: svc({ spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { tier: 'front', app: 'web' } } }), expect: { backendKey: 'app=web,tier=front' } },
    { desc: 'dual stack, IPv6 first', svc: svc({ spec: { type: 'LoadBalancer', ipFamilies: ['IPv6', 'IPv4'], ipFamilyPolicy: 'PreferDualStack' } }), expect: { families: [6, 4], policy: 'PreferDualStack' } },
    { desc: 'mixed protocols', svc: svc({ spec: { type: 'LoadBalancer', ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] } }), expect: { ports: ['UDP/53', 'TCP/53'] } },
  ];
  for (const row of rows) {
    const frozen = structuredClone(row.svc);
    const r = toServiceRequest(row.svc, { team: 'a' });
    t.same(row.svc, frozen, `${row.desc}: input not mutated`);
    if (!r.ok) { t.fail(`${row.desc}: ${JSON.stringify(r.problems)}`); continue; }
    const req = r.request;
    t.equal(req.key, 'shop/web', `${row.desc}: key`);
    t.same(req.namespaceLabels, { team: 'a' }, `${row.desc}: namespace labels`);
    const e = row.expect;
    if (e.ips) t.same(req.requestedIPs.map(formatIP), e.ips, `${row.desc}: requested IPs`);
    if ('pool' in e) t.equal(req.pool, e.pool, `${row.desc}: pool`);
    if (e.sharingKey !== undefined) t.equal(req.sharingKey, e.sharingKey, `${row.desc}: sharing key`);
    if (e.backendKey !== undefined) t.equal(req.backendKey, e.backendKey, `${row.desc}: backend key`);
    if (e.families) t.same(req.families, e.families, `${row.desc}: families`);
    if (e.policy) t.equal(req.familyPolicy, e.policy, `${row.desc}: policy`);
    if (e.ports) t.same(req.ports.map((p) => `${p.protocol}/${p.port}`), e.ports, `${row.desc}: ports`);
  }
});

t.test('a Service we cannot serve says which field and why', async (t) => {
  const rows: { desc: string; svc: Service; problems: { field: RegExp; reason: RegExp }[] }[] = [
    { desc: 'contradicting pool annotations', svc: svc({ annotations: { 'beacon-lb.io/address-pool': 'a', 'metallb.universe.tf/address-pool': 'b' } }), problems: [{ field: /address-pool/, reason: /beacon-lb.io\/address-pool="a" and metallb.universe.tf\/address-pool="b" contradict/ }] },
    { desc: 'three addresses', svc: svc({ annotations: { 'metallb.io/loadBalancerIPs': '10.0.0.1,10.0.0.2,fd00::1' } }), problems: [{ field: /metallb.io\/loadBalancerIPs/, reason: /at most 2/ }] },
    { desc: 'two of one family', svc: svc({ annotations: { 'metallb.io/loadBalancerIPs': '10.0.0.1,10.0.0.2' } }), problems: [{ field: /loadBalancerIPs/, reason: /same family/ }] },
    { desc: 'octal address', svc: svc({ annotations: { 'beacon-lb.io/loadBalancerIPs': '010.0.0.1' } }), problems: [{ field: /beacon-lb.io\/loadBalancerIPs/, reason: /"010.0.0.1" is not an IP address/ }] },
    { desc: 'spec.loadBalancerIP contradicts the annotation', svc: svc({ annotations: { 'metallb.io/loadBalancerIPs': '10.0.0.1' }, spec: { type: 'LoadBalancer', loadBalancerIP: '10.0.0.2' } }), problems: [{ field: /^spec.loadBalancerIP$/, reason: /contradicts metallb.io\/loadBalancerIPs/ }] },
    { desc: 'bad spec.loadBalancerIP', svc: svc({ spec: { type: 'LoadBalancer', loadBalancerIP: 'nope' } }), problems: [{ field: /^spec.loadBalancerIP$/, reason: /not an IP/ }] },
    { desc: 'unknown protocol', svc: svc({ spec: { type: 'LoadBalancer', ports: [{ port: 1, protocol: 'ICMP' }] } }), problems: [{ field: /spec.ports\[0\].protocol/, reason: /ICMP/ }] },
    { desc: 'unknown family and policy, both reported', svc: svc({ spec: { type: 'LoadBalancer', ipFamilies: ['IPv5'], ipFamilyPolicy: 'Maybe' } }), problems: [{ field: /spec.ipFamilyPolicy/, reason: /Maybe/ }, { field: /spec.ipFamilies\[0\]/, reason: /IPv5/ }] },
  ];
  for (const row of rows) {
    const r = toServiceRequest(row.svc);
    if (r.ok) { t.fail(`${row.desc}: accepted`); continue; }
    t.equal(r.problems.length, row.problems.length, `${row.desc}: problem count`);
    row.problems.forEach((p, i) => {
      t.match(r.problems[i]?.field, p.field, `${row.desc}: field`);
      t.match(r.problems[i]?.reason, p.reason, `${row.desc}: reason`);
    });
  }
});

t.test('only our class (and, if asked, no class) is ours', async (t) => {
  const rows: { desc: string; spec: Service['spec']; serveUnclassed: boolean; expect: string }[] = [
    { desc: 'ClusterIP', spec: { type: 'ClusterIP' }, serveUnclassed: true, expect: 'notLoadBalancer' },
    { desc: 'our class', spec: { type: 'LoadBalancer', loadBalancerClass: 'beacon-lb.io/lb' }, serveUnclassed: false, expect: 'ours' },
    { desc: 'another class', spec: { type: 'LoadBalancer', loadBalancerClass: 'metallb.io/metallb' }, serveUnclassed: true, expect: 'otherClass' },
    { desc: 'no class, not configured', spec: { type: 'LoadBalancer' }, serveUnclassed: false, expect: 'noClass' },
    { desc: 'no class, configured', spec: { type: 'LoadBalancer' }, serveUnclassed: true, expect: 'ours' },
  ];
  for (const row of rows) {
    t.equal(eligibility({ metadata: { name: 'x' }, spec: row.spec }, { ...DEFAULT_CLASS_POLICY, serveUnclassed: row.serveUnclassed }), row.expect, row.desc);
  }
});
