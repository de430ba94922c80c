/**
 * One TCP frontend (a Service's IP:port): accepts, picks a backend, connects (retrying on
 * another backend when a connect fails, so the client does not see the dead one), then
 * hands both sockets and the PROXY header, if asked, to the relay (relay.ts), which moves
 * the bytes with backpressure and half-close. Any socket error ends that connection only.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { BalanceMode } from '../../lib/balancer/balancer.js';
import { BackendPool, type BackendAddress, type BackendStats } from '../../lib/balancer/backend-pool.js';
import { DEFAULT_HEALTH, type HealthOptions } from '../../lib/health/health.js';
import { encodeV1, encodeV2 } from '../../lib/proxy/proxy-protocol.js';
import { TokenBucket } from '../../lib/proxy/rate-limit.js';
import { PipeRelay, type Relay, type RelayEnd } from './relay.js';

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
  /** spec.loadBalancerSourceRanges, parsed (lib/proxy/source-ranges.ts). */
  readonly allowClient: (client: string) => boolean;
  /** New connections per second and the burst allowed above it; 0: no limit. */
  readonly newConnectionsPerSecond: number;
  readonly newConnectionsBurst: number;
  /** Connections to a backend that left the endpoint list may finish for this long, then are cut. */
  readonly backendDrainMs: number;
  /** TCP keep-alive probes after this much silence, so dead peers are found (Linux's default is 2 h). */
  readonly keepAliveMs: number;
}

export const DEFAULT_TCP_OPTIONS: TcpFrontendOptions = {
  balance: 'roundRobin', affinityTimeoutMs: 0, connectTimeoutMs: 3000, idleTimeoutMs: 300_000,
  connectAttempts: 3, maxConnections: 50_000, proxyProtocol: undefined, activeChecks: false,
  health: DEFAULT_HEALTH,
  allowClient: () => true, newConnectionsPerSecond: 0, newConnectionsBurst: 0,
  backendDrainMs: 30_000, keepAliveMs: 60_000,
};

/**
 * After cutting what is left on close, how long to wait for a native relay's reports (they
 * come from its threads within milliseconds; the bound only guards against a lost one).
 */
const CUT_REPORT_MS = 1000;

export interface FrontendStats {
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  /** By reason: connectFailed, noHealthyBackend, noBackend, idleTimeout, reset, cut, sourceDenied, rateLimited, maxConnections. */
  errors: Record<string, number>;
  backends: Record<string, BackendStats>;
}

export class TcpFrontend {
  readonly #pool: BackendPool;
  /** Sockets not yet handed to the relay (accepted, connecting). */
  readonly #sockets = new Set<Socket>();
  /** Relayed connections, and client connections still being connected (maxConnections counts both). */
  #active = 0;
  #connecting = 0;
  /** Called when #active drops to 0 (close() waits on it while draining). */
  #onIdle: (() => void) | undefined;
  /** Per backend, how to cut each of its open connections (for draining a removed backend). */
  readonly #cutters = new Map<string, Set<(reason?: string) => void>>();
  readonly #drainTimers = new Set<NodeJS.Timeout>();
  #server: Server | undefined;
  readonly #bucket: TokenBucket | undefined;
  readonly stats: FrontendStats = { active: 0, total: 0, bytesIn: 0, bytesOut: 0, errors: {}, backends: {} };

  constructor(
    readonly ip: string,
    readonly port: number,
    private readonly options: TcpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
    private readonly relay: Relay = new PipeRelay(),
  ) {
    this.#pool = new BackendPool({ balancer: { mode: options.balance, affinityTimeoutMs: options.affinityTimeoutMs }, health: options.health, activeChecks: options.activeChecks }, onTransition);
    if (options.newConnectionsPerSecond > 0) {
      this.#bucket = new TokenBucket(options.newConnectionsPerSecond, Math.max(1, options.newConnectionsBurst), now());
    }
  }

  update(backends: readonly Backend[]): void {
    this.#pool.update(backends);
    for (const [id, cutters] of this.#cutters) {
      if (this.#pool.has(id) || cutters.size === 0) continue;
      const timer = setTimeout(() => {
        this.#drainTimers.delete(timer);
        if (this.#pool.has(id)) return; // it came back meanwhile
        for (const cut of [...(this.#cutters.get(id) ?? [])]) cut('backendRemoved');
      }, this.options.backendDrainMs);
      this.#drainTimers.add(timer);
    }
  }

  /** An active check's result for `backend` (`ip:port`). */
  checkResult(backend: string, pass: boolean): void {
    this.#pool.checkResult(backend, pass);
  }

  backendIds(): string[] {
    return this.#pool.addresses().map((a) => a.id);
  }

  /** Drops expired ClientIP affinity entries; the owner calls it now and then. */
  expireAffinity(): void {
    this.#pool.expireAffinity(this.now());
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.options.keepAliveMs }, (client) => this.#accept(client));
    // Not server.maxConnections: Node forgets a connection once the relay holds its socket.
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.ip, port: this.port, exclusive: true }, () => { server.off('error', reject); resolve(); });
    });
  }

  get boundPort(): number {
    return (this.#server?.address() as { port: number } | null)?.port ?? this.port;
  }

  /**
   * Stops accepting; open connections get `drainMs` to finish, then are cut. Resolves when
   * every connection has ended (its counters are in). Idempotent.
   */
  async close(drainMs = 0): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (drainMs > 0) await this.#idle(drainMs);
    for (const t of this.#drainTimers) clearTimeout(t);
    this.#drainTimers.clear();
    for (const s of this.#sockets) s.destroy();
    for (const cutters of this.#cutters.values()) for (const cut of [...cutters]) cut();
    // A native relay reports cuts from its own thread: wait for them, briefly.
    await this.#idle(CUT_REPORT_MS);
    await closed;
  }

  /** Resolves when no connection is relayed any more, or after `ms`. */
  async #idle(ms: number): Promise<void> {
    if (this.#active === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#onIdle = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.#onIdle = undefined;
  }

  #accept(client: Socket): void {
    this.#track(client);
    client.on('error', () => undefined); // reported through 'close'; never fatal
    if (!this.options.allowClient(client.remoteAddress ?? '')) {
      this.#error('sourceDenied');
      client.destroy();
      return;
    }
    if (this.#bucket && !this.#bucket.take(this.now())) {
      this.#error('rateLimited');
      client.destroy();
      return;
    }
    if (this.#active + this.#connecting >= this.options.maxConnections) {
      this.#error('maxConnections');
      client.destroy();
      return;
    }
    this.stats.total++;
    this.#connecting++;
    let connecting = true;
    const settled = () => { if (connecting) { connecting = false; this.#connecting--; } };
    client.once('close', settled);
    this.#connect(client, new Set(), this.options.connectAttempts, settled);
  }

  #connect(client: Socket, tried: Set<string>, attemptsLeft: number, settled: () => void): void {
    if (client.destroyed) return;
    const pick = this.#pool.pick(client.remoteAddress ?? '', this.now(), tried);
    if ('none' in pick) {
      this.#error(tried.size > 0 ? 'connectFailed' : pick.none);
      client.destroy();
      return;
    }
    const { id, address: backend } = pick;
    const started = this.now();
    const upstream = connect({ host: backend.ip, port: backend.port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.options.keepAliveMs, timeout: this.options.connectTimeoutMs });
    // Paused: nothing is read before the relay takes the socket (a native relay reads the descriptor itself).
    upstream.pause();
    const clientGone = () => upstream.destroy();
    client.once('close', clientGone);
    const failed = () => {
      client.off('close', clientGone);
      upstream.destroy();
      this.#pool.connectFailed(id);
      tried.add(id);
      if (attemptsLeft > 1) this.#connect(client, tried, attemptsLeft - 1, settled);
      else { this.#error('connectFailed'); client.destroy(); }
    };
    upstream.once('timeout', failed);
    upstream.once('error', failed);
    upstream.once('connect', () => {
      upstream.off('timeout', failed);
      upstream.off('error', failed);
      client.off('close', clientGone);
      upstream.setTimeout(0);
      settled();
      if (client.destroyed) upstream.destroy();
      else this.#relay(client, upstream, id, this.now() - started);
    });
  }

  #relay(client: Socket, upstream: Socket, id: string, connectMs: number): void {
    this.#sockets.delete(client); // the relay owns it now; close() cuts through the relay
    this.#pool.opened(id, connectMs);
    this.#active++;
    const proxyProtocol = this.options.proxyProtocol;
    let header: Buffer | undefined;
    if (proxyProtocol) {
      const conn = { protocol: 'TCP' as const, sourceAddress: client.remoteAddress ?? '', sourcePort: client.remotePort ?? 0, destinationAddress: client.localAddress ?? '', destinationPort: client.localPort ?? 0 };
      header = proxyProtocol === 'v1' ? encodeV1(conn) : encodeV2(conn);
    }
    const mine = this.#cutters.get(id) ?? new Set<() => void>();
    this.#cutters.set(id, mine);
    let cutReason: string | undefined;
    // Only numbers and strings are kept for the end: the sockets themselves may be gone
    // (a native relay destroys them once it holds their descriptors).
    const onEnd = (end: RelayEnd) => {
      const reason = end.reason === 'cut' ? cutReason ?? 'cut' : end.reason === 'done' ? undefined : end.reason;
      if (reason) this.#error(reason);
      this.#active--;
      this.#pool.closed(id, end.bytesIn, end.bytesOut, reason);
      this.stats.bytesIn += end.bytesIn;
      this.stats.bytesOut += end.bytesOut;
      mine.delete(cut);
      if (mine.size === 0 && this.#cutters.get(id) === mine) this.#cutters.delete(id);
      if (this.#active === 0) this.#onIdle?.();
    };
    const relayCut = this.relay.relay(client, upstream, { idleTimeoutMs: this.options.idleTimeoutMs, header }, onEnd);
    const cut = (reason?: string) => { cutReason ??= reason; relayCut(); };
    mine.add(cut);
  }

  #track(s: Socket): void {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
  }

  #error(reason: string): void {
    this.stats.errors[reason] = (this.stats.errors[reason] ?? 0) + 1;
  }

  snapshot(): FrontendStats {
    return { ...this.stats, errors: { ...this.stats.errors }, active: this.#active, backends: this.#pool.stats() };
  }
}
