/**
 * A TCP frontend whose sockets live only in the native relay: its threads accept, report
 * each client here for the decisions (admit, pick a backend, PROXY header), connect where
 * told, retry elsewhere when told, and relay. No Node socket exists for a connection, so
 * a new connection costs one small report and one call. Once relayed, a connection costs
 * JavaScript nothing: the threads' reports carry the backend slot given to connect(), so
 * no object, closure or map entry is kept per established connection (issue 4: RSS per
 * idle connection). Policy and counters are the base's (tcp-frontend-base.ts), the same
 * as tcp-frontend.ts.
 */
import { TcpFrontendBase, type TcpFrontendOptions } from './tcp-frontend-base.js';
import { ALL_TAGS, type ListenerEvents, type NativeRelay } from './native-relay.js';
import { failedOnProxySide } from './connect-errors.js';

/** ECANCELED (Linux errno 125): the relay gave up the attempt because it was cut, not the backend. */
const ECANCELED = 125;

/** A client between accept and relay (or give-up): the only per-connection state kept here. */
interface Attempt {
  readonly clientIp: string;
  readonly clientPort: number;
  /** Backends that failed it, only once one has. */
  tried: Set<string> | undefined;
  attemptsLeft: number;
}

export class NativeTcpFrontend extends TcpFrontendBase {
  #listener: { id: number; port: number } | undefined;
  /** Accepted clients not yet relayed, by connection id. */
  readonly #pending = new Map<number, Attempt>();

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
      // One object per frontend routes every report; none is made per connection.
      const events: ListenerEvents = {
        accepted: (id, ip, port) => this.#accepted(id, ip, port),
        connected: (id, slot, ms) => this.#connected(id, slot, ms),
        connectFailed: (id, slot, errno) => this.#connectFailed(id, slot, errno),
        ended: (slot, bytesIn, bytesOut, reason) => this.ended(slot, bytesIn, bytesOut, reason),
      };
      this.#listener = this.relay.listen(this.ip, this.port, this.options.keepAliveMs, events);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  get boundPort(): number {
    return this.#listener?.port ?? this.port;
  }

  override async close(drainMs = 0): Promise<void> {
    await super.close(drainMs);
    if (this.#listener) this.relay.detach(this.#listener.id);
  }

  protected stopListening(): Promise<void> {
    if (this.#listener) this.relay.unlisten(this.#listener.id);
    return Promise.resolve();
  }

  protected abortPending(): void {
    // Cut, not reject: the threads may have connected it already (its report on the way).
    for (const id of this.#pending.keys()) this.relay.cut(id);
  }

  protected cutSlot(slot: number): void {
    if (this.#listener) this.relay.cutTag(this.#listener.id, slot);
  }

  protected cutAll(): void {
    if (this.#listener) this.relay.cutTag(this.#listener.id, ALL_TAGS);
  }

  #accepted(id: number, clientIp: string, clientPort: number): void {
    if (this.closing || this.admit(clientIp)) {
      this.relay.reject(id);
      return;
    }
    const attempt: Attempt = { clientIp, clientPort, tried: undefined, attemptsLeft: this.options.connectAttempts };
    this.#pending.set(id, attempt);
    this.#attempt(id, attempt);
  }

  #connected(id: number, slot: number, connectMs: number): void {
    if (!this.#pending.delete(id)) return;
    // relayed() before settled(): the count of open connections never dips to 0 between.
    this.relayed(slot, connectMs);
    this.settled();
    if (this.closing) this.relay.cut(id); // connected after close() cut the rest
  }

  #connectFailed(id: number, slot: number, errno: number): void {
    const attempt = this.#pending.get(id);
    if (!attempt) return;
    if (errno === ECANCELED) { this.unhold(slot); this.#giveUp(id); return; }
    const backend = this.backendOf(slot);
    if (!failedOnProxySide(errno)) this.connectFailed(slot); // out of descriptors is not the backend's fault
    (attempt.tried ??= new Set()).add(backend);
    if (--attempt.attemptsLeft > 0 && !this.closing) this.#attempt(id, attempt);
    else { this.error('connectFailed'); this.#giveUp(id); }
  }

  #attempt(id: number, attempt: Attempt): void {
    const pick = this.closing ? ({ none: 'noBackend' } as const) : this.pick(attempt.clientIp, attempt.tried);
    if ('none' in pick) {
      this.error(attempt.tried ? 'connectFailed' : pick.none);
      this.#giveUp(id);
      return;
    }
    const slot = this.hold(pick.id);
    const sent = this.relay.connect(id, slot, pick.address.ip, pick.address.port, {
      timeoutMs: this.options.connectTimeoutMs, idleTimeoutMs: this.options.idleTimeoutMs, keepAliveMs: this.options.keepAliveMs,
      header: this.proxyHeader(attempt.clientIp, attempt.clientPort),
    });
    if (!sent) { this.unhold(slot); this.#giveUp(id); } // the relay is closed: nothing will be reported
  }

  #giveUp(id: number): void {
    this.#pending.delete(id);
    this.settled();
    this.relay.reject(id);
  }
}
