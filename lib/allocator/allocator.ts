/**
 * The IP allocator: MetalLB's semantics (ANCHORS.md, "Allocation" and "Sharing rules")
 * over indexes that keep every operation O(log n). Pure: values in, values out; it knows
 * nothing of Kubernetes (lib/service/request.ts builds its input).
 */
import type { Config, Pool } from '../config/model.js';
import { formatIP, ipKey, type Family, type IP } from '../ip/address.js';
import { buggyCount, rangeSize } from '../ip/range.js';
import { poolAdmits, poolsInOrder } from './pool-choice.js';
import { RangeIndex } from './range-index.js';
import type { AllocationFailure, AllocationResult, Port, PoolCounters, ServiceRequest } from './types.js';

interface Allocation {
  readonly pool: string;
  readonly ips: readonly IP[];
  readonly ports: readonly Port[];
  readonly sharingKey: string;
  readonly backendKey: string;
}

/** Who uses one address, and on which ports. */
interface AddressUse {
  sharingKey: string;
  backendKey: string;
  readonly ports: Map<string, string>; // "TCP/80" → service key
  readonly services: Set<string>;
  readonly range: RangeIndex;
  readonly pool: PoolState;
}

interface PoolState {
  readonly pool: Pool;
  readonly ranges: readonly RangeIndex[];
  readonly size: Record<Family, bigint>;
  readonly assigned: Record<Family, number>;
}

const portName = (p: Port) => `${p.protocol}/${p.port}`;
const fail = (reason: AllocationFailure, message: string): AllocationResult => ({ ok: false, reason, message });

export class Allocator {
  #pools = new Map<string, PoolState>();
  #poolList: Pool[] = [];
  readonly #allocs = new Map<string, Allocation>();
  readonly #uses = new Map<bigint, AddressUse>();
  readonly #bySharingKey = new Map<string, Set<bigint>>();

  /**
   * Installs a new configuration. Allocations whose addresses lie in no pool any more are
   * released and returned, for the caller to allocate again; the others move to whichever
   * pool now holds their addresses.
   */
  setConfig(config: Config): { released: string[] } {
    const previous = [...this.#allocs].sort(([a], [b]) => a.localeCompare(b));
    this.#allocs.clear();
    this.#uses.clear();
    this.#bySharingKey.clear();
    this.#poolList = [...config.pools];
    this.#pools = new Map(config.pools.map((p) => [p.name, newPoolState(p)]));
    const released: string[] = [];
    for (const [key, alloc] of previous) {
      const pool = this.#poolFor(alloc.ips);
      if (pool === undefined) released.push(key);
      else this.#record(key, { ...alloc, pool: pool.pool.name });
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
    for (const ip of alloc.ips) {
      const k = ipKey(ip);
      const use = this.#uses.get(k)!;
      for (const p of alloc.ports) if (use.ports.get(portName(p)) === key) use.ports.delete(portName(p));
      use.services.delete(key);
      if (use.services.size > 0) continue;
      this.#uses.delete(k);
      this.#unindexSharing(use.sharingKey, k);
      use.range.markFree(ip.value);
      use.pool.assigned[ip.family]--;
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
    return [...(this.#uses.get(ipKey(ip))?.services ?? [])].sort();
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
    if (held.ips.some((ip) => this.#sharingProblem(req, ip) !== undefined)) return undefined;
    let ips = held.ips;
    // PreferDualStack holding one family: add the other from the same pool when it can.
    if (req.requestedIPs.length === 0 && wantsDual(req) && req.familyPolicy === 'PreferDualStack' && ips.length === 1) {
      const other: Family = ips[0]!.family === 4 ? 6 : 4;
      const extra = this.#candidate(pool, other, req);
      if (extra !== undefined) ips = req.families[0] === other ? [extra, ips[0]!] : [ips[0]!, extra];
    }
    this.release(req.key);
    this.#record(req.key, { pool: held.pool, ips, ports: req.ports, sharingKey: req.sharingKey, backendKey: req.backendKey });
    return { ok: true, pool: held.pool, ips, changed: ips !== held.ips };
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
    const { pinned, general } = poolsInOrder(this.#poolList, req);
    const states = (ps: Pool[]) => ps.map((p) => this.#pools.get(p.name)!);
    const fromPinned = this.#pickFrom(states(pinned), req, 'no available IPs');
    if (fromPinned.ok) return fromPinned;
    const fromGeneral = this.#pickFrom(states(general), req, 'no available IPs');
    if (fromGeneral.ok || pinned.length === 0) return fromGeneral;
    // Both failed: exhaustion anywhere outranks "no such family" in the message.
    return fromPinned.reason === 'poolExhausted' ? fromPinned : fromGeneral;
  }

  /** MetalLB's findBestPoolForService: the first pool with every wanted family, else (PreferDualStack) one. */
  #pickFrom(pools: readonly PoolState[], req: ServiceRequest, exhausted: string): AllocationResult {
    const dual = wantsDual(req);
    const [primary, secondary] = [req.families[0]!, req.families[0] === 4 ? 6 : 4] as const;
    let fallback: { pool: PoolState; ip: IP } | undefined;
    let secondFallback: { pool: PoolState; ip: IP } | undefined;
    let familyOffered = false;
    for (const pool of pools) {
      const a = this.#candidate(pool, primary, req);
      if (!dual) {
        familyOffered ||= pool.ranges.some((r) => r.family === primary);
        if (a !== undefined) return this.#take(req, pool, [a]);
        continue;
      }
      familyOffered ||= pool.ranges.some((r) => r.family === primary) && pool.ranges.some((r) => r.family === secondary);
      const b = this.#candidate(pool, secondary, req);
      if (a !== undefined && b !== undefined) return this.#take(req, pool, [a, b]);
      if (req.familyPolicy !== 'PreferDualStack') continue;
      familyOffered ||= pool.ranges.length > 0;
      if (a !== undefined) fallback ??= { pool, ip: a };
      if (b !== undefined) secondFallback ??= { pool, ip: b };
    }
    const single = fallback ?? secondFallback;
    if (single !== undefined) return this.#take(req, single.pool, [single.ip]);
    if (!familyOffered) {
      const want = dual && req.familyPolicy === 'RequireDualStack' ? 'both IPv4 and IPv6' : `IPv${primary}`;
      return fail('familyNotAvailable', `no eligible pool offers ${want}`);
    }
    return fail('poolExhausted', exhausted);
  }

  #assignRequested(req: ServiceRequest, ips: readonly IP[]): AllocationResult {
    const families = new Set(ips.map((ip) => ip.family));
    if (ips.length > 2 || families.size !== ips.length) {
      return fail('invalidRequest', `at most one address per family: ${ips.map(formatIP).join(', ')}`);
    }
    const pool = this.#poolFor(ips);
    const shown = ips.map(formatIP).join(', ');
    if (pool === undefined) return fail('ipNotInPool', `${shown} ${ips.length > 1 ? 'are not together' : 'is not'} in any pool`);
    if (req.pool !== undefined && req.pool !== pool.pool.name) return fail('ipNotInPool', `${shown} is in pool "${pool.pool.name}", not "${req.pool}"`);
    if (!poolAdmits(pool.pool, req)) return fail('poolNotCompatible', `pool "${pool.pool.name}" does not admit ${req.key} (serviceAllocation)`);
    for (const ip of ips) {
      const problem = this.#sharingProblem(req, ip);
      if (problem !== undefined) return fail('ipUnavailable', problem);
    }
    return this.#take(req, pool, ips);
  }

  #take(req: ServiceRequest, pool: PoolState, ips: readonly IP[]): AllocationResult {
    this.release(req.key);
    this.#record(req.key, { pool: pool.pool.name, ips, ports: req.ports, sharingKey: req.sharingKey, backendKey: req.backendKey });
    return { ok: true, pool: pool.pool.name, ips, changed: true };
  }

  /** The lowest address of `family` in the pool this Service may use: free, or shareable. */
  #candidate(pool: PoolState, family: Family, req: ServiceRequest): IP | undefined {
    const shared = req.sharingKey === '' ? undefined : this.#bySharingKey.get(req.sharingKey);
    for (const range of pool.ranges) {
      if (range.family !== family) continue;
      let best = range.lowestFree();
      if (shared !== undefined) {
        for (const k of shared) {
          const use = this.#uses.get(k)!;
          if (use.range !== range) continue;
          const value = family === 4 ? k : k & ((1n << 128n) - 1n);
          if (best !== undefined && value >= best) continue;
          if (this.#sharingProblem(req, { family, value }) === undefined) best = value;
        }
      }
      if (best !== undefined) return { family, value: best };
    }
    return undefined;
  }

  /** Why `req` may not use `ip`, or undefined if it may (MetalLB's checkSharing). */
  #sharingProblem(req: ServiceRequest, ip: IP): string | undefined {
    const use = this.#uses.get(ipKey(ip));
    if (use === undefined) return undefined;
    const others = [...use.services].filter((s) => s !== req.key);
    // The sole user may change its sharing key and ports in place.
    if (others.length === 0) return undefined;
    const where = `${formatIP(ip)} (used by ${others.sort().join(', ')})`;
    if (use.sharingKey === '') return `${where}: the existing Service does not allow sharing`;
    if (req.sharingKey === '') return `${where}: this Service does not allow sharing`;
    if (use.sharingKey !== req.sharingKey) return `${where}: sharing key "${req.sharingKey}" does not match "${use.sharingKey}"`;
    if (use.backendKey !== req.backendKey) return `${where}: backend key "${req.backendKey}" does not match "${use.backendKey}"`;
    for (const p of req.ports) {
      const holder = use.ports.get(portName(p));
      if (holder !== undefined && holder !== req.key) return `${where}: port ${portName(p)} is already used by ${holder}`;
    }
    return undefined;
  }

  /** Records an allocation already known to be permissible. */
  #record(key: string, alloc: Allocation): void {
    this.#allocs.set(key, alloc);
    for (const ip of alloc.ips) {
      const k = ipKey(ip);
      let use = this.#uses.get(k);
      if (use === undefined) {
        const pool = this.#pools.get(alloc.pool)!;
        const range = pool.ranges.find((r) => r.family === ip.family && r.contains(ip.value))!;
        use = { sharingKey: alloc.sharingKey, backendKey: alloc.backendKey, ports: new Map(), services: new Set(), range, pool };
        this.#uses.set(k, use);
        range.markUsed(ip.value);
        pool.assigned[ip.family]++;
      } else if (use.sharingKey !== alloc.sharingKey) {
        this.#unindexSharing(use.sharingKey, k);
      }
      use.sharingKey = alloc.sharingKey;
      use.backendKey = alloc.backendKey;
      if (alloc.sharingKey !== '') {
        let set = this.#bySharingKey.get(alloc.sharingKey);
        if (set === undefined) this.#bySharingKey.set(alloc.sharingKey, (set = new Set()));
        set.add(k);
      }
      for (const p of alloc.ports) use.ports.set(portName(p), key);
      use.services.add(key);
    }
  }

  #unindexSharing(sharingKey: string, k: bigint): void {
    const set = this.#bySharingKey.get(sharingKey);
    if (set === undefined) return;
    set.delete(k);
    if (set.size === 0) this.#bySharingKey.delete(sharingKey);
  }

  /** The pool holding every one of `ips` (honouring avoidBuggyIPs), if any. */
  #poolFor(ips: readonly IP[]): PoolState | undefined {
    for (const pool of this.#pools.values()) {
      if (ips.every((ip) => pool.ranges.some((r) => r.family === ip.family && r.contains(ip.value)))) return pool;
    }
    return undefined;
  }
}

function newPoolState(pool: Pool): PoolState {
  const size: Record<Family, bigint> = { 4: 0n, 6: 0n };
  for (const r of pool.ranges) size[r.family] += rangeSize(r) - (pool.avoidBuggyIPs ? buggyCount(r) : 0n);
  return { pool, ranges: pool.ranges.map((r) => new RangeIndex(r, pool.avoidBuggyIPs)), size, assigned: { 4: 0, 6: 0 } };
}

function wantsDual(req: ServiceRequest): boolean {
  return req.families.length === 2 && req.familyPolicy !== 'SingleStack';
}

/** Do held addresses still satisfy the family policy? PreferDualStack keeps one family. */
function familiesFit(req: ServiceRequest, ips: readonly IP[]): boolean {
  const held = new Set(ips.map((ip) => ip.family));
  if (!wantsDual(req)) return ips.length === 1 && held.has(req.families[0]!);
  if (req.familyPolicy === 'RequireDualStack') return held.size === 2;
  return [...held].every((f) => req.families.includes(f));
}

function sameIPs(a: readonly IP[], b: readonly IP[]): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map(ipKey));
  return b.every((ip) => keys.has(ipKey(ip)));
}
