import t from 'tap';
import { Allocator } from '../../../lib/allocator/allocator.js';
import { reconcileService, type ReconcileOutcome } from '../../../lib/controller/reconcile.js';
import { DEFAULT_CLASS_POLICY } from '../../../lib/service/class.js';
import type { Service } from '../../../lib/service/types.js';
import { pool } from '../../helpers/alloc.js';

const svc = (name: string, o: { cls?: string; type?: string; annotations?: Record<string, string>; ingress?: string[] } = {}): Service => ({
  metadata: { name, namespace: 'ns', annotations: o.annotations ?? {} },
  spec: { type: o.type ?? 'LoadBalancer', loadBalancerClass: o.cls ?? 'beacon-lb.io/lb', ports: [{ port: 80 }] },
  status: { loadBalancer: { ingress: (o.ingress ?? []).map((ip) => ({ ip })) } },
});

const brief = (o: ReconcileOutcome) => ({
  result: o.result,
  ingress: o.ingress === undefined ? 'unchanged' : o.ingress.map((i) => `${i.ip}/${i.ipMode}`).join(','),
  pool: o.poolAnnotation === undefined ? 'unchanged' : o.poolAnnotation,
  events: o.events.map((e) => e.reason).join(','),
  ...(o.failure ? { failure: o.failure } : {}),
});

t.test('reconcile outcomes, step by step', async (t) => {
  const allocator = new Allocator();
  allocator.setConfig({ pools: [pool('p', ['10.0.0.0/31'])], l2Advertisements: [] });
  const ctx = { allocator, classPolicy: DEFAULT_CLASS_POLICY, namespaceLabels: {} };
  const rows: { desc: string; svc: Service | undefined; key: string; expect: ReturnType<typeof brief> }[] = [
    { desc: 'restart: status is claimed, nothing moves, no Event', svc: svc('b', { ingress: ['10.0.0.1'], annotations: { 'beacon-lb.io/ip-allocated-from-pool': 'p' } }), key: 'ns/b', expect: { result: 'ok', ingress: '10.0.0.1/Proxy', pool: 'p', events: '' } },
    { desc: 'a new Service gets what is left', svc: svc('a'), key: 'ns/a', expect: { result: 'ok', ingress: '10.0.0.0/Proxy', pool: 'p', events: 'IPAllocated' } },
    { desc: 'full: AllocationFailed, status cleared', svc: svc('c'), key: 'ns/c', expect: { result: 'failed', ingress: '', pool: null, events: 'AllocationFailed', failure: 'poolExhausted' } },
    { desc: 'opting out of the proxy: ipMode VIP', svc: svc('a', { ingress: ['10.0.0.0'], annotations: { 'beacon-lb.io/proxy': 'false' } }), key: 'ns/a', expect: { result: 'ok', ingress: '10.0.0.0/VIP', pool: 'p', events: '' } },
    { desc: 'another class is not touched', svc: svc('x', { cls: 'other', ingress: ['192.0.2.1'] }), key: 'ns/x', expect: { result: 'ignored', ingress: 'unchanged', pool: 'unchanged', events: '' } },
    { desc: 'turned ClusterIP: released and cleared', svc: svc('a', { type: 'ClusterIP', ingress: ['10.0.0.0'] }), key: 'ns/a', expect: { result: 'ignored', ingress: '', pool: null, events: 'ClearAssignment' } },
    { desc: 'the pending Service now fits', svc: svc('c'), key: 'ns/c', expect: { result: 'ok', ingress: '10.0.0.0/Proxy', pool: 'p', events: 'IPAllocated' } },
    { desc: 'a bad annotation: Warning with the field', svc: svc('c', { annotations: { 'beacon-lb.io/loadBalancerIPs': 'x' }, ingress: ['10.0.0.0'] }), key: 'ns/c', expect: { result: 'failed', ingress: '', pool: null, events: 'AllocationFailed', failure: 'invalidService' } },
    { desc: 'deleted: released, nothing to write', svc: undefined, key: 'ns/b', expect: { result: 'ignored', ingress: 'unchanged', pool: 'unchanged', events: '' } },
  ];
  for (const row of rows) t.same(brief(reconcileService(row.svc, row.key, ctx)), row.expect, row.desc);
  t.same(allocator.servicesOn({ family: 4, value: 0x0a000001n }), [], 'the deleted Service freed its address');
});
