/**
 * A TCP frontend whose sockets live only in the native relay: its threads accept, report
 * each client here for the decisions (admit, pick a backend, PROXY header), connect where
 * told, retry elsewhere when told, and relay. No Node socket exists for a connection, so
 * a new connection costs one small report and one call. Once relayed, a connection costs
 * JavaScript nothing: the threads' reports carry the backend slot given to connect(), so
 * no object, closure or map entry is kept per established connection (issue 4: RSS per
 * idle connection). Policy and counters are the base's (tcp-frontend-base.ts), the same
 * as tcp-frontend.ts.
 *
 * When the answer is the same for every client (round-robin, no source ranges, rate
 * limit, affinity or PROXY header), it is handed to the threads as a route
 * (native/route.c): the list of usable backends, sent again whenever it changes. The
 * threads then connect a client as they accept it, and the report says which backend
 * they picked; this frontend counts it as if it had chosen it. A route holds a slot for
 * each of its backends until every thread has taken a newer route, so a report naming
 * one always finds it.
 */
import { CUT_REPORT_MS, TcpFrontendBase, type TcpFrontendOptions } from './tcp-frontend-base.js';
import { ALLOW_EVERY_CLIENT } from '../../lib/proxy/source-ranges.js';
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
  /** Every client gets the same answer, so the threads may give it (native/route.c). */
  readonly #routable: boolean;
  #routeGen = 0;
  /** The backend ids of the last route sent, to send only changes. */
  #routeKey: string | undefined;
  /** Route versions not yet superseded on every thread, in order: the slots each holds. */
  readonly #routeSlots = new Map<number, number[]>();
  /** Threads that took each route version so far. */
  readonly #routeAcks = new Map<number, number>();
  /** close() waits for this route version to reach every thread (quiesce()). */
  #barrier: { gen: number; done: () => void } | undefined;

  constructor(
    ip: string,
    port: number,
    options: TcpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    now: () => number = () => performance.now(),
    private readonly relay: NativeRelay,
  ) {
    super(ip, port, options, onTransition, now);
    this.#routable = options.balance === 'roundRobin' && options.affinityTimeoutMs === 0 && options.proxyProtocol === undefined
      && options.newConnectionsPerSecond === 0 && options.allowClient === ALLOW_EVERY_CLIENT;
  }

  start(): Promise<void> {
    try {
      // One object per frontend routes every report; none is made per connection.
      const events: ListenerEvents = {
        accepted: (id, ip, port, routed) => { if (routed >= 0) this.#routed(id, ip, port, routed); else this.#accepted(id, ip, port); },
        routesTaken: (gen) => this.#routesTaken(gen),
        refused: () => this.error('maxConnections'),
        connected: (id, slot, ms) => this.#connected(id, slot, ms),
        connectFailed: (id, slot, errno) => this.#connectFailed(id, slot, errno),
        ended: (slot, bytesIn, bytesOut, reason) => this.ended(slot, bytesIn, bytesOut, reason),
      };
      this.#listener = this.relay.listen(this.ip, this.port, this.options.keepAliveMs, events);
      this.#route();
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

  protected override backendsChanged(): void {
    this.#route();
  }

  /** Sends the threads the usable backends when they changed since the last route. */
  #route(): void {
    const listener = this.#listener;
    if (!listener || !this.#routable) return;
    const usable = this.closing ? [] : this.usableBackends();
    const key = usable.map((b) => b.id).join(' ');
    if (key === this.#routeKey) return;
    this.#routeKey = key;
    const gen = ++this.#routeGen;
    const slots = usable.map((b) => this.hold(b.id));
    const backends = usable.map((b, k) => ({ tag: slots[k]!, ip: b.address.ip, port: b.address.port }));
    const o = this.options;
    if (!this.relay.routes(listener.id, gen, backends, { timeoutMs: o.connectTimeoutMs, idleTimeoutMs: o.idleTimeoutMs, keepAliveMs: o.keepAliveMs, maxOpen: o.maxConnections })) {
      for (const slot of slots) this.unhold(slot);
      return;
    }
    this.#routeSlots.set(gen, slots);
  }

  /**
   * After unlisten: an empty route sent through every thread. Each thread reports in order,
   * so once all took it, every client they accepted has been reported here (reports that
   * need no answer wait up to REPORT_DELAY_MS in the threads, native/relay.h).
   */
  protected override async quiesce(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    const gen = ++this.#routeGen;
    this.#routeKey = '';
    if (!this.relay.routes(listener.id, gen, [], { timeoutMs: 0, idleTimeoutMs: 0, keepAliveMs: 0, maxOpen: 0 })) return;
    this.#routeSlots.set(gen, []);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CUT_REPORT_MS); // only a lost report would need it
      this.#barrier = { gen, done: resolve };
    });
    clearTimeout(timer);
    this.#barrier = undefined;
  }

  /** Once every thread took route `gen`, the older routes' slots are given back. */
  #routesTaken(gen: number): void {
    const acks = (this.#routeAcks.get(gen) ?? 0) + 1;
    if (acks < this.relay.threads) { this.#routeAcks.set(gen, acks); return; }
    this.#routeAcks.delete(gen);
    if (this.#barrier?.gen === gen) this.#barrier.done();
    for (const [older, slots] of this.#routeSlots) {
      if (older >= gen) break; // versions are kept in the order they were sent
      for (const slot of slots) this.unhold(slot);
      this.#routeSlots.delete(older);
    }
  }

  /** A client the threads accepted and are connecting to the route's backend in `slot`. */
  #routed(id: number, clientIp: string, clientPort: number, slot: number): void {
    this.holdSlot(slot); // the route still holds it: no report of a superseded route is left behind this one
    this.admitted(); // the route is only sent when admit() would let every client in, and the threads keep maxConnections
    // Even while closing: it was accepted before unlisten, so it drains like the others.
    this.#pending.set(id, { clientIp, clientPort, tried: undefined, attemptsLeft: this.options.connectAttempts });
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
    if (this.cutting) this.relay.cut(id); // connected after close() cut the rest; during the drain it drains
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
