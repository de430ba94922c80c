/**
 * One UDP frontend (a Service's IP:port). Datagrams from a client address form a flow
 * (lib/proxy/flow-table.ts) pinned to one backend; each flow has its own connected upstream
 * socket, so the backend's replies can be told apart and sent back to the right client
 * from the frontend socket (the client expects the reply from the address it wrote to).
 * An error on one upstream (ICMP port unreachable surfaces as ECONNREFUSED on a connected
 * socket) ends that flow only, and counts as a passive health failure of its backend,
 * unless the proxy itself was short (EMFILE: connect-errors.ts), counted as noResources.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { BalanceMode } from '../../lib/balancer/balancer.js';
import { BackendPool, poolOptions, type BackendAddress } from '../../lib/balancer/backend-pool.js';
import { FlowTable } from '../../lib/proxy/flow-table.js';
import { DEFAULT_HEALTH, type HealthOptions } from '../../lib/health/health.js';
import type { FrontendStats } from './tcp-frontend-base.js';
import { failedOnProxySide } from './connect-errors.js';

export interface UdpFrontendOptions {
  readonly balance: BalanceMode;
  readonly affinityTimeoutMs: number;
  /** A flow with no datagram either way for this long is forgotten (conntrack's UDP default is 30 s). */
  readonly flowIdleTimeoutMs: number;
  readonly maxFlows: number;
  readonly activeChecks: boolean;
  readonly health: HealthOptions;
  readonly allowClient: (client: string) => boolean;
}

export const DEFAULT_UDP_OPTIONS: UdpFrontendOptions = {
  balance: 'roundRobin', affinityTimeoutMs: 0, flowIdleTimeoutMs: 30_000, maxFlows: 65_536,
  activeChecks: false, health: DEFAULT_HEALTH, allowClient: () => true,
};

/** Datagrams held for a flow while its upstream socket connects; more are dropped (counted). */
const MAX_PENDING = 16;

/**
 * The largest UDP payload: 65535 minus the 8-byte UDP header and 20-byte IPv4 header
 * (RFC 768, RFC 791); the receive buffer must hold one whole datagram or it is truncated.
 */
const MAX_DATAGRAM = 65_507;

interface Flow {
  readonly key: string;
  readonly backend: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly upstream: Socket;
  pending: Buffer[] | undefined;
  bytesIn: number;
  bytesOut: number;
  closed: boolean;
}

export class UdpFrontend {
  readonly #pool: BackendPool;
  readonly #flows: FlowTable<Flow>;
  #socket: Socket | undefined;
  #sweeper: NodeJS.Timeout | undefined;
  #total = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  readonly #errors: Record<string, number> = {};

  constructor(
    readonly ip: string,
    readonly port: number,
    private readonly options: UdpFrontendOptions,
    onTransition: (backend: string, t: 'up' | 'down') => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#pool = new BackendPool(poolOptions(options), onTransition);
    this.#flows = new FlowTable({ maxFlows: options.maxFlows, idleTimeoutMs: options.flowIdleTimeoutMs });
  }

  update(backends: readonly BackendAddress[]): void {
    this.#pool.update(backends);
    // Flows to a removed backend end now: UDP has nothing to drain.
    for (const f of this.#flows.removeIf((f) => !this.#pool.has(f.backend))) this.#endFlow(f);
  }

  checkResult(backend: string, pass: boolean): void {
    this.#pool.checkResult(backend, pass);
  }


  async start(): Promise<void> {
    const socket = createSocket({ type: isIPv6(this.ip) ? 'udp6' : 'udp4', recvBufferSize: 4 * MAX_DATAGRAM });
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.ip, port: this.port, exclusive: true }, () => { socket.off('error', reject); resolve(); });
    });
    socket.on('error', () => this.#error('frontendError')); // e.g. a send to a vanished client; never fatal
    socket.on('message', (msg, rinfo) => this.#message(msg, rinfo));
    // Idle flows are swept a few times per timeout; the table also refuses stale ones on lookup.
    this.#sweeper = setInterval(() => this.sweep(), Math.max(50, this.options.flowIdleTimeoutMs / 4));
  }

  get boundPort(): number {
    return this.#socket?.address().port ?? this.port;
  }

  /** Closes idle flows (the sweeper's job, public for tests with an injected clock). */
  sweep(): void {
    for (const f of this.#flows.expire(this.now())) this.#endFlow(f);
    this.#pool.expireAffinity(this.now());
  }

  /** UDP has no connections to drain: every flow ends now. Idempotent. */
  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const f of this.#flows.clear()) this.#endFlow(f);
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  #message(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    const now = this.now();
    let flow = this.#flows.get(key, now);
    if (!flow) {
      if (!this.options.allowClient(rinfo.address)) return this.#error('sourceDenied');
      const created = this.#open(key, rinfo, now);
      if (!created) return;
      flow = created;
    }
    flow.bytesIn += msg.length;
    this.#bytesIn += msg.length;
    if (flow.pending) {
      if (flow.pending.length < MAX_PENDING) flow.pending.push(msg);
      else this.#error('pendingOverflow');
      return;
    }
    flow.upstream.send(msg);
  }

  #open(key: string, rinfo: RemoteInfo, now: number): Flow | undefined {
    const pick = this.#pool.pick(rinfo.address, now);
    if ('none' in pick) { this.#error(pick.none); return undefined; }
    const upstream = createSocket({ type: isIPv6(pick.address.ip) ? 'udp6' : 'udp4', recvBufferSize: 4 * MAX_DATAGRAM });
    const flow: Flow = { key, backend: pick.id, clientAddress: rinfo.address, clientPort: rinfo.port, upstream, pending: [], bytesIn: 0, bytesOut: 0, closed: false };
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      // ECONNREFUSED: the backend's host said nothing listens there (ICMP port unreachable).
      // EMFILE and the like: the proxy's own shortage (a flood of new source ports), not the backend's.
      const ours = failedOnProxySide(err.code);
      if (!ours) this.#pool.connectFailed(flow.backend, this.now());
      this.#error(ours ? 'noResources' : 'backendError');
      this.#flows.delete(flow.key);
      this.#endFlow(flow, ours ? 'noResources' : 'backendError');
    });
    upstream.on('message', (reply) => {
      const socket = this.#socket;
      if (!socket || flow.closed) return;
      flow.bytesOut += reply.length;
      this.#bytesOut += reply.length;
      this.#flows.get(flow.key, this.now()); // a reply is activity too
      socket.send(reply, flow.clientPort, flow.clientAddress);
    });
    upstream.connect(pick.address.port, pick.address.ip, () => {
      const pending = flow.pending;
      flow.pending = undefined;
      if (flow.closed || !pending) return;
      for (const m of pending) upstream.send(m);
    });
    this.#total++;
    this.#pool.opened(pick.id);
    for (const old of this.#flows.add(key, flow, now)) this.#endFlow(old);
    return flow;
  }

  #endFlow(f: Flow, reason?: string): void {
    if (f.closed) return;
    f.closed = true;
    this.#pool.closed(f.backend, f.bytesIn, f.bytesOut, reason);
    try { f.upstream.close(); } catch { /* already closed by an error */ }
  }

  #error(reason: string): void {
    this.#errors[reason] = (this.#errors[reason] ?? 0) + 1;
  }

  snapshot(): FrontendStats & { flows: number; evictions: number } {
    return {
      active: this.#flows.size, total: this.#total, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut,
      errors: { ...this.#errors }, backends: this.#pool.stats(), flows: this.#flows.size, evictions: this.#flows.evictions,
    };
  }
}
