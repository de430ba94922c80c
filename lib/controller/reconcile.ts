/**
 * One Service's reconcile, as a pure function: from the Service and the allocator, the
 * status and annotation it should have and the Events to record. The controller's shell
 * compares the outcome with what the API server holds and writes only the difference.
 */
import type { Allocator } from '../allocator/allocator.js';
import type { AllocationFailure } from '../allocator/types.js';
import { formatIP, tryParseIP, type IP } from '../ip/address.js';
import { eligibility, type ClassPolicy } from '../service/class.js';
import { toServiceRequest } from '../service/request.js';
import type { Service } from '../service/types.js';
import type { Labels } from '../labels/selector.js';

/**
 * `Proxy` tells kube-proxy 1.30+ not to short-circuit the VIP inside the cluster, so
 * traffic reaches Beacon's proxy (KEP-1860); `VIP` is for Services that opt out of our
 * proxy and leave forwarding to kube-proxy.
 */
export type IPMode = 'Proxy' | 'VIP';
export const PROXY_OPT_OUT = 'beacon-lb.io/proxy';

export interface Ingress {
  readonly ip: string;
  readonly ipMode: IPMode;
}

export interface ServiceEvent {
  readonly type: 'Normal' | 'Warning';
  /** MetalLB's reasons, so dashboards and habits carry over. */
  readonly reason: 'IPAllocated' | 'AllocationFailed' | 'ClearAssignment';
  readonly message: string;
}

/** What the Service should look like; `undefined` ingress means "leave status alone". */
export interface ReconcileOutcome {
  readonly key: string;
  /** `ok`: converged; `failed`: cannot be served now (retried when config or Services change). */
  readonly result: 'ok' | 'failed' | 'ignored';
  readonly ingress: readonly Ingress[] | undefined;
  /** The pool annotation's desired value; null removes it; undefined leaves it. */
  readonly poolAnnotation: string | null | undefined;
  readonly events: readonly ServiceEvent[];
  /** Why a `failed` result failed: a stable value for metric labels. */
  readonly failure?: AllocationFailure | 'invalidService';
}

export interface ReconcileContext {
  readonly allocator: Allocator;
  readonly classPolicy: ClassPolicy;
  readonly namespaceLabels: Labels;
}

export function reconcileService(svc: Service | undefined, key: string, ctx: ReconcileContext): ReconcileOutcome {
  const held = ctx.allocator.ipsOf(key);
  const clear = (why: string): ReconcileOutcome => {
    const released = ctx.allocator.release(key);
    const hadStatus = (svc?.status?.loadBalancer?.ingress?.length ?? 0) > 0;
    const events: ServiceEvent[] = released && svc ? [{ type: 'Normal', reason: 'ClearAssignment', message: why }] : [];
    return { key, result: 'ignored', ingress: svc && (released || hadStatus) ? [] : undefined, poolAnnotation: svc && held ? null : undefined, events };
  };

  if (svc === undefined) return clear('Service deleted');
  const elig = eligibility(svc, ctx.classPolicy);
  if (elig !== 'ours') {
    // Another class's Service is someone else's: never touch its status unless we held it.
    if (held === undefined) return { key, result: 'ignored', ingress: undefined, poolAnnotation: undefined, events: [] };
    return clear(elig === 'notLoadBalancer' ? 'Service is no longer of type LoadBalancer' : 'Service is no longer of our loadBalancerClass');
  }

  const request = toServiceRequest(svc, ctx.namespaceLabels);
  if (!request.ok) {
    ctx.allocator.release(key);
    const message = request.problems.map((p) => `${p.field}: ${p.reason}`).join('; ');
    return { key, result: 'failed', failure: 'invalidService', ingress: [], poolAnnotation: null, events: [{ type: 'Warning', reason: 'AllocationFailed', message }] };
  }

  // On a restart the allocator is empty: claim what status already says, so no IP moves.
  if (held === undefined) {
    const existing = statusIPs(svc);
    if (existing.length > 0) ctx.allocator.assign(request.request, existing);
  }
  const result = ctx.allocator.allocate(request.request);
  if (!result.ok) {
    return {
      key,
      result: 'failed',
      failure: result.reason,
      ingress: [],
      poolAnnotation: null,
      events: [{ type: 'Warning', reason: 'AllocationFailed', message: `${result.reason}: ${result.message}` }],
    };
  }
  const ipMode: IPMode = svc.metadata.annotations?.[PROXY_OPT_OUT] === 'false' ? 'VIP' : 'Proxy';
  const ingress = result.ips.map((ip) => ({ ip: formatIP(ip), ipMode }));
  const before = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
  const changed = before.length !== ingress.length || ingress.some((i, n) => i.ip !== before[n]);
  const events: ServiceEvent[] = changed
    ? [{ type: 'Normal', reason: 'IPAllocated', message: `Assigned IP ${JSON.stringify(ingress.map((i) => i.ip))} from pool "${result.pool}"` }]
    : [];
  return { key, result: 'ok', ingress, poolAnnotation: result.pool, events };
}

function statusIPs(svc: Service): IP[] {
  const out: IP[] = [];
  for (const ing of svc.status?.loadBalancer?.ingress ?? []) {
    const ip = ing.ip === undefined ? undefined : tryParseIP(ing.ip);
    if (ip) out.push(ip);
  }
  return out;
}
