/**
 * What the allocator takes and returns. It knows nothing of Kubernetes: the
 * adapter in lib/service/ turns a Service into a ServiceRequest, and the
 * controller turns a result into status, annotations and Events.
 */
import type { Family, IP } from '../ip/address.js';
import type { Labels } from '../labels/selector.js';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface Port {
  readonly protocol: Protocol;
  readonly port: number;
}

export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

export interface ServiceRequest {
  /** `namespace/name`: the identity the allocator keys everything by. */
  readonly key: string;
  readonly namespace: string;
  readonly labels: Labels;
  /** Labels of the Service's namespace, for `serviceAllocation.namespaceSelectors`. */
  readonly namespaceLabels: Labels;
  readonly ports: readonly Port[];
  /** The sharing key from `allow-shared-ip`; '' means the Service does not share. */
  readonly sharingKey: string;
  /**
   * Services sharing an IP must send traffic to the same place: for Local policy the
   * selector must match (the key is the selector), for Cluster policy anything goes ('').
   */
  readonly backendKey: string;
  /** `spec.ipFamilies` in order; the first is the primary family. Never empty. */
  readonly families: readonly Family[];
  readonly familyPolicy: IPFamilyPolicy;
  /** From the loadBalancerIPs annotation or `spec.loadBalancerIP`; at most one per family. */
  readonly requestedIPs: readonly IP[];
  /** From the address-pool annotation, if any. */
  readonly pool: string | undefined;
}

/** Why an allocation failed: stable values, used as Event reasons' detail and metric labels. */
export type AllocationFailure =
  | 'noSuchPool' // the annotated pool does not exist
  | 'poolNotCompatible' // the pool's serviceAllocation excludes this Service
  | 'ipNotInPool' // a requested IP is in no pool, or not in the annotated one
  | 'ipUnavailable' // a requested IP is held by a Service we may not share with
  | 'familyNotAvailable' // no pool offers the family (or both, for RequireDualStack)
  | 'poolExhausted' // the chosen pool(s) have no free address for this Service
  | 'invalidRequest'; // the request contradicts itself (two IPs of one family...)

export type AllocationResult =
  | { readonly ok: true; readonly pool: string; readonly ips: readonly IP[]; readonly changed: boolean }
  | { readonly ok: false; readonly reason: AllocationFailure; readonly message: string };

/** Per-pool counters, as MetalLB's IPAddressPool status reports them. */
export interface PoolCounters {
  readonly assignedIPv4: bigint;
  readonly assignedIPv6: bigint;
  readonly availableIPv4: bigint;
  readonly availableIPv6: bigint;
}
