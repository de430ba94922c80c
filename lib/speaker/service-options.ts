/**
 * A Service's proxy options: which balancing, which health checks, PROXY protocol, limits
 * and timeouts, read from the Service's spec (sessionAffinity, loadBalancerSourceRanges)
 * and from annotations under `beacon-lb.io/`. These are Beacon's own features, so they
 * have no MetalLB spelling. Pure; every problem names the annotation and the reason, so
 * the speaker can put it in an Event and serve the Service with nothing it misread.
 */
import type { Service } from '../service/types.js';
import { parseDuration } from '../proxy/duration.js';

export const ANNOTATION_PREFIX = 'beacon-lb.io/';

export type Balance = 'roundRobin' | 'leastConnections';

/** What the data plane takes per frontend (speaker/proxy's FrontendOptions, partly). */
export interface ServiceProxyOptions {
  balance?: Balance;
  affinityTimeoutMs?: number;
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  drainTimeoutMs?: number;
  maxConnections?: number;
  newConnectionsPerSecond?: number;
  newConnectionsBurst?: number;
  proxyProtocol?: 'v1' | 'v2';
  sourceRanges?: readonly string[];
  healthCheck?: { intervalMs?: number; timeoutMs?: number; rise?: number; fall?: number; httpPath?: string; port?: number };
  udpFlowIdleTimeoutMs?: number;
  udpMaxFlows?: number;
}

export interface OptionProblem {
  readonly field: string;
  readonly reason: string;
}

export type ServiceOptionsResult = { readonly options: ServiceProxyOptions; readonly problems: readonly OptionProblem[] };

/** Kubernetes' default ClientIP affinity timeout (core/v1 SessionAffinityConfig: 10800 s). */
const DEFAULT_AFFINITY_S = 10_800;
/** Kubernetes' API validation caps the affinity timeout at one day (86400 s). */
const MAX_AFFINITY_S = 86_400;

/** HAProxy spells them `roundrobin` and `leastconn`: both spellings work. */
const BALANCE: Readonly<Record<string, Balance>> = {
  'round-robin': 'roundRobin', roundrobin: 'roundRobin', 'least-connections': 'leastConnections', leastconn: 'leastConnections',
};

/** Every annotation this file reads, without the prefix; anything else under the prefix is not ours to judge. */
export const PROXY_ANNOTATIONS = [
  'balance', 'proxy-protocol', 'connect-timeout', 'idle-timeout', 'drain-timeout', 'max-connections',
  'new-connections-per-second', 'new-connections-burst', 'health-check', 'health-check-path', 'health-check-port',
  'health-check-interval', 'health-check-timeout', 'health-check-rise', 'health-check-fall',
  'udp-flow-idle-timeout', 'udp-max-flows',
] as const;

export function serviceProxyOptions(svc: Service): ServiceOptionsResult {
  const problems: OptionProblem[] = [];
  const options: ServiceProxyOptions = {};
  const annotations = svc.metadata.annotations ?? {};
  const field = (name: string) => `metadata.annotations[${ANNOTATION_PREFIX}${name}]`;
  const raw = (name: (typeof PROXY_ANNOTATIONS)[number]) => annotations[ANNOTATION_PREFIX + name];
  const problem = (name: string, reason: string) => problems.push({ field: field(name), reason });

  const duration = (name: (typeof PROXY_ANNOTATIONS)[number], min = 1): number | undefined => {
    const v = raw(name);
    if (v === undefined) return undefined;
    const d = parseDuration(v);
    if (!d.ok) { problem(name, d.reason); return undefined; }
    if (d.ms < min) { problem(name, `"${v}" is shorter than ${min} ms`); return undefined; }
    return d.ms;
  };
  const integer = (name: (typeof PROXY_ANNOTATIONS)[number], min: number, max: number): number | undefined => {
    const v = raw(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) { problem(name, `"${v}" is not a whole number from ${min} to ${max}`); return undefined; }
    return Number(v);
  };

  const balance = raw('balance');
  if (balance !== undefined) {
    const b = BALANCE[balance.trim().toLowerCase()];
    if (b) options.balance = b;
    else problem('balance', `"${balance}" is not one of round-robin, least-connections`);
  }

  const affinity = svc.spec?.sessionAffinity;
  if (affinity === 'ClientIP') {
    const s = svc.spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_S;
    if (!Number.isInteger(s) || s < 1 || s > MAX_AFFINITY_S) problems.push({ field: 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', reason: `${s} is not from 1 to ${MAX_AFFINITY_S}` });
    else options.affinityTimeoutMs = s * 1000;
  } else if (affinity !== undefined && affinity !== 'None') {
    problems.push({ field: 'spec.sessionAffinity', reason: `"${affinity}" is not None or ClientIP` });
  }

  const pp = raw('proxy-protocol');
  if (pp !== undefined) {
    const v = pp.trim().toLowerCase();
    if (v === 'v1' || v === 'v2') options.proxyProtocol = v;
    else if (v !== 'none' && v !== '') problem('proxy-protocol', `"${pp}" is not v1, v2 or none`);
  }

  const set = <K extends keyof ServiceProxyOptions>(k: K, v: ServiceProxyOptions[K] | undefined) => { if (v !== undefined) options[k] = v; };
  set('connectTimeoutMs', duration('connect-timeout'));
  set('idleTimeoutMs', duration('idle-timeout'));
  set('drainTimeoutMs', duration('drain-timeout', 0));
  // 2^20 connections per Service port is far above what one node's descriptors allow.
  set('maxConnections', integer('max-connections', 1, 1 << 20));
  set('newConnectionsPerSecond', integer('new-connections-per-second', 1, 1 << 20));
  set('newConnectionsBurst', integer('new-connections-burst', 1, 1 << 20));
  set('udpFlowIdleTimeoutMs', duration('udp-flow-idle-timeout'));
  set('udpMaxFlows', integer('udp-max-flows', 1, 1 << 20));
  const ranges = svc.spec?.loadBalancerSourceRanges;
  if (ranges && ranges.length > 0) options.sourceRanges = ranges;

  const kind = raw('health-check')?.trim().toLowerCase();
  const path = raw('health-check-path');
  if (kind !== undefined && kind !== 'tcp' && kind !== 'http' && kind !== 'none') problem('health-check', `"${raw('health-check')}" is not tcp, http or none`);
  else if (kind === 'tcp' && path !== undefined) problem('health-check-path', 'is set but health-check is tcp; use http, or drop the path');
  else if (path !== undefined && !path.startsWith('/')) problem('health-check-path', `"${path}" does not start with "/"`);
  else if ((kind === 'tcp' || kind === 'http' || path !== undefined) && kind !== 'none') {
    const hc: NonNullable<ServiceProxyOptions['healthCheck']> = {};
    if (kind === 'http' || path !== undefined) hc.httpPath = path ?? '/';
    const port = integer('health-check-port', 1, 65_535);
    if (port !== undefined) hc.port = port;
    const interval = duration('health-check-interval');
    if (interval !== undefined) hc.intervalMs = interval;
    const timeout = duration('health-check-timeout');
    if (timeout !== undefined) hc.timeoutMs = timeout;
    // HAProxy bounds nothing here; 100 consecutive results is already minutes of checks.
    const rise = integer('health-check-rise', 1, 100);
    if (rise !== undefined) hc.rise = rise;
    const fall = integer('health-check-fall', 1, 100);
    if (fall !== undefined) hc.fall = fall;
    options.healthCheck = hc;
  }
  return { options, problems };
}
