/**
 * A TCP frontend whose sockets live only in the native relay: its threads accept, report
 * each client here for the decisions (admit, pick a backend, PROXY header), connect where
 * told, retry elsewhere when told, and relay. No Node socket exists for a connection, so
 * a new connection costs one small report and one call, and an idle one a few hundred
 * bytes (issue 4: new connections and RSS per idle connection against HAProxy).
 * Policy and counters are the base's (tcp-frontend-base.ts), the same as tcp-frontend.ts.
 */
import { TcpFrontendBase, type TcpFrontendOptions } from './tcp-frontend-base.js';
import type { NativeRelay } from './native-relay.js';
import { failedOnProxySide } from './connect-errors.js';

export class NativeTcpFrontend extends TcpFrontendBase {
  #listener: { id: number; port: number } | undefined;
  /** Accepted clients not yet relayed. */
  readonly #pending = new Set<number>();

  constructor(
    ip: string,
    port: number,
    options: TcpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    now: () => number = () => performance.now(),
    private readonly relay: NativeRelay,
  ) {
    super(ip, port, options, onTransition, now);
  }

  start(): Promise<void> {
    try {
      this.#listener = this.relay.listen(this.ip, this.port, this.options.keepAliveMs, (id, ip, port) => this.#accepted(id, ip, port));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  get boundPort(): number {
    return this.#listener?.port ?? this.port;
  }

  protected stopListening(): Promise<void> {
    if (this.#listener) this.relay.unlisten(this.#listener.id);
    return Promise.resolve();
  }

  protected abortPending(): void {
    // Cut, not reject: the threads may have connected it already (its report on the way).
    for (const id of this.#pending) this.relay.cut(id);
  }

  #accepted(id: number, clientIp: string, clientPort: number): void {
    if (this.closing || this.admit(clientIp)) {
      this.relay.reject(id);
      return;
    }
    this.#pending.add(id);
    this.#attempt(id, clientIp, clientPort, new Set(), this.options.connectAttempts);
  }

  #attempt(id: number, clientIp: string, clientPort: number, tried: Set<string>, attemptsLeft: number): void {
    const pick = this.closing ? ({ none: 'noBackend' } as const) : this.pick(clientIp, tried);
    if ('none' in pick) {
      this.error(tried.size > 0 ? 'connectFailed' : pick.none);
      this.#giveUp(id);
      return;
    }
    const backend = pick.id;
    this.relay.connect(id, pick.address.ip, pick.address.port, {
      timeoutMs: this.options.connectTimeoutMs, idleTimeoutMs: this.options.idleTimeoutMs, keepAliveMs: this.options.keepAliveMs,
      header: this.proxyHeader(clientIp, clientPort),
    }, {
      connected: (connectMs) => {
        this.#pending.delete(id);
        // relayed() before settled(): the count of open connections never dips to 0 between.
        const onEnd = this.relayed(backend, connectMs, () => this.relay.cut(id));
        this.settled();
        if (this.closing) queueMicrotask(() => this.relay.cut(id)); // connected after close() cut the rest
        return onEnd;
      },
      failed: (errno) => {
        if (!failedOnProxySide(errno)) this.connectFailed(backend); // out of descriptors is not the backend's fault
        tried.add(backend);
        if (attemptsLeft > 1 && !this.closing) this.#attempt(id, clientIp, clientPort, tried, attemptsLeft - 1);
        else { this.error('connectFailed'); this.#giveUp(id); }
      },
    });
  }

  #giveUp(id: number): void {
    this.#pending.delete(id);
    this.settled();
    this.relay.reject(id);
  }
}
