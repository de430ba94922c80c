/** Builders for allocator tests: pools and requests with MetalLB's defaults. */
import type { Pool, ServiceAllocation } from '../../lib/config/model.js';
import { parseRange } from '../../lib/ip/range.js';
import { parseIP, formatIP, type IP } from '../../lib/ip/address.js';
import type { ServiceRequest, Port, AllocationResult } from '../../lib/allocator/types.js';
import type { LabelSelector } from '../../lib/labels/selector.js';

export function pool(name: string, addresses: string[], opts: Partial<Omit<Pool, 'name' | 'ranges'>> = {}): Pool {
  return { name, labels: {}, ranges: addresses.map(parseRange), autoAssign: true, avoidBuggyIPs: false, serviceAllocation: undefined, ...opts };
}

export function allocation(opts: Partial<ServiceAllocation>): ServiceAllocation {
  return { priority: undefined, namespaces: [], namespaceSelectors: [], serviceSelectors: [], ...opts };
}

export function labelsSelector(matchLabels: Record<string, string>): LabelSelector {
  return { matchLabels, matchExpressions: [] };
}

export interface ReqOpts {
  ns?: string;
  labels?: Record<string, string>;
  nsLabels?: Record<string, string>;
  ports?: string[]; // "TCP/80"
  share?: string;
  backend?: string;
  families?: (4 | 6)[];
  policy?: ServiceRequest['familyPolicy'];
  ips?: string[];
  pool?: string;
}

export function req(name: string, o: ReqOpts = {}): ServiceRequest {
  const ns = o.ns ?? 'default';
  return {
    key: `${ns}/${name}`,
    namespace: ns,
    labels: o.labels ?? {},
    namespaceLabels: o.nsLabels ?? {},
    ports: (o.ports ?? ['TCP/80']).map((p): Port => {
      const [protocol, port] = p.split('/');
      return { protocol: protocol as Port['protocol'], port: Number(port) };
    }),
    sharingKey: o.share ?? '',
    backendKey: o.backend ?? '',
    families: o.families ?? [4],
    familyPolicy: o.policy ?? 'SingleStack',
    requestedIPs: (o.ips ?? []).map(parseIP),
    pool: o.pool,
  };
}

/** "pool:ip,ip" for a success, "reason" for a failure: compact to compare in tables. */
export function show(r: AllocationResult): string {
  return r.ok ? `${r.pool}:${r.ips.map(formatIP).join(',')}` : r.reason;
}

export const ip = (s: string): IP => parseIP(s);
