/**
 * Service → allocator input. The only place that knows how Kubernetes spells what the
 * allocator needs (STYLE.md: "a 30-line adapter turns a Service into allocator inputs").
 * Problems are values naming the field, so the controller can put them in an Event.
 */
import { formatIP, tryParseIP, type Family, type IP } from '../ip/address.js';
import type { Labels } from '../labels/selector.js';
import type { IPFamilyPolicy, Port, Protocol, ServiceRequest } from '../allocator/types.js';
import { readAnnotation } from './annotations.js';
import { serviceKey, type Service } from './types.js';

export interface ServiceProblem {
  /** e.g. `metadata.annotations[metallb.io/loadBalancerIPs]` or `spec.ipFamilyPolicy`. */
  readonly field: string;
  readonly reason: string;
}

export type RequestResult =
  | { readonly ok: true; readonly request: ServiceRequest }
  | { readonly ok: false; readonly problems: readonly ServiceProblem[] };

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];
const POLICIES: readonly IPFamilyPolicy[] = ['SingleStack', 'PreferDualStack', 'RequireDualStack'];
const FAMILIES: Readonly<Record<string, Family>> = { IPv4: 4, IPv6: 6 };

export function toServiceRequest(svc: Service, namespaceLabels: Labels = {}): RequestResult {
  const problems: ServiceProblem[] = [];
  const spec = svc.spec ?? {};
  const annotations = svc.metadata.annotations;
  const annotationField = (key: string | undefined, name: string) => `metadata.annotations[${key ?? `beacon-lb.io/${name}`}]`;

  const read = (name: 'loadBalancerIPs' | 'address-pool' | 'allow-shared-ip') => {
    const r = readAnnotation(annotations, name);
    if (r.ok) return r;
    problems.push({ field: annotationField(undefined, name), reason: r.reason });
    return { value: undefined, key: undefined };
  };

  const ports: Port[] = [];
  (spec.ports ?? []).forEach((p, i) => {
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    if (!PROTOCOLS.includes(protocol)) problems.push({ field: `spec.ports[${i}].protocol`, reason: `unknown protocol "${p.protocol}"` });
    else ports.push({ protocol, port: p.port });
  });

  const familyPolicy = (spec.ipFamilyPolicy ?? 'SingleStack') as IPFamilyPolicy;
  if (!POLICIES.includes(familyPolicy)) problems.push({ field: 'spec.ipFamilyPolicy', reason: `unknown policy "${spec.ipFamilyPolicy}"` });
  const families: Family[] = [];
  (spec.ipFamilies ?? ['IPv4']).forEach((f, i) => {
    const family = FAMILIES[f];
    if (family === undefined) problems.push({ field: `spec.ipFamilies[${i}]`, reason: `unknown family "${f}" (IPv4 or IPv6)` });
    else if (!families.includes(family)) families.push(family);
  });
  if (families.length === 0) families.push(4);

  const requestedIPs: IP[] = [];
  const ipsAnnotation = read('loadBalancerIPs');
  if (ipsAnnotation.value !== undefined) {
    const field = annotationField(ipsAnnotation.key, 'loadBalancerIPs');
    for (const text of ipsAnnotation.value.split(',').map((s) => s.trim())) {
      const ip = tryParseIP(text);
      if (ip === undefined) problems.push({ field, reason: `"${text}" is not an IP address` });
      else requestedIPs.push(ip);
    }
    // MetalLB: at most two addresses, one per family.
    if (requestedIPs.length > 2) problems.push({ field, reason: `at most 2 addresses, found ${requestedIPs.length}` });
    else if (requestedIPs.length === 2 && requestedIPs[0]!.family === requestedIPs[1]!.family) {
      problems.push({ field, reason: `${formatIP(requestedIPs[0]!)} and ${formatIP(requestedIPs[1]!)} are of the same family` });
    }
  }
  if (spec.loadBalancerIP) {
    const ip = tryParseIP(spec.loadBalancerIP);
    if (ip === undefined) problems.push({ field: 'spec.loadBalancerIP', reason: `"${spec.loadBalancerIP}" is not an IP address` });
    else if (ipsAnnotation.value === undefined) requestedIPs.push(ip);
    else if (requestedIPs.length !== 1 || requestedIPs[0]!.value !== ip.value || requestedIPs[0]!.family !== ip.family) {
      problems.push({ field: 'spec.loadBalancerIP', reason: `contradicts ${ipsAnnotation.key}="${ipsAnnotation.value}"` });
    }
  }

  const pool = read('address-pool').value;
  const sharingKey = read('allow-shared-ip').value ?? '';
  // Services sharing an IP must agree on where traffic goes: with Local policy the
  // announcing node depends on the endpoints, so the selectors must match (MetalLB).
  const backendKey = spec.externalTrafficPolicy === 'Local' ? selectorString(spec.selector ?? {}) : '';

  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    request: {
      key: serviceKey(svc),
      namespace: svc.metadata.namespace ?? 'default',
      labels: { ...svc.metadata.labels },
      namespaceLabels: { ...namespaceLabels },
      ports,
      sharingKey,
      backendKey,
      families,
      familyPolicy,
      requestedIPs,
      pool,
    },
  };
}

/** `a=1,b=2`, keys sorted: the same selector always gives the same key. */
function selectorString(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector).sort().map((k) => `${k}=${selector[k]}`).join(',');
}
