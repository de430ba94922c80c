/**
 * The speaker's desired data plane: for every LoadBalancer Service of ours, every ingress
 * IP this node owns, and every TCP/UDP port, one frontend with its backends (from the
 * Service's EndpointSlices) and options (from its spec and annotations). Pure and
 * whole-state: the shell calls it on every change and hands the result to Proxy.apply(),
 * which diffs (STYLE.md: a desired-state diff beats imperative add/remove calls).
 *
 * A Service we cannot serve as asked gets a problem (field and reason) for an Event:
 * SCTP ports, a misread annotation. A misread annotation never takes a Service down: its
 * last valid options keep serving (`lastValid`), or the defaults when there were none.
 */
import { eligibility, type ClassPolicy } from '../service/class.js';
import { serviceKey, type Service } from '../service/types.js';
import { PROXY_OPT_OUT } from '../controller/reconcile.js';
import { backendsForPort, type EndpointSlice, type SliceBackend } from './endpoints.js';
import { serviceProxyOptions, type OptionProblem, type ServiceProxyOptions } from './service-options.js';
import { formatIP, tryParseIP } from '../ip/address.js';

export interface DesiredFrontend {
  /** `namespace/name:ip:port/protocol`, stable across calls. */
  readonly key: string;
  readonly service: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  readonly backends: readonly SliceBackend[];
  readonly options: ServiceProxyOptions;
}

export interface ServiceReport {
  readonly service: string;
  readonly frontends: number;
  /** Empty when served as asked. */
  readonly problems: readonly OptionProblem[];
}

export interface DesiredInput {
  readonly services: readonly Service[];
  /** EndpointSlices by Service key (`namespace/name`). */
  readonly slices: ReadonlyMap<string, readonly EndpointSlice[]>;
  readonly policy: ClassPolicy;
  /** Whether this node serves `ip` (canonical text). */
  readonly owns: (ip: string) => boolean;
  /** Options last read without a problem, by Service key. */
  readonly lastValid: ReadonlyMap<string, ServiceProxyOptions>;
}

export interface DesiredState {
  readonly frontends: readonly DesiredFrontend[];
  /** Services with at least one owned ingress IP, in key order. */
  readonly services: readonly ServiceReport[];
  /** Options to remember as last valid, for the next call. */
  readonly lastValid: ReadonlyMap<string, ServiceProxyOptions>;
}

export function desiredFrontends(input: DesiredInput): DesiredState {
  const frontends: DesiredFrontend[] = [];
  const services: ServiceReport[] = [];
  const lastValid = new Map<string, ServiceProxyOptions>();
  const sorted = [...input.services].sort((a, b) => serviceKey(a).localeCompare(serviceKey(b)));
  for (const svc of sorted) {
    if (eligibility(svc, input.policy) !== 'ours') continue;
    // Opted out: kube-proxy forwards (the controller wrote ipMode VIP).
    if (svc.metadata.annotations?.[PROXY_OPT_OUT] === 'false') continue;
    const key = serviceKey(svc);
    const ips = ownedIngress(svc, input.owns);
    if (ips.length === 0) continue;
    const read = serviceProxyOptions(svc);
    const problems: OptionProblem[] = [...read.problems];
    const prev = input.lastValid.get(key);
    // A misread field is left out of read.options (its default applies) unless earlier
    // options were read whole: then those keep serving. The spec's own fields are always
    // fresh: narrowing loadBalancerSourceRanges must never wait on an annotation typo.
    const options = problems.length === 0 || !prev ? read.options : withSpecFields(prev, read.options);
    if (problems.length === 0) lastValid.set(key, options);
    else if (prev) lastValid.set(key, prev);
    const slices = input.slices.get(key) ?? [];
    let count = 0;
    (svc.spec?.ports ?? []).forEach((p, i) => {
      const protocol = p.protocol ?? 'TCP';
      if (protocol !== 'TCP' && protocol !== 'UDP') {
        problems.push({ field: `spec.ports[${i}].protocol`, reason: `${protocol} is not forwarded by Beacon's proxy (TCP and UDP are)` });
        return;
      }
      const backends = backendsForPort(slices, p.name ?? '', protocol);
      for (const ip of ips) {
        frontends.push({ key: `${key}:${ip.includes(':') ? `[${ip}]` : ip}:${p.port}/${protocol}`, service: key, ip, port: p.port, protocol, backends, options });
        count++;
      }
    });
    services.push({ service: key, frontends: count, problems });
  }
  return { frontends, services, lastValid };
}

/** The Service's ingress IPs this node serves, canonical, without duplicates. */
function ownedIngress(svc: Service, owns: (ip: string) => boolean): string[] {
  const out = new Set<string>();
  for (const i of svc.status?.loadBalancer?.ingress ?? []) {
    const ip = i.ip === undefined ? undefined : tryParseIP(i.ip);
    if (!ip) continue;
    const text = formatIP(ip);
    if (owns(text)) out.add(text);
  }
  return [...out];
}

function withSpecFields(prev: ServiceProxyOptions, fresh: ServiceProxyOptions): ServiceProxyOptions {
  const { sourceRanges: _r, affinityTimeoutMs: _a, ...annotated } = prev;
  return {
    ...annotated,
    ...(fresh.sourceRanges ? { sourceRanges: fresh.sourceRanges } : {}),
    ...(fresh.affinityTimeoutMs !== undefined ? { affinityTimeoutMs: fresh.affinityTimeoutMs } : {}),
  };
}
