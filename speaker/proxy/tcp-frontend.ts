/**
 * A TCP frontend on Node's net: Node accepts and connects (retrying on another backend when
 * a connect fails, so the client does not see the dead one), then hands both sockets and
 * the PROXY header, if asked, to a Relay (relay.ts) that moves the bytes. Policy and
 * counters are the base's (tcp-frontend-base.ts). Any socket error ends that connection only.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { TcpFrontendBase, type TcpFrontendOptions } from './tcp-frontend-base.js';
import { PipeRelay, type Relay } from './relay.js';
import { failedOnProxySide } from './connect-errors.js';

export { DEFAULT_TCP_OPTIONS, type Backend, type FrontendStats, type TcpFrontendOptions } from './tcp-frontend-base.js';

export class TcpFrontend extends TcpFrontendBase {
  /** Sockets not yet handed to the relay (accepted, connecting). */
  readonly #sockets = new Set<Socket>();
  /** Per backend slot, how to cut each of its relayed connections. */
  readonly #cuts = new Map<number, Set<() => void>>();
  #server: Server | undefined;

  constructor(
    ip: string,
    port: number,
    options: TcpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    now: () => number = () => performance.now(),
    private readonly relay: Relay = new PipeRelay(),
  ) {
    super(ip, port, options, onTransition, now);
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

  protected stopListening(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return Promise.resolve();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }

  protected abortPending(): void {
    for (const s of this.#sockets) s.destroy();
  }

  protected cutSlot(slot: number): void {
    for (const cut of [...(this.#cuts.get(slot) ?? [])]) cut();
  }

  protected cutAll(): void {
    for (const slot of [...this.#cuts.keys()]) this.cutSlot(slot);
  }

  #accept(client: Socket): void {
    this.#sockets.add(client);
    client.once('close', () => this.#sockets.delete(client));
    client.on('error', () => undefined); // reported through 'close'; never fatal
    if (this.admit(client.remoteAddress ?? '')) {
      client.destroy();
      return;
    }
    let connecting = true;
    const settled = () => { if (connecting) { connecting = false; this.settled(); } };
    client.once('close', settled);
    this.#connect(client, new Set(), this.options.connectAttempts, settled);
  }

  #connect(client: Socket, tried: Set<string>, attemptsLeft: number, settled: () => void): void {
    if (client.destroyed) return;
    const pick = this.pick(client.remoteAddress ?? '', tried);
    if ('none' in pick) {
      this.error(tried.size > 0 ? 'connectFailed' : pick.none);
      client.destroy();
      return;
    }
    const { id, address: backend } = pick;
    const slot = this.hold(id);
    const started = this.now();
    const upstream = connect({ host: backend.ip, port: backend.port, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.options.keepAliveMs, timeout: this.options.connectTimeoutMs });
    // Paused: nothing is read before the relay takes the socket (a native relay reads the descriptor itself).
    upstream.pause();
    const clientGone = () => upstream.destroy();
    client.once('close', clientGone);
    const failed = (err?: NodeJS.ErrnoException) => {
      client.off('close', clientGone);
      upstream.destroy();
      if (!failedOnProxySide(err?.code)) this.connectFailed(slot); // out of descriptors is not the backend's fault
      tried.add(id);
      if (attemptsLeft > 1) this.#connect(client, tried, attemptsLeft - 1, settled);
      else { this.error('connectFailed'); client.destroy(); }
    };
    upstream.once('timeout', failed);
    upstream.once('error', failed);
    upstream.once('connect', () => {
      upstream.off('timeout', failed);
      upstream.off('error', failed);
      client.off('close', clientGone);
      upstream.setTimeout(0);
      if (client.destroyed) { this.unhold(slot); settled(); upstream.destroy(); return; }
      this.#sockets.delete(client); // the relay owns it now; close() cuts through the relay
      const header = this.proxyHeader(client.remoteAddress ?? '', client.remotePort ?? 0);
      // relayed() before settled(): the count of open connections never dips to 0 between.
      this.relayed(slot, this.now() - started);
      settled();
      const cuts = this.#cuts.get(slot) ?? new Set<() => void>();
      this.#cuts.set(slot, cuts);
      let cut: (() => void) | undefined;
      let ended = false;
      cut = this.relay.relay(client, upstream, { idleTimeoutMs: this.options.idleTimeoutMs, header }, (end) => {
        ended = true;
        if (cut) cuts.delete(cut);
        if (cuts.size === 0 && this.#cuts.get(slot) === cuts) this.#cuts.delete(slot);
        this.ended(slot, end.bytesIn, end.bytesOut, end.reason);
      });
      if (!ended) cuts.add(cut);
    });
  }
}
