/**
 * Standalone mode's plan: allocate every Service of the file and describe the result as
 * rows. Pure: the shell in standalone/ reads the file, prints the table, and (with the
 * speaker and proxy) acts on it.
 */
import { Allocator } from '../allocator/allocator.js';
import type { AllocationFailure } from '../allocator/types.js';
import { formatIP, type IP } from '../ip/address.js';
import type { Config } from '../config/model.js';
import { toServiceRequest } from '../service/request.js';
import { serviceKey } from '../service/types.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';
import { portKey, type StandaloneService } from './file.js';
import { serviceProxyOptions, type OptionProblem, type ServiceProxyOptions } from '../speaker/service-options.js';

export interface PlanRow {
  readonly key: string;
  readonly pool: string | undefined;
  readonly ips: readonly IP[];
  readonly ports: readonly { readonly protocol: string; readonly port: number; readonly endpoints: readonly Endpoint[] }[];
  /** 'allocated', or why not: the allocator's failure, or 'invalidService'. */
  readonly status: 'allocated' | AllocationFailure | 'invalidService';
  readonly message: string;
  /** How the proxy serves it: the same annotations and spec fields the speaker reads. */
  readonly proxy: ServiceProxyOptions;
  /** Misread proxy annotations (each left at its default). */
  readonly proxyProblems: readonly OptionProblem[];
}

export function planStandalone(config: Config, services: readonly StandaloneService[]): PlanRow[] {
  const allocator = new Allocator();
  allocator.setConfig(config);
  const requests = services.map((s) => ({ s, r: toServiceRequest(s.service) }));
  // Services that ask for specific IPs go first, so an automatic pick never takes an
  // address someone named (the controller's rebuild order follows the same idea).
  const ordered = [...requests].sort((a, b) => {
    const named = Number(b.r.ok && b.r.request.requestedIPs.length > 0) - Number(a.r.ok && a.r.request.requestedIPs.length > 0);
    return named || serviceKey(a.s.service).localeCompare(serviceKey(b.s.service));
  });
  const rows = new Map<StandaloneService, PlanRow>();
  for (const { s, r } of ordered) {
    const ports = (s.service.spec?.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port, endpoints: s.endpoints.get(portKey(p)) ?? [] }));
    const key = serviceKey(s.service);
    const { options: proxy, problems: proxyProblems } = serviceProxyOptions(s.service);
    if (!r.ok) {
      rows.set(s, { key, pool: undefined, ips: [], ports, status: 'invalidService', message: r.problems.map((p) => `${p.field}: ${p.reason}`).join('; '), proxy, proxyProblems });
      continue;
    }
    const result = allocator.allocate(r.request);
    rows.set(s, result.ok
      ? { key, pool: result.pool, ips: result.ips, ports, status: 'allocated', message: '', proxy, proxyProblems }
      : { key, pool: undefined, ips: [], ports, status: result.reason, message: result.message, proxy, proxyProblems });
  }
  return services.map((s) => rows.get(s)!).sort((a, b) => a.key.localeCompare(b.key));
}

/** A fixed-width table, one line per Service port, like `kubectl get`. */
export function formatPlan(rows: readonly PlanRow[]): string {
  const header = ['SERVICE', 'POOL', 'EXTERNAL-IP', 'PORT', 'ENDPOINTS', 'STATUS'];
  const lines: string[][] = [header];
  for (const row of rows) {
    const ips = row.ips.length ? row.ips.map(formatIP).join(',') : '<pending>';
    const status = row.status === 'allocated' ? 'allocated' : `${row.status}: ${row.message}`;
    for (const p of row.ports) {
      lines.push([row.key, row.pool ?? '-', ips, `${p.port}/${p.protocol}`, p.endpoints.map(formatEndpoint).join(',') || '-', status]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
