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

/**
 * Pools tried for a Service with neither requested IPs nor a pool annotation. A pool
 * whose serviceAllocation sets only a priority admits every Service (MetalLB would use it
 * for none: it is in neither its namespace nor its selector index).
 */
export function poolsInOrder(pools: readonly Pool[], req: ServiceRequest): { pinned: Pool[]; general: Pool[] } {
  const pinned = pools
    .filter((p) => p.autoAssign && p.serviceAllocation !== undefined && poolAdmits(p, req))
    .sort((a, b) => priorityOf(a) - priorityOf(b) || a.name.localeCompare(b.name));
  const general = pools.filter((p) => p.autoAssign && p.serviceAllocation === undefined).sort((a, b) => a.name.localeCompare(b.name));
  return { pinned, general };
}

/** Lower wins; unset sorts after every set priority (MetalLB: 0 = unset = lowest). */
function priorityOf(p: Pool): number {
  const prio = p.serviceAllocation?.priority;
  return prio === undefined || prio <= 0 ? Number.MAX_SAFE_INTEGER : prio;
}
