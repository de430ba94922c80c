/**
 * A UDP frontend whose datagrams move in the native relay's threads (native/udp.c): each
 * thread owns one of the frontend's SO_REUSEPORT sockets (the kernel spreads client
 * addresses over them, as NGINX's `udp reuseport`) with its share of the bounded flow table
 * (idle timeout, LRU eviction per share), a connected upstream socket per flow,
 * recvmmsg/sendmmsg batches. JavaScript decides per
 * NEW flow only, exactly as udp-frontend.ts does per flow: source ranges, then a backend
 * from the BackendPool; the flow's end comes back with its bytes, and an ICMP-unreachable
 * end (ECONNREFUSED on the flow's socket) is a passive health failure of its backend.
 * udp-frontend.ts (Node's dgram) stays the engine when the addon is not built.
 */
import { BackendPool, poolOptions, type BackendAddress } from '../../lib/balancer/backend-pool.js';
import { BackendSlots } from './backend-slots.js';
import { REFUSED_CLIENTS, type FlowEndReason, type FlowEvents, type NativeRelay } from './native-relay.js';
import type { UdpFrontendOptions } from './udp-frontend.js';
import type { FrontendStats } from './tcp-frontend-base.js';

/** After closing, how long to wait for the threads' flow end reports (milliseconds in practice; the bound guards a lost one). */
const END_REPORT_MS = 1000;

export class NativeUdpFrontend {
  readonly #pool: BackendPool;
  readonly #slots: BackendSlots;
  #listener: { id: number; port: number } | undefined;
  #closing = false;
  #total = 0;
  /** Flows JavaScript connected whose end is not reported yet. */
  #open = 0;
  #onIdle: (() => void) | undefined;
  readonly #errors: Record<string, number> = {};

  /** No I/O: start() opens the socket. */
  constructor(
    readonly ip: string,
    readonly port: number,
    private readonly options: UdpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
    private readonly relay: NativeRelay,
  ) {
    this.#pool = new BackendPool(poolOptions(options), (backend, t) => {
      onTransition(backend, t);
      if (t === 'up') this.#forgetRefusals();
    });
    const pool = this.#pool;
    this.#slots = new BackendSlots((id) => pool.has(id));
  }

  update(backends: readonly BackendAddress[]): void {
    this.#pool.update(backends);
    // Flows to a removed backend end now: UDP has nothing to drain.
    for (const slot of this.#slots.orphans()) if (this.#listener) this.relay.cutTag(this.#listener.id, slot);
    this.#forgetRefusals();
  }

  /** Something may take new flows now: clients refused in the last second are asked about again. */
  #forgetRefusals(): void {
    if (this.#listener && !this.#closing) this.relay.cutTag(this.#listener.id, REFUSED_CLIENTS);
  }

  checkResult(backend: string, pass: boolean): void {
    this.#pool.checkResult(backend, pass);
  }

  start(): Promise<void> {
    const events: FlowEvents = {
      flow: (id, ip, port) => this.#flow(id, ip, port),
      flowEnded: (slot, bytesIn, bytesOut, reason) => this.#ended(slot, bytesIn, bytesOut, reason),
    };
    try {
      this.#listener = this.relay.udpListen(this.ip, this.port, this.options.flowIdleTimeoutMs, this.options.maxFlows, events);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  get boundPort(): number {
    return this.#listener?.port ?? this.port;
  }

  /** Drops expired ClientIP affinity entries (flows themselves expire in the relay threads). */
  expireAffinity(): void {
    this.#pool.expireAffinity(this.now());
  }

  /** Every flow ends now (UDP has nothing to drain); resolves once their ends are counted. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const listener = this.#listener;
    if (!listener) return;
    this.relay.udpUnlisten(listener.id);
    if (this.#open > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => { this.#onIdle = resolve; timer = setTimeout(resolve, END_REPORT_MS); });
      clearTimeout(timer);
      this.#onIdle = undefined;
    }
    this.relay.udpDetach(listener.id);
  }

  #flow(id: number, clientIp: string, _clientPort: number): void {
    const listener = this.#listener;
    if (this.#closing || !listener) { this.relay.udpReject(id); return; }
    if (!this.options.allowClient(clientIp)) { this.#error('sourceDenied'); this.relay.udpReject(id); return; }
    const pick = this.#pool.pick(clientIp, this.now());
    if ('none' in pick) { this.#error(pick.none); this.relay.udpReject(id); return; }
    const slot = this.#slots.hold(pick.id);
    if (!this.relay.udpConnect(id, listener.id, slot, pick.address.ip, pick.address.port)) { this.#slots.unref(slot); return; }
    this.#total++;
    this.#open++;
    this.#pool.opened(pick.id);
  }

  #ended(slot: number, bytesIn: number, bytesOut: number, reason: FlowEndReason): void {
    const s = this.#slots.get(slot);
    if (!s) return;
    const id = s.id;
    if (reason === 'refused') {
      // ECONNREFUSED: the backend's host said nothing listens there (ICMP port unreachable).
      this.#pool.connectFailed(id, this.now());
      this.#error('backendError');
    }
    // The proxy's own shortage (out of descriptors): counted, and no fault of the backend's.
    if (reason === 'noResources') this.#error('noResources');
    this.#pool.closed(id, bytesIn, bytesOut, reason === 'refused' ? 'backendError' : undefined);
    this.#slots.unref(slot);
    if (--this.#open === 0) this.#onIdle?.();
  }

  #error(reason: string): void {
    this.#errors[reason] = (this.#errors[reason] ?? 0) + 1;
  }

  snapshot(): FrontendStats & { flows: number; evictions: number } {
    const c = this.#listener ? this.relay.udpCounters(this.#listener.id) : { bytesIn: 0, bytesOut: 0, flows: 0, evictions: 0, dropped: 0, refused: 0 };
    const errors = { ...this.#errors };
    if (c.dropped > 0) errors['pendingOverflow'] = c.dropped;
    if (c.refused > 0) errors['refusedRecently'] = c.refused;
    return {
      active: c.flows, total: this.#total, bytesIn: c.bytesIn, bytesOut: c.bytesOut,
      errors, backends: this.#pool.stats(), flows: c.flows, evictions: c.evictions,
    };
  }
}
