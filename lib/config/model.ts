/**
 * Beacon's configuration model: what every transport (ConfigMap, CRDs, a local
 * file) parses into, and what the allocator, the controller and the speaker
 * read. Values here are already validated; see ./validate.ts for the rules.
 * Field names follow MetalLB's metallb.io/v1beta1 API (../shared/ANCHORS.md).
 */
import type { IPRange } from '../ip/range.js';
import type { LabelSelector, Labels } from '../labels/selector.js';

/** `IPAddressPool.spec.serviceAllocation`: which Services a pool prefers or is reserved for. */
export interface ServiceAllocation {
  /** Lower wins; undefined sorts after every set priority (MetalLB: unset = lowest). */
  readonly priority: number | undefined;
  readonly namespaces: readonly string[];
  readonly namespaceSelectors: readonly LabelSelector[];
  readonly serviceSelectors: readonly LabelSelector[];
}

export interface Pool {
  readonly name: string;
  readonly labels: Labels;
  /** In the order the document lists them: allocation walks them in this order. */
  readonly ranges: readonly IPRange[];
  readonly autoAssign: boolean;
  readonly avoidBuggyIPs: boolean;
  /** Undefined when the document has no serviceAllocation (then the pool serves any Service). */
  readonly serviceAllocation: ServiceAllocation | undefined;
}

export interface L2Advertisement {
  readonly name: string;
  /** Pool names; with ipAddressPoolSelectors empty too, the advertisement covers every pool. */
  readonly ipAddressPools: readonly string[];
  readonly ipAddressPoolSelectors: readonly LabelSelector[];
  /** Empty means every node may announce. */
  readonly nodeSelectors: readonly LabelSelector[];
  /** Empty means every eligible interface. */
  readonly interfaces: readonly string[];
  readonly serviceSelectors: readonly LabelSelector[];
}

export interface Config {
  /** Sorted by name, so every consumer iterates them in the same order. */
  readonly pools: readonly Pool[];
  readonly l2Advertisements: readonly L2Advertisement[];
}

export const EMPTY_CONFIG: Config = Object.freeze({ pools: Object.freeze([]), l2Advertisements: Object.freeze([]) });
