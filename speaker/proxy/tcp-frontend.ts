/**
 * One TCP frontend (a Service's IP:port): accepts, picks a backend, connects (retrying on
 * another backend when a connect fails, so the client does not see the dead one), sends
 * the PROXY header if asked, then relays both ways with backpressure and half-close.
 * Any socket error ends that connection only.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { BalanceMode } from '../../lib/balancer/balancer.js';
import { BackendPool, type BackendAddress, type BackendStats } from '../../lib/balancer/backend-pool.js';
import { DEFAULT_HEALTH, type HealthOptions } from '../../lib/health/health.js';
import { encodeV1, encodeV2 } from '../../lib/proxy/proxy-protocol.js';
import { TokenBucket } from '../../lib/proxy/rate-limit.js';

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

export interface FrontendStats {
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  /** By reason: connectFailed, noHealthyBackend, noBackend, idleTimeout, reset, sourceDenied, rateLimited, maxConnections. */
  errors: Record<string, number>;
  backends: Record<string, BackendStats>;
}

export class TcpFrontend {
  readonly #pool: BackendPool;
  readonly #sockets = new Set<Socket>();
  #active = 0;
  /** Per backend, how to cut each of its open connections (for draining a removed backend). */
  readonly #cutters = new Map<string, Set<() => void>>();
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
        for (const cut of [...(this.#cutters.get(id) ?? [])]) cut();
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
    server.maxConnections = this.options.maxConnections;
    // Node closes connections above maxConnections itself and says so with 'drop'.
    server.on('drop', () => this.#error('maxConnections'));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.ip, port: this.port, exclusive: true }, () => { server.off('error', reject); resolve(); });
    });
  }

  get boundPort(): number {
    return (this.#server?.address() as { port: number } | null)?.port ?? this.port;
  }

  /** Stops accepting; open connections get `drainMs` to finish, then are cut. Idempotent. */
  async close(drainMs = 0): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (drainMs > 0 && this.#sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise((r) => { timer = setTimeout(r, drainMs); })]);
      clearTimeout(timer);
    }
    for (const t of this.#drainTimers) clearTimeout(t);
    this.#drainTimers.clear();
    for (const s of this.#sockets) s.destroy();
    await closed;
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
    this.stats.total++;
    this.#connect(client, new Set(), this.options.connectAttempts);
  }

  #connect(client: Socket, tried: Set<string>, attemptsLeft: number): void {
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
    const clientGone = () => upstream.destroy();
    client.once('close', clientGone);
    const failed = () => {
      client.off('close', clientGone);
      upstream.destroy();
      this.#pool.connectFailed(id);
      tried.add(id);
      if (attemptsLeft > 1) this.#connect(client, tried, attemptsLeft - 1);
      else { this.#error('connectFailed'); client.destroy(); }
    };
    upstream.once('timeout', failed);
    upstream.once('error', failed);
    upstream.once('connect', () => {
      upstream.off('timeout', failed);
      upstream.off('error', failed);
      client.off('close', clientGone);
      upstream.setTimeout(0);
      if (client.destroyed) upstream.destroy();
      else this.#relay(client, upstream, id, this.now() - started);
    });
  }

  #relay(client: Socket, upstream: Socket, id: string, connectMs: number): void {
    this.#track(upstream);
    this.#pool.opened(id, connectMs);
    this.#active++;
    if (this.options.proxyProtocol) {
      const conn = { protocol: 'TCP' as const, sourceAddress: client.remoteAddress ?? '', sourcePort: client.remotePort ?? 0, destinationAddress: client.localAddress ?? '', destinationPort: client.localPort ?? 0 };
      upstream.write(this.options.proxyProtocol === 'v1' ? encodeV1(conn) : encodeV2(conn));
    }
    // pipe() carries backpressure (a slow reader pauses the other side) and half-close
    // (end() follows a FIN, because both sockets allow half-open).
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    let done = false;
    const mine = this.#cutters.get(id) ?? new Set<() => void>();
    this.#cutters.set(id, mine);
    const finish = (reason?: string) => {
      if (done) return;
      done = true;
      if (reason) this.#error(reason);
      this.#active--;
      this.#pool.closed(id, client.bytesRead, client.bytesWritten, reason);
      this.stats.bytesIn += client.bytesRead;
      this.stats.bytesOut += client.bytesWritten;
      mine.delete(cut);
      if (mine.size === 0 && this.#cutters.get(id) === mine) this.#cutters.delete(id);
      client.destroy();
      upstream.destroy();
    };
    const cut = () => finish('backendRemoved');
    mine.add(cut);
    const idle = () => finish('idleTimeout');
    client.setTimeout(this.options.idleTimeoutMs, idle);
    upstream.setTimeout(this.options.idleTimeoutMs, idle);
    upstream.on('error', () => finish('reset'));
    client.on('error', () => finish('reset'));
    // Each side ends its write half when the other's FIN arrives; fully done when both closed.
    let closes = 0;
    const closed = () => { if (++closes === 2) finish(); };
    client.once('close', closed);
    upstream.once('close', closed);
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
