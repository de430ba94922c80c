/**
 * One TCP frontend (a Service's IP:port): accepts, picks a backend, connects (retrying on
 * another backend when a connect fails, so the client does not see the dead one), sends
 * the PROXY header if asked, then relays both ways with backpressure and half-close.
 * Any socket error ends that connection only.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Balancer, type BalanceMode } from '../../lib/balancer/balancer.js';
import { BackendHealth, DEFAULT_HEALTH, type Transition } from '../../lib/health/health.js';
import { encodeV1, encodeV2 } from '../../lib/proxy/proxy-protocol.js';
import { TokenBucket } from '../../lib/proxy/rate-limit.js';

export interface Backend {
  readonly ip: string;
  readonly port: number;
  readonly state: 'ready' | 'terminating';
}

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
  /** spec.loadBalancerSourceRanges, parsed (lib/proxy/source-ranges.ts). */
  readonly allowClient: (client: string) => boolean;
  /** New connections per second and the burst allowed above it; 0: no limit. */
  readonly newConnectionsPerSecond: number;
  readonly newConnectionsBurst: number;
}

export const DEFAULT_TCP_OPTIONS: TcpFrontendOptions = {
  balance: 'roundRobin', affinityTimeoutMs: 0, connectTimeoutMs: 3000, idleTimeoutMs: 300_000,
  connectAttempts: 3, maxConnections: 50_000, proxyProtocol: undefined, activeChecks: false,
  allowClient: () => true, newConnectionsPerSecond: 0, newConnectionsBurst: 0,
};

export interface FrontendStats {
  active: number;
  total: number;
  bytesIn: number;
  bytesOut: number;
  /** By reason: connectFailed, noHealthyBackend, noBackend, idleTimeout, reset, sourceDenied, rateLimited. */
  errors: Record<string, number>;
  backends: Record<string, { active: number; total: number; healthy: boolean }>;
}

const idOf = (b: { ip: string; port: number }) => (b.ip.includes(':') ? `[${b.ip}]:${b.port}` : `${b.ip}:${b.port}`);

export class TcpFrontend {
  readonly #balancer: Balancer;
  readonly #health = new Map<string, BackendHealth>();
  readonly #addr = new Map<string, Backend>();
  readonly #sockets = new Set<Socket>();
  readonly #totals = new Map<string, number>();
  #server: Server | undefined;
  readonly #bucket: TokenBucket | undefined;
  readonly stats: FrontendStats = { active: 0, total: 0, bytesIn: 0, bytesOut: 0, errors: {}, backends: {} };

  constructor(
    readonly ip: string,
    readonly port: number,
    private readonly options: TcpFrontendOptions,
    private readonly onTransition: (backend: string, t: Exclude<Transition, undefined>) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#balancer = new Balancer({ mode: options.balance, affinityTimeoutMs: options.affinityTimeoutMs });
    if (options.newConnectionsPerSecond > 0) {
      this.#bucket = new TokenBucket(options.newConnectionsPerSecond, Math.max(1, options.newConnectionsBurst), now());
    }
  }

  update(backends: readonly Backend[]): void {
    for (const b of backends) this.#addr.set(idOf(b), b);
    const ids = new Set(backends.map(idOf));
    for (const id of [...this.#addr.keys()]) if (!ids.has(id)) { this.#addr.delete(id); this.#health.delete(id); }
    for (const id of ids) if (!this.#health.has(id)) this.#health.set(id, new BackendHealth(DEFAULT_HEALTH, !this.options.activeChecks));
    this.#balancer.update(backends.map((b) => ({ id: idOf(b), state: b.state })), !this.options.activeChecks);
    for (const [id, h] of this.#health) this.#balancer.setHealthy(id, h.healthy);
  }

  /** An active check's result for `backend` (`ip:port`). */
  checkResult(backend: string, pass: boolean): void {
    const h = this.#health.get(backend);
    if (!h) return;
    const t = h.check(pass ? 'pass' : 'fail');
    if (t) this.#transition(backend, t);
  }

  backendIds(): string[] {
    return [...this.#addr.keys()];
  }

  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => this.#accept(client));
    server.maxConnections = this.options.maxConnections;
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
      await Promise.race([closed, new Promise((r) => setTimeout(r, drainMs).unref())]);
    }
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
    const pick = this.#balancer.pick(client.remoteAddress ?? '', this.now(), tried);
    if ('none' in pick) {
      this.#error(tried.size > 0 ? 'connectFailed' : pick.none);
      client.destroy();
      return;
    }
    const id = pick.backend;
    const backend = this.#addr.get(id)!;
    const upstream = connect({ host: backend.ip, port: backend.port, allowHalfOpen: true, noDelay: true, timeout: this.options.connectTimeoutMs });
    const clientGone = () => upstream.destroy();
    client.once('close', clientGone);
    const failed = () => {
      client.off('close', clientGone);
      upstream.destroy();
      const t = this.#health.get(id)?.connectFailed();
      if (t) this.#transition(id, t);
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
      else this.#relay(client, upstream, id);
    });
  }

  #relay(client: Socket, upstream: Socket, id: string): void {
    this.#track(upstream);
    this.#balancer.opened(id);
    this.#totals.set(id, (this.#totals.get(id) ?? 0) + 1);
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
    const finish = (reason?: string) => {
      if (done) return;
      done = true;
      if (reason) this.#error(reason);
      this.#balancer.closed(id);
      this.stats.bytesIn += client.bytesRead;
      this.stats.bytesOut += client.bytesWritten;
      client.destroy();
      upstream.destroy();
    };
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

  #transition(id: string, t: Exclude<Transition, undefined>): void {
    this.#balancer.setHealthy(id, t === 'up');
    this.onTransition(id, t);
  }

  #error(reason: string): void {
    this.stats.errors[reason] = (this.stats.errors[reason] ?? 0) + 1;
  }

  snapshot(): FrontendStats {
    const backends: FrontendStats['backends'] = {};
    for (const id of this.#addr.keys()) backends[id] = { active: this.#balancer.active(id), total: this.#totals.get(id) ?? 0, healthy: this.#balancer.isHealthy(id) };
    let active = 0;
    for (const b of Object.values(backends)) active += b.active;
    return { ...this.stats, errors: { ...this.stats.errors }, active, backends };
  }
}
