/**
 * What every TCP frontend (a Service's IP:port) does whatever carries its bytes: who may
 * connect (source ranges, new-connection rate, max connections), which backend (BackendPool:
 * balancing and health), the PROXY header, and the counters. Connections to a backend that
 * went away drain until `backendDrainMs`; close() drains until its deadline, then cuts.
 * Two transports extend it: tcp-frontend.ts (Node's net, any Relay) and native-frontend.ts
 * (the native relay accepts and connects itself).
 */
import type { BalanceMode } from '../../lib/balancer/balancer.js';
import { BackendPool, PASSIVE_EJECTION_MS, poolOptions, type BackendAddress, type BackendStats, type PoolPick } from '../../lib/balancer/backend-pool.js';
import { DEFAULT_HEALTH, type HealthOptions } from '../../lib/health/health.js';
import { encodeV1, encodeV2 } from '../../lib/proxy/proxy-protocol.js';
import { TokenBucket } from '../../lib/proxy/rate-limit.js';
import { ALLOW_EVERY_CLIENT } from '../../lib/proxy/source-ranges.js';
import type { RelayEndReason } from './relay.js';
import { BackendSlots } from './backend-slots.js';

export type Backend = BackendAddress;

export interface TcpFrontendOptions {
  readonly balance: BalanceMode;
  readonly affinityTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Both directions quiet this long: the connection is closed (HAProxy's timeout client/server). */
  readonly idleTimeoutMs: number;
  /** Connect attempts per client connection, each on a different backend. */
  readonly connectAttempts: number;
  readonly maxConnections: number;
  readonly proxyProtocol: 'v1' | 'v2' | undefined;
  /** False: backends are healthy until traffic or a check says otherwise (no active checks). */
  readonly activeChecks: boolean;
  /** Rise/fall thresholds and passive ejection (lib/health). */
  readonly health: HealthOptions;
  /** spec.loadBalancerSourceRanges, parsed (lib/proxy/source-ranges.ts; ALLOW_EVERY_CLIENT when there are none). */
  readonly allowClient: (client: string) => boolean;
  /** New connections per second and the burst allowed above it; 0: no limit. */
  readonly newConnectionsPerSecond: number;
  readonly newConnectionsBurst: number;
  /** Connections to a backend that left the endpoint list may finish for this long, then are cut. */
  readonly backendDrainMs: number;
  /** TCP keep-alive probes after this much silence, so dead peers are found (Linux's default is 2 h). */
  readonly keepAliveMs: number;
  /** How long a passive ejection lasts without active checks (PASSIVE_EJECTION_MS when unset). */
  readonly passiveEjectionMs?: number;
}

export const DEFAULT_TCP_OPTIONS: TcpFrontendOptions = {
  balance: 'roundRobin', affinityTimeoutMs: 0, connectTimeoutMs: 3000, idleTimeoutMs: 300_000,
  connectAttempts: 3, maxConnections: 50_000, proxyProtocol: undefined, activeChecks: false,
  health: DEFAULT_HEALTH,
  allowClient: ALLOW_EVERY_CLIENT, newConnectionsPerSecond: 0, newConnectionsBurst: 0,
  backendDrainMs: 30_000, keepAliveMs: 60_000,
};

/**
 * After cutting what is left on close, how long to wait for a native relay's reports (they
 * come from its threads within milliseconds; the bound only guards against a lost one).
 */
export const CUT_REPORT_MS = 1000;

export interface FrontendStats {
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  /** By reason: connectFailed, noHealthyBackend, noBackend, idleTimeout, reset, cut, sourceDenied, rateLimited, maxConnections. */
  errors: Record<string, number>;
  backends: Record<string, BackendStats>;
}

export abstract class TcpFrontendBase {
  readonly #pool: BackendPool;
  /** Relayed connections. */
  #active = 0;
  /** Accepted clients whose backend is still being connected (maxConnections counts them too). */
  #connecting = 0;
  /** Called when no connection is relayed or connecting any more (close() waits on it). */
  #onIdle: (() => void) | undefined;
  readonly #slots: BackendSlots;
  /** Drain deadlines of removed backends, ends of passive ejections. */
  readonly #timers = new Set<NodeJS.Timeout>();
  /** A readmission timer is pending (#readmitAfter). */
  #readmitting = false;
  readonly #bucket: TokenBucket | undefined;
  protected closing = false;
  /** close()'s drain is over: what is left, or connects late, is cut. */
  protected cutting = false;
  readonly stats: FrontendStats = { active: 0, total: 0, bytesIn: 0, bytesOut: 0, errors: {}, backends: {} };

  constructor(
    readonly ip: string,
    readonly port: number,
    protected readonly options: TcpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    protected readonly now: () => number = () => performance.now(),
  ) {
    const passiveEjectionMs = options.passiveEjectionMs ?? PASSIVE_EJECTION_MS;
    this.#pool = new BackendPool(poolOptions({ ...options, passiveEjectionMs }), (backend, t) => {
      onTransition(backend, t);
      // Without active checks an ejection runs out (BackendPool). pick() would notice, but a
      // native route connects without asking it: a timer brings the backend back either way.
      if (t === 'down' && !options.activeChecks && !this.#readmitting) this.#readmitAfter(passiveEjectionMs);
      this.backendsChanged();
    });
    const pool = this.#pool;
    this.#slots = new BackendSlots((id) => pool.has(id));
    if (options.newConnectionsPerSecond > 0) {
      this.#bucket = new TokenBucket(options.newConnectionsPerSecond, Math.max(1, options.newConnectionsBurst), now());
    }
  }

  abstract start(): Promise<void>;
  abstract get boundPort(): number;
  /** Stops accepting; resolves when the listener is gone. */
  protected abstract stopListening(): Promise<void>;
  /** Resolves once every client accepted before stopListening() is counted (native: its report is in). */
  protected quiesce(): Promise<void> {
    return Promise.resolve();
  }

  /** Ends clients accepted but not yet relayed. */
  protected abstract abortPending(): void;
  /** Cuts the relayed connections to the backend in `slot` (each then ends through ended()). */
  protected abstract cutSlot(slot: number): void;
  /** Cuts every relayed connection. */
  protected abstract cutAll(): void;

  update(backends: readonly Backend[]): void {
    this.#pool.update(backends);
    for (const slot of this.#slots.orphans()) {
      const s = this.#slots.get(slot)!;
      const id = s.id;
      this.#timer(this.options.backendDrainMs, () => {
        if (this.#pool.has(id) || s.id !== id || s.refs === 0) return; // it came back, or nothing is left
        s.cutReason = 'backendRemoved';
        this.cutSlot(slot);
      });
    }
    this.backendsChanged();
  }

  /** Readmits the passive ejections that ran out after `ms`, then again while some are left. */
  #readmitAfter(ms: number): void {
    this.#readmitting = true;
    this.#timer(ms, () => {
      this.#readmitting = false;
      const next = this.#pool.readmitDue(this.now());
      // A timer may fire a little before now() says the time is up (clocks differ): go again.
      if (next !== undefined) this.#readmitAfter(Math.ceil(next));
    });
  }

  /** Runs `fn` after `ms` unless close() comes first. */
  #timer(ms: number, fn: () => void): void {
    if (this.closing) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  /** The backends new connections may go to changed (an update or a health transition). */
  protected backendsChanged(): void {
    // Only a transport that hands the choice to its threads (native-frontend.ts) cares.
  }

  /** The backends a new connection may go to now, in round-robin order. */
  protected usableBackends(): { id: string; address: Backend }[] {
    return this.#pool.usable();
  }

  /** An active check's result for `backend` (`ip:port`). */
  checkResult(backend: string, pass: boolean): void {
    this.#pool.checkResult(backend, pass);
  }


  /** Drops expired ClientIP affinity entries; the owner calls it now and then. */
  expireAffinity(): void {
    this.#pool.expireAffinity(this.now());
  }

  /**
   * Stops accepting; open connections get `drainMs` to finish, then are cut. Resolves when
   * every connection has ended (its counters are in). Idempotent.
   */
  async close(drainMs = 0): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stopped = this.stopListening();
    await this.quiesce();
    if (drainMs > 0) await this.#idle(drainMs);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.cutting = true;
    this.abortPending();
    this.cutAll();
    // A native relay reports cuts from its own thread: wait for them, briefly.
    await this.#idle(CUT_REPORT_MS);
    await stopped;
  }

  /** Resolves when no connection is relayed or connecting any more, or after `ms`. */
  async #idle(ms: number): Promise<void> {
    if (this.#active + this.#connecting === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#onIdle = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#onIdle = undefined;
  }

  /** A new client: undefined when it may go on (then counted as connecting), else why not (counted). */
  protected admit(clientIp: string): string | undefined {
    let refused: string | undefined;
    if (!this.options.allowClient(clientIp)) refused = 'sourceDenied';
    else if (this.#bucket && !this.#bucket.take(this.now())) refused = 'rateLimited';
    else if (this.#active + this.#connecting >= this.options.maxConnections) refused = 'maxConnections';
    if (refused) { this.error(refused); return refused; }
    this.stats.total++;
    this.#connecting++;
    return undefined;
  }

  /** A client the transport admitted itself (a native route, whose limits matched these): counted as connecting. */
  protected admitted(): void {
    this.stats.total++;
    this.#connecting++;
  }

  /** The client admitted by admit() is relayed now, or was given up. */
  protected settled(): void {
    this.#connecting--;
    if (this.#active + this.#connecting === 0) this.#onIdle?.();
  }

  protected pick(clientIp: string, tried?: ReadonlySet<string>): PoolPick {
    return this.#pool.pick(clientIp, this.now(), tried);
  }

  /** The slot of backend `id` (ip:port), held until connectFailed(), unhold() or ended() gives it back. */
  protected hold(id: string): number {
    return this.#slots.hold(id);
  }

  /** One more reference to a slot already held (a native route's pick, held by the route). */
  protected holdSlot(slot: number): void {
    this.#slots.ref(slot);
  }

  /** The backend id in `slot`. */
  protected backendOf(slot: number): string {
    return this.#slots.get(slot)!.id;
  }

  /** A connect attempt on `slot` failed (passive health); the slot is given back. */
  protected connectFailed(slot: number): void {
    this.#pool.connectFailed(this.backendOf(slot), this.now());
    this.#slots.unref(slot);
  }

  /** Gives back a slot held by hold() whose attempt ended without a verdict on the backend. */
  protected unhold(slot: number): void {
    this.#slots.unref(slot);
  }

  protected proxyHeader(sourceAddress: string, sourcePort: number): Buffer | undefined {
    const version = this.options.proxyProtocol;
    if (!version) return undefined;
    const conn = { protocol: 'TCP' as const, sourceAddress, sourcePort, destinationAddress: this.ip, destinationPort: this.boundPort };
    return version === 'v1' ? encodeV1(conn) : encodeV2(conn);
  }

  /** The connect attempt on `slot` succeeded: the connection is relayed; the slot stays held until ended(). */
  protected relayed(slot: number, connectMs: number): void {
    this.#pool.opened(this.backendOf(slot), connectMs);
    this.#active++;
  }

  /** A relayed connection on `slot` ended. */
  protected ended(slot: number, bytesIn: number, bytesOut: number, why: RelayEndReason): void {
    const s = this.#slots.get(slot);
    if (!s) return;
    const reason = why === 'cut' ? s.cutReason ?? 'cut' : why === 'done' ? undefined : why;
    if (reason) this.error(reason);
    this.#active--;
    this.#pool.closed(s.id, bytesIn, bytesOut, reason);
    this.stats.bytesIn += bytesIn;
    this.stats.bytesOut += bytesOut;
    this.#slots.unref(slot);
    if (this.#active + this.#connecting === 0) this.#onIdle?.();
  }

  protected error(reason: string): void {
    this.stats.errors[reason] = (this.stats.errors[reason] ?? 0) + 1;
  }

  snapshot(): FrontendStats {
    return { ...this.stats, errors: { ...this.stats.errors }, active: this.#active, backends: this.#pool.stats() };
  }
}
