import t from 'tap';
import { serviceProxyOptions, type ServiceProxyOptions } from '../../../lib/speaker/service-options.js';
import type { Service } from '../../../lib/service/types.js';

const svc = (annotations: Record<string, string>, spec: Service['spec'] = {}): Service => ({
  metadata: { name: 'web', namespace: 'demo', annotations: Object.fromEntries(Object.entries(annotations).map(([k, v]) => [`beacon-lb.io/${k}`, v])) },
  spec: { type: 'LoadBalancer', ...spec },
});

t.test('annotations and spec fields read into proxy options', async (t) => {
  const rows: { desc: string; s: Service; options: ServiceProxyOptions }[] = [
    { desc: 'nothing set: every default applies', s: svc({}), options: {} },
    { desc: 'least connections', s: svc({ balance: 'least-connections' }), options: { balance: 'leastConnections' } },
    { desc: "HAProxy's spelling", s: svc({ balance: 'leastconn' }), options: { balance: 'leastConnections' } },
    { desc: 'round robin, upper case', s: svc({ balance: 'RoundRobin' }), options: { balance: 'roundRobin' } },
    { desc: 'ClientIP affinity with the Kubernetes default timeout', s: svc({}, { sessionAffinity: 'ClientIP' }), options: { affinityTimeoutMs: 10_800_000 } },
    { desc: 'ClientIP affinity with its own timeout', s: svc({}, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }), options: { affinityTimeoutMs: 60_000 } },
    { desc: 'affinity None', s: svc({}, { sessionAffinity: 'None' }), options: {} },
    { desc: 'PROXY protocol v2', s: svc({ 'proxy-protocol': 'v2' }), options: { proxyProtocol: 'v2' } },
    { desc: 'PROXY protocol none', s: svc({ 'proxy-protocol': 'none' }), options: {} },
    { desc: 'source ranges from the spec', s: svc({}, { loadBalancerSourceRanges: ['10.0.0.0/8'] }), options: { sourceRanges: ['10.0.0.0/8'] } },
    {
      desc: 'timeouts and limits',
      s: svc({ 'connect-timeout': '500ms', 'idle-timeout': '5m', 'drain-timeout': '0s', 'max-connections': '100', 'new-connections-per-second': '50', 'new-connections-burst': '10', 'udp-flow-idle-timeout': '10s', 'udp-max-flows': '1000' }),
      options: { connectTimeoutMs: 500, idleTimeoutMs: 300_000, drainTimeoutMs: 0, maxConnections: 100, newConnectionsPerSecond: 50, newConnectionsBurst: 10, udpFlowIdleTimeoutMs: 10_000, udpMaxFlows: 1000 },
    },
    { desc: 'a TCP check with its thresholds', s: svc({ 'health-check': 'tcp', 'health-check-interval': '1s', 'health-check-timeout': '300ms', 'health-check-rise': '1', 'health-check-fall': '2', 'health-check-port': '8081' }), options: { healthCheck: { intervalMs: 1000, timeoutMs: 300, rise: 1, fall: 2, port: 8081 } } },
    { desc: 'an HTTP check defaults to /', s: svc({ 'health-check': 'http' }), options: { healthCheck: { httpPath: '/' } } },
    { desc: 'a path alone means HTTP', s: svc({ 'health-check-path': '/healthz' }), options: { healthCheck: { httpPath: '/healthz' } } },
    { desc: 'health-check none: readiness is the evidence', s: svc({ 'health-check': 'none' }), options: {} },
  ];
  for (const row of rows) {
    const r = serviceProxyOptions(row.s);
    t.same(r.problems, [], `${row.desc}: no problem`);
    t.same(r.options, row.options, row.desc);
  }
});

t.test('every misread field is named with its reason, and left out', async (t) => {
  const rows: { desc: string; s: Service; field: string; reason: RegExp }[] = [
    { desc: 'unknown balance', s: svc({ balance: 'random' }), field: 'metadata.annotations[beacon-lb.io/balance]', reason: /"random" is not one of round-robin, least-connections/ },
    { desc: 'unknown PROXY version', s: svc({ 'proxy-protocol': 'v3' }), field: 'metadata.annotations[beacon-lb.io/proxy-protocol]', reason: /not v1, v2 or none/ },
    { desc: 'a duration with no unit', s: svc({ 'connect-timeout': '30' }), field: 'metadata.annotations[beacon-lb.io/connect-timeout]', reason: /unit/ },
    { desc: 'a zero connect timeout', s: svc({ 'connect-timeout': '0s' }), field: 'metadata.annotations[beacon-lb.io/connect-timeout]', reason: /shorter than 1 ms/ },
    { desc: 'a negative limit', s: svc({ 'max-connections': '-1' }), field: 'metadata.annotations[beacon-lb.io/max-connections]', reason: /whole number from 1/ },
    { desc: 'a fractional limit', s: svc({ 'udp-max-flows': '1.5' }), field: 'metadata.annotations[beacon-lb.io/udp-max-flows]', reason: /whole number/ },
    { desc: 'an unknown check kind', s: svc({ 'health-check': 'icmp' }), field: 'metadata.annotations[beacon-lb.io/health-check]', reason: /not tcp, http or none/ },
    { desc: 'a path on a TCP check', s: svc({ 'health-check': 'tcp', 'health-check-path': '/x' }), field: 'metadata.annotations[beacon-lb.io/health-check-path]', reason: /health-check is tcp/ },
    { desc: 'a relative path', s: svc({ 'health-check-path': 'healthz' }), field: 'metadata.annotations[beacon-lb.io/health-check-path]', reason: /does not start with "\/"/ },
    { desc: 'a port out of range', s: svc({ 'health-check': 'tcp', 'health-check-port': '70000' }), field: 'metadata.annotations[beacon-lb.io/health-check-port]', reason: /1 to 65535/ },
    { desc: 'rise of zero', s: svc({ 'health-check': 'tcp', 'health-check-rise': '0' }), field: 'metadata.annotations[beacon-lb.io/health-check-rise]', reason: /1 to 100/ },
    { desc: 'an affinity timeout over a day', s: svc({}, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 90_000 } } }), field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', reason: /not from 1 to 86400/ },
    { desc: 'an unknown affinity', s: svc({}, { sessionAffinity: 'Cookie' }), field: 'spec.sessionAffinity', reason: /not None or ClientIP/ },
  ];
  for (const row of rows) {
    const r = serviceProxyOptions(row.s);
    t.equal(r.problems.length, 1, `${row.desc}: one problem`);
    t.match(r.problems[0], { field: row.field, reason: row.reason }, row.desc);
  }
  const mixed = serviceProxyOptions(svc({ balance: 'random', 'proxy-protocol': 'v1', 'health-check': 'tcp', 'health-check-fall': 'x' }));
  t.same(mixed.options, { proxyProtocol: 'v1', healthCheck: {} }, 'fields read correctly still apply beside a misread one');
  t.equal(mixed.problems.length, 2, 'both misread fields reported');
});

t.test('annotations of other prefixes are not read as proxy options', async (t) => {
  const r = serviceProxyOptions({ metadata: { name: 'x', annotations: { 'metallb.io/balance': 'bogus', 'beacon-lb.io/address-pool': 'p' } } });
  t.same(r, { options: {}, problems: [] });
});
