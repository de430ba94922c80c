/**
 * The IP allocator: MetalLB's semantics (ANCHORS.md, "Allocation" and "Sharing rules")
 * over per-range indexes that keep every operation O(log n). Pure: values in, values out;
 * it knows nothing of Kubernetes (lib/service/request.ts builds its input).
 */
import type { Config, Pool } from '../config/model.js';
import { formatIP, ipEquals, type Family, type IP } from '../ip/address.js';
import { buggyCount, rangeSize } from '../ip/range.js';
import { orderPools, poolAdmits, type PoolOrder } from './pool-choice.js';
import { RangeIndex, type Offset } from './range-index.js';
import type { AllocationFailure, AllocationResult, Port, PoolCounters, ServiceRequest } from './types.js';

/** Who uses one address. Ports are read from the users' allocations when sharing is checked. */
interface AddressUse {
  readonly ip: IP;
  readonly offset: Offset;
  readonly range: RangeIndex<AddressUse>;
  readonly pool: PoolState;
  readonly sharingKey: string;
  readonly backendKey: string;
  readonly services: string[];
}

interface Allocation {
  readonly pool: string;
  readonly ips: readonly IP[];
  readonly uses: readonly AddressUse[];
  readonly ports: readonly Port[];
  readonly sharingKey: string;
  readonly backendKey: string;
}

interface PoolState {
  readonly pool: Pool;
  readonly ranges: readonly RangeIndex<AddressUse>[];
  readonly size: Record<Family, bigint>;
  readonly assigned: Record<Family, number>;
}

/** Where an address lives: a pool's range, at an offset; `use` if someone holds it. */
interface Slot {
  readonly pool: PoolState;
  readonly range: RangeIndex<AddressUse>;
  readonly offset: Offset;
  readonly ip: IP;
}

const fail = (reason: AllocationFailure, message: string): AllocationResult => ({ ok: false, reason, message });
const NO_POOLS: PoolOrder<PoolState> = { pinned: [], general: [] };

export class Allocator {
  #pools = new Map<string, PoolState>();
  #order = NO_POOLS;
  readonly #allocs = new Map<string, Allocation>();
  readonly #bySharingKey = new Map<string, Set<AddressUse>>();

  /**
   * Installs a new configuration. Allocations whose addresses lie in no pool any more are
   * released and returned, for the caller to allocate again; the others move to whichever
   * pool now holds their addresses.
   */
  setConfig(config: Config): { released: string[] } {
    const previous = [...this.#allocs].sort(([a], [b]) => a.localeCompare(b));
    this.#allocs.clear();
    this.#bySharingKey.clear();
    this.#pools = new Map(config.pools.map((p) => [p.name, newPoolState(p)]));
    this.#order = orderPools([...this.#pools.values()]);
    const released: string[] = [];
    for (const [key, alloc] of previous) {
      const slots = this.#slotsFor(alloc.ips);
      if (slots === undefined) released.push(key);
      else this.#record(key, slots, alloc);
    }
    return { released };
  }

  allocate(req: ServiceRequest): AllocationResult {
    const held = this.#allocs.get(req.key);
    if (held !== undefined) {
      const kept = this.#keep(req, held);
      if (kept !== undefined) return kept;
      this.release(req.key);
    }
    const result = this.#fresh(req);
    if (!result.ok || held === undefined) return result;
    return { ...result, changed: !sameIPs(held.ips, result.ips) };
  }

  /** Claims exactly `ips` for the Service, if a pool holds them and sharing allows. */
  assign(req: ServiceRequest, ips: readonly IP[]): AllocationResult {
    const held = this.#allocs.get(req.key);
    const result = this.#assignRequested(req, ips);
    if (result.ok && held !== undefined) return { ...result, changed: !sameIPs(held.ips, ips) };
    return result;
  }

  release(key: string): boolean {
    const alloc = this.#allocs.get(key);
    if (alloc === undefined) return false;
    this.#allocs.delete(key);
    for (const use of alloc.uses) {
      const i = use.services.indexOf(key);
      if (i >= 0) use.services.splice(i, 1);
      if (use.services.length > 0) continue;
      this.#unindexSharing(use);
      use.range.delete(use.offset);
      use.pool.assigned[use.ip.family]--;
    }
    return true;
  }

  ipsOf(key: string): readonly IP[] | undefined {
    return this.#allocs.get(key)?.ips;
  }

  poolOf(key: string): string | undefined {
    return this.#allocs.get(key)?.pool;
  }

  servicesOn(ip: IP): readonly string[] {
    const slot = this.#slotOf(ip);
    return slot === undefined ? [] : [...(slot.range.uses.get(slot.offset)?.services ?? [])].sort();
  }

  counters(pool: string): PoolCounters | undefined {
    const s = this.#pools.get(pool);
    if (s === undefined) return undefined;
    const a4 = BigInt(s.assigned[4]);
    const a6 = BigInt(s.assigned[6]);
    return { assignedIPv4: a4, assignedIPv6: a6, availableIPv4: s.size[4] - a4, availableIPv6: s.size[6] - a6 };
  }

  /** The held allocation, updated for new ports or keys, if it still satisfies the request. */
  #keep(req: ServiceRequest, held: Allocation): AllocationResult | undefined {
    const pool = this.#pools.get(held.pool);
    if (pool === undefined || !poolAdmits(pool.pool, req)) return undefined;
    if (req.requestedIPs.length > 0 && !sameIPs(req.requestedIPs, held.ips)) return undefined;
    if (req.pool !== undefined && req.pool !== held.pool) return undefined;
    if (req.requestedIPs.length === 0 && !familiesFit(req, held.ips)) return undefined;
    if (held.uses.some((use) => this.#sharingProblem(req, use) !== undefined)) return undefined;
    let slots: Slot[] = held.uses.map((u) => ({ pool, range: u.range, offset: u.offset, ip: u.ip }));
    // PreferDualStack holding one family: add the other from the same pool when it can.
    if (req.requestedIPs.length === 0 && wantsDual(req) && req.familyPolicy === 'PreferDualStack' && slots.length === 1) {
      const other: Family = slots[0]!.ip.family === 4 ? 6 : 4;
      const extra = this.#candidate(pool, other, req);
      if (extra !== undefined) slots = req.families[0] === other ? [extra, slots[0]!] : [slots[0]!, extra];
    }
    this.release(req.key);
    const alloc = this.#record(req.key, slots, req);
    return { ok: true, pool: held.pool, ips: alloc.ips, changed: slots.length !== held.uses.length };
  }

  #fresh(req: ServiceRequest): AllocationResult {
    if (req.requestedIPs.length > 0) {
      if (!familiesFit(req, req.requestedIPs)) {
        const want = wantsDual(req) ? `${req.familyPolicy} ${req.families.map((f) => `IPv${f}`).join('/')}` : `IPv${req.families[0]}`;
        return fail('invalidRequest', `requested ${req.requestedIPs.map(formatIP).join(', ')} does not fit ${want}`);
      }
      return this.#assignRequested(req, req.requestedIPs);
    }
    if (req.pool !== undefined) {
      const pool = this.#pools.get(req.pool);
      if (pool === undefined) return fail('noSuchPool', `pool "${req.pool}" does not exist`);
      if (!poolAdmits(pool.pool, req)) return fail('poolNotCompatible', `pool "${req.pool}" does not admit ${req.key} (serviceAllocation)`);
      return this.#pickFrom([pool], req, `no available IPs in pool "${req.pool}"`);
    }
    const pinned = this.#order.pinned.length === 0 ? [] : this.#order.pinned.filter((p) => poolAdmits(p.pool, req));
    const fromPinned = this.#pickFrom(pinned, req, 'no available IPs');
    if (fromPinned.ok) return fromPinned;
    const fromGeneral = this.#pickFrom(this.#order.general, req, 'no available IPs');
    if (fromGeneral.ok || pinned.length === 0) return fromGeneral;
    // Both failed: exhaustion anywhere outranks "no such family" in the message.
    return fromPinned.reason === 'poolExhausted' ? fromPinned : fromGeneral;
  }

  /** MetalLB's findBestPoolForService: the first pool with every wanted family, else (PreferDualStack) one. */
  #pickFrom(pools: readonly PoolState[], req: ServiceRequest, exhausted: string): AllocationResult {
    const dual = wantsDual(req);
    const primary = req.families[0]!;
    const secondary: Family = primary === 4 ? 6 : 4;
    let fallback: Slot | undefined;
    let secondFallback: Slot | undefined;
    for (const pool of pools) {
      const a = this.#candidate(pool, primary, req);
      if (!dual) {
        if (a !== undefined) return this.#take(req, [a]);
        continue;
      }
      const b = this.#candidate(pool, secondary, req);
      if (a !== undefined && b !== undefined) return this.#take(req, [a, b]);
      if (req.familyPolicy !== 'PreferDualStack') continue;
      fallback ??= a;
      secondFallback ??= b;
    }
    const single = fallback ?? secondFallback;
    if (single !== undefined) return this.#take(req, [single]);
    // Failed: say whether the family was missing or the addresses ran out.
    const offers = (p: PoolState, f: Family) => p.ranges.some((r) => r.family === f);
    const offered = pools.some((p) => !dual ? offers(p, primary)
      : req.familyPolicy === 'PreferDualStack' ? p.ranges.length > 0 : offers(p, primary) && offers(p, secondary));
    if (!offered) {
      const want = dual && req.familyPolicy === 'RequireDualStack' ? 'both IPv4 and IPv6' : `IPv${primary}`;
      return fail('familyNotAvailable', `no eligible pool offers ${want}`);
    }
    return fail('poolExhausted', exhausted);
  }

  #assignRequested(req: ServiceRequest, ips: readonly IP[]): AllocationResult {
    if (ips.length > 2 || new Set(ips.map((ip) => ip.family)).size !== ips.length) {
      return fail('invalidRequest', `at most one address per family: ${ips.map(formatIP).join(', ')}`);
    }
    const slots = this.#slotsFor(ips);
    const shown = ips.map(formatIP).join(', ');
    if (slots === undefined) return fail('ipNotInPool', `${shown} ${ips.length > 1 ? 'are not together' : 'is not'} in any pool`);
    const pool = slots[0]!.pool.pool;
    if (req.pool !== undefined && req.pool !== pool.name) return fail('ipNotInPool', `${shown} is in pool "${pool.name}", not "${req.pool}"`);
    if (!poolAdmits(pool, req)) return fail('poolNotCompatible', `pool "${pool.name}" does not admit ${req.key} (serviceAllocation)`);
    for (const slot of slots) {
      const problem = this.#sharingProblem(req, slot.range.uses.get(slot.offset));
      if (problem !== undefined) return fail('ipUnavailable', problem);
    }
    return this.#take(req, slots);
  }

  #take(req: ServiceRequest, slots: readonly Slot[]): AllocationResult {
    this.release(req.key);
    const alloc = this.#record(req.key, slots, req);
    return { ok: true, pool: alloc.pool, ips: alloc.ips, changed: true };
  }

  /** The lowest address of `family` in the pool this Service may use: free, or shareable. */
  #candidate(pool: PoolState, family: Family, req: ServiceRequest): Slot | undefined {
    const shared = req.sharingKey === '' ? undefined : this.#bySharingKey.get(req.sharingKey);
    for (const range of pool.ranges) {
      if (range.family !== family) continue;
      let best: Offset | undefined = range.lowestFree();
      if (shared !== undefined) {
        for (const use of shared) {
          if (use.range !== range || (best !== undefined && use.offset >= best)) continue;
          if (this.#sharingProblem(req, use) === undefined) best = use.offset;
        }
      }
      if (best !== undefined) return { pool, range, offset: best, ip: range.uses.get(best)?.ip ?? range.ipAt(best) };
    }
    return undefined;
  }

  /** Why `req` may not use an address, or undefined if it may (MetalLB's checkSharing). */
  #sharingProblem(req: ServiceRequest, use: AddressUse | undefined): string | undefined {
    if (use === undefined) return undefined;
    const others = use.services.filter((s) => s !== req.key);
    // The sole user may change its sharing key and ports in place.
    if (others.length === 0) return undefined;
    const where = `${formatIP(use.ip)} (used by ${others.sort().join(', ')})`;
    if (use.sharingKey === '') return `${where}: the existing Service does not allow sharing`;
    if (req.sharingKey === '') return `${where}: this Service does not allow sharing`;
    if (use.sharingKey !== req.sharingKey) return `${where}: sharing key "${req.sharingKey}" does not match "${use.sharingKey}"`;
    if (use.backendKey !== req.backendKey) return `${where}: backend key "${req.backendKey}" does not match "${use.backendKey}"`;
    for (const other of others) {
      const clash = this.#allocs.get(other)!.ports.find((q) => req.ports.some((p) => p.protocol === q.protocol && p.port === q.port));
      if (clash !== undefined) return `${where}: port ${clash.protocol}/${clash.port} is already used by ${other}`;
    }
    return undefined;
  }

  /** Records an allocation already known to be permissible. */
  #record(key: string, slots: readonly Slot[], want: { ports: readonly Port[]; sharingKey: string; backendKey: string }): Allocation {
    const uses = slots.map((slot) => {
      let use = slot.range.uses.get(slot.offset);
      // An address already in use keeps its keys: every path here checked sharing first,
      // so they equal `want`'s (a sole user changing its key released the address first).
      if (use === undefined) {
        use = { ip: slot.ip, offset: slot.offset, range: slot.range, pool: slot.pool, sharingKey: want.sharingKey, backendKey: want.backendKey, services: [] };
        slot.range.set(slot.offset, use);
        slot.pool.assigned[slot.ip.family]++;
        if (want.sharingKey !== '') {
          let set = this.#bySharingKey.get(want.sharingKey);
          if (set === undefined) this.#bySharingKey.set(want.sharingKey, (set = new Set()));
          set.add(use);
        }
      }
      use.services.push(key);
      return use;
    });
    const alloc: Allocation = {
      pool: slots[0]!.pool.pool.name,
      ips: uses.map((u) => u.ip),
      uses,
      ports: want.ports,
      sharingKey: want.sharingKey,
      backendKey: want.backendKey,
    };
    this.#allocs.set(key, alloc);
    return alloc;
  }

  #unindexSharing(use: AddressUse): void {
    const set = this.#bySharingKey.get(use.sharingKey);
    if (set === undefined) return;
    set.delete(use);
    if (set.size === 0) this.#bySharingKey.delete(use.sharingKey);
  }

  #slotOf(ip: IP): Slot | undefined {
    for (const pool of this.#pools.values()) {
      for (const range of pool.ranges) {
        if (range.family !== ip.family) continue;
        const offset = range.offsetOf(ip.value);
        if (offset !== undefined) return { pool, range, offset, ip };
      }
    }
    return undefined;
  }

  /** The slots of `ips`, all in one pool (honouring avoidBuggyIPs), or undefined. */
  #slotsFor(ips: readonly IP[]): Slot[] | undefined {
    const slots: Slot[] = [];
    for (const ip of ips) {
      const slot = this.#slotOf(ip);
      if (slot === undefined || (slots.length > 0 && slot.pool !== slots[0]!.pool)) return undefined;
      slots.push(slot);
    }
    return slots;
  }
}

function newPoolState(pool: Pool): PoolState {
  const size: Record<Family, bigint> = { 4: 0n, 6: 0n };
  for (const r of pool.ranges) size[r.family] += rangeSize(r) - (pool.avoidBuggyIPs ? buggyCount(r) : 0n);
  return { pool, ranges: pool.ranges.map((r) => new RangeIndex<AddressUse>(r, pool.avoidBuggyIPs)), size, assigned: { 4: 0, 6: 0 } };
}

function wantsDual(req: ServiceRequest): boolean {
  return req.families.length === 2 && req.familyPolicy !== 'SingleStack';
}

/** Do addresses satisfy the family policy? PreferDualStack is content with one family. */
function familiesFit(req: ServiceRequest, ips: readonly IP[]): boolean {
  const held = new Set(ips.map((ip) => ip.family));
  if (!wantsDual(req)) return ips.length === 1 && held.has(req.families[0]!);
  if (req.familyPolicy === 'RequireDualStack') return held.size === 2;
  return [...held].every((f) => req.families.includes(f));
}

function sameIPs(a: readonly IP[], b: readonly IP[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => ipEquals(x, y)));
}
