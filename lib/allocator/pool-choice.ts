/**
 * Which pools a Service may draw from, and in what order (ANCHORS.md, "Allocation"):
 * pools whose serviceAllocation matches it, by priority; then autoAssign pools without
 * serviceAllocation. Both lists are sorted so every run, and every replica, agrees
 * (MetalLB walks a Go map for the second list: random order).
 */
import type { Pool } from '../config/model.js';
import { anySelectorMatches } from '../labels/selector.js';
import type { ServiceRequest } from './types.js';

/**
 * serviceAllocation's conditions: the namespace (listed, or its labels matching a
 * selector) AND the Service's labels (any selector). An absent condition is no constraint.
 */
export function poolAdmits(pool: Pool, req: ServiceRequest): boolean {
  const sa = pool.serviceAllocation;
  if (sa === undefined) return true;
  const nsConstrained = sa.namespaces.length > 0 || sa.namespaceSelectors.length > 0;
  if (nsConstrained && !sa.namespaces.includes(req.namespace) && !anySelectorMatches(sa.namespaceSelectors, req.namespaceLabels)) return false;
  if (sa.serviceSelectors.length > 0 && !anySelectorMatches(sa.serviceSelectors, req.labels)) return false;
  return true;
}

export interface PoolOrder<P extends { readonly pool: Pool }> {
  /** autoAssign pools with serviceAllocation, by priority then name; filter with poolAdmits. */
  readonly pinned: readonly P[];
  /** autoAssign pools without serviceAllocation, by name. */
  readonly general: readonly P[];
}

/**
 * Computed once per configuration. A pool whose serviceAllocation sets only a priority
 * admits every Service (MetalLB would use it for none: it is in neither of its indexes).
 */
export function orderPools<P extends { readonly pool: Pool }>(pools: readonly P[]): PoolOrder<P> {
  const byName = (a: P, b: P) => a.pool.name.localeCompare(b.pool.name);
  return {
    pinned: pools.filter((p) => p.pool.autoAssign && p.pool.serviceAllocation !== undefined).sort((a, b) => priorityOf(a.pool) - priorityOf(b.pool) || byName(a, b)),
    general: pools.filter((p) => p.pool.autoAssign && p.pool.serviceAllocation === undefined).sort(byName),
  };
}

/** Lower wins; unset sorts after every set priority (MetalLB: 0 = unset = lowest). */
function priorityOf(p: Pool): number {
  const prio = p.serviceAllocation?.priority;
  return prio === undefined || prio <= 0 ? Number.MAX_SAFE_INTEGER : prio;
}
