/**
 * One Service port's backends as the data plane sees them: where they are, whether they
 * may take new connections (Balancer), whether they are healthy (BackendHealth), and their
 * counters. Shared by the TCP and UDP frontends so both follow the same rules. Pure: the
 * frontends report what happened (opened, closed, connect failed, check result, bytes);
 * health transitions come back through `onTransition` for the logger.
 */
import { Balancer, type BalancerOptions } from './balancer.js';
import { BackendHealth, type HealthOptions, type Transition } from '../health/health.js';

export interface BackendAddress {
  readonly ip: string;
  readonly port: number;
  readonly state: 'ready' | 'terminating';
}

export interface BackendStats {
  state: 'ready' | 'terminating';
  healthy: boolean;
  /** Open connections (TCP) or live flows (UDP). */
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  /** By reason: connectFailed, reset, idleTimeout, unreachable... */
  errors: Record<string, number>;
  /** Sum and count of connect latencies in ms; their ratio is the mean. */
  connectMsSum: number;
  connectCount: number;
  /** Connects that took at most CONNECT_BUCKETS_MS[i] ms and more than the bound before (not cumulative). */
  connectBuckets: number[];
}

/**
 * Connect latency histogram bounds in ms. A connect on one LAN takes well under a
 * millisecond; the top bounds reach the default connect timeout (3 s), where a SYN
 * retransmission (1 s initial RTO, RFC 6298 §2.1) shows up as a jump.
 */
export const CONNECT_BUCKETS_MS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500];

/**
 * How long a backend ejected by real traffic alone (refused, ICMP unreachable) stays out
 * when no active check exists to bring it back: NGINX's `fail_timeout` default (10 s,
 * ngx_http_upstream_module), after which it takes traffic again and one more refusal
 * ejects it again. Without it one refused datagram or connection, say during a backend's
 * restart, ejects the backend for good (issue: UDP frontends went silent after a refusal).
 */
export const PASSIVE_EJECTION_MS = 10_000;

export interface PoolOptions {
  readonly balancer: BalancerOptions;
  readonly health: HealthOptions;
  /** True: new backends start unhealthy until an active check passes; false: kubelet readiness is the evidence. */
  readonly activeChecks: boolean;
  /** How long a passive ejection lasts without active checks; PASSIVE_EJECTION_MS when unset. */
  readonly passiveEjectionMs?: number;
}

/** What a frontend's options say about its pool (TCP and UDP frontends alike). */
export interface FrontendPoolSettings {
  readonly balance: BalancerOptions['mode'];
  readonly affinityTimeoutMs: number;
  readonly health: HealthOptions;
  readonly activeChecks: boolean;
  readonly passiveEjectionMs?: number;
}

/** A frontend's options as its pool's. */
export function poolOptions(o: FrontendPoolSettings): PoolOptions {
  const options = { balancer: { mode: o.balance, affinityTimeoutMs: o.affinityTimeoutMs }, health: o.health, activeChecks: o.activeChecks };
  return o.passiveEjectionMs === undefined ? options : { ...options, passiveEjectionMs: o.passiveEjectionMs };
}

export type PoolPick = { readonly id: string; readonly address: BackendAddress } | { readonly none: 'noBackend' | 'noHealthyBackend' };

/** `ip:port`, with brackets for IPv6, the backend's identity in stats and logs. */
export const backendId = (b: { readonly ip: string; readonly port: number }): string =>
  b.ip.includes(':') ? `[${b.ip}]:${b.port}` : `${b.ip}:${b.port}`;

interface Entry {
  address: BackendAddress;
  health: BackendHealth;
  stats: BackendStats;
  /** When real traffic ejected it (no active checks); undefined while healthy. */
  ejectedAt: number | undefined;
}

export class BackendPool {
  readonly #balancer: Balancer;
  readonly #entries = new Map<string, Entry>();
  /** Entries with `ejectedAt` set, so pick() looks for readmissions only when there are some. */
  #ejected = 0;

  constructor(
    private readonly options: PoolOptions,
    private readonly onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
  ) {
    this.#balancer = new Balancer(options.balancer);
  }

  /** Installs the desired backends; those that stay keep their health and counters. */
  update(backends: readonly BackendAddress[]): void {
    const ids = new Set<string>();
    for (const b of backends) {
      const id = backendId(b);
      ids.add(id);
      const cur = this.#entries.get(id);
      if (cur) { cur.address = b; cur.stats.state = b.state; continue; }
      const healthy = !this.options.activeChecks;
      this.#entries.set(id, {
        address: b,
        health: new BackendHealth(this.options.health, healthy), ejectedAt: undefined,
        stats: { state: b.state, healthy, active: 0, total: 0, bytesIn: 0, bytesOut: 0, errors: {}, connectMsSum: 0, connectCount: 0, connectBuckets: CONNECT_BUCKETS_MS.map(() => 0) },
      });
    }
    for (const [id, e] of this.#entries) if (!ids.has(id)) { if (e.ejectedAt !== undefined) this.#ejected--; this.#entries.delete(id); }
    this.#balancer.update(backends.map((b) => ({ id: backendId(b), state: b.state })), !this.options.activeChecks);
    for (const [id, e] of this.#entries) this.#balancer.setHealthy(id, e.health.healthy);
  }

  pick(client: string, now: number, exclude?: ReadonlySet<string>): PoolPick {
    if (this.#ejected > 0) this.readmitDue(now);
    const p = this.#balancer.pick(client, now, exclude);
    if ('none' in p) return p;
    return { id: p.backend, address: this.#entries.get(p.backend)!.address };
  }

  /** The backends a new connection may go to now (ready and healthy), in round-robin order. */
  usable(): { id: string; address: BackendAddress }[] {
    return this.#balancer.usable().map((id) => ({ id, address: this.#entries.get(id)!.address }));
  }

  addresses(): { id: string; address: BackendAddress }[] {
    return [...this.#entries].map(([id, e]) => ({ id, address: e.address }));
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  opened(id: string, connectMs?: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#balancer.opened(id);
    e.stats.active++;
    e.stats.total++;
    if (connectMs !== undefined) {
      e.stats.connectMsSum += connectMs;
      e.stats.connectCount++;
      const i = CONNECT_BUCKETS_MS.findIndex((bound) => connectMs <= bound);
      if (i >= 0) e.stats.connectBuckets[i]!++;
    }
  }

  /** A connection or flow ended; its bytes and, if it ended badly, why. */
  closed(id: string, bytesIn: number, bytesOut: number, reason?: string): void {
    const e = this.#entries.get(id);
    if (!e) return; // the backend went away meanwhile; the frontend counts the bytes
    this.#balancer.closed(id);
    if (e.stats.active > 0) e.stats.active--;
    e.stats.bytesIn += bytesIn;
    e.stats.bytesOut += bytesOut;
    if (reason) e.stats.errors[reason] = (e.stats.errors[reason] ?? 0) + 1;
  }

  /**
   * Real traffic could not reach the backend (refused, timed out, ICMP unreachable) at
   * `now` (ms). Without active checks an ejection lasts PASSIVE_EJECTION_MS.
   */
  connectFailed(id: string, now: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    e.stats.errors['connectFailed'] = (e.stats.errors['connectFailed'] ?? 0) + 1;
    const t = e.health.connectFailed();
    if (t === 'down' && !this.options.activeChecks) { e.ejectedAt = now; this.#ejected++; }
    this.#apply(id, e, t);
  }

  /**
   * Passive ejections that ran out are back in rotation (see PASSIVE_EJECTION_MS). pick()
   * calls it; an owner whose connections are not picked here (a native route) calls it
   * when an ejection's time is up. Returns the ms until the next ejection still running
   * ends, or undefined when none is.
   */
  readmitDue(now: number): number | undefined {
    if (this.#ejected === 0) return undefined;
    const lasts = this.options.passiveEjectionMs ?? PASSIVE_EJECTION_MS;
    let next: number | undefined;
    for (const [id, e] of this.#entries) {
      if (e.ejectedAt === undefined) continue;
      const left = e.ejectedAt + lasts - now;
      if (left > 0) { next = Math.min(next ?? left, left); continue; }
      e.ejectedAt = undefined;
      this.#ejected--;
      this.#apply(id, e, e.health.readmit());
    }
    return next;
  }

  checkResult(id: string, pass: boolean): void {
    const e = this.#entries.get(id);
    if (e) this.#apply(id, e, e.health.check(pass ? 'pass' : 'fail'));
  }

  isHealthy(id: string): boolean {
    return this.#entries.get(id)?.health.healthy ?? false;
  }

  expireAffinity(now: number): void {
    this.#balancer.expireAffinity(now);
  }

  /** A copy of every backend's counters. */
  stats(): Record<string, BackendStats> {
    const out: Record<string, BackendStats> = {};
    for (const [id, e] of this.#entries) out[id] = { ...e.stats, healthy: e.health.healthy, errors: { ...e.stats.errors }, connectBuckets: [...e.stats.connectBuckets] };
    return out;
  }

  #apply(id: string, e: Entry, t: Transition): void {
    if (!t) return;
    e.stats.healthy = t === 'up';
    this.#balancer.setHealthy(id, t === 'up');
    this.onTransition(id, t);
  }
}
