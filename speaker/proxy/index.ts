/**
 * Beacon's data plane: listens on every Service IP:port this node owns and forwards to
 * healthy endpoints. Public API (all of it):
 *
 *   const proxy = new Proxy({ logger, now });   // no I/O yet
 *   const result = await proxy.apply(frontends); // desired state; call again on every change
 *   proxy.stats();                               // counters per frontend and backend, plain objects
 *   await proxy.close();                         // stops everything, drains, idempotent
 *
 * `apply` opens missing listeners, closes removed ones (TCP connections drain up to
 * `drainTimeoutMs`), updates backends in place (connections to a backend that goes away
 * or turns `terminating` keep running; it just gets no new ones), and reopens a frontend
 * whose address or options changed. A frontend that cannot be served (address in use,
 * bad source range) is reported in the result and logged; the others are unaffected.
 * `port: 0` binds an ephemeral port; `stats().frontends[key].port` tells which.
 */
import { parseSourceRanges } from '../../lib/proxy/source-ranges.js';
import { backendId, type BackendAddress } from '../../lib/balancer/backend-pool.js';
import { TcpFrontend } from './tcp-frontend.js';
import { DEFAULT_TCP_OPTIONS, TcpFrontendBase, type FrontendStats, type TcpFrontendOptions } from './tcp-frontend-base.js';
import { NativeTcpFrontend } from './native-frontend.js';
import { DEFAULT_UDP_OPTIONS, UdpFrontend, type UdpFrontendOptions } from './udp-frontend.js';
import { NativeUdpFrontend } from './native-udp-frontend.js';
import { HealthChecker, type CheckOptions } from './health-checker.js';
import { createRelay, NativeRelay } from './native-relay.js';
import type { Relay } from './relay.js';
import { availableParallelism } from 'node:os';

/** What to check (health-checker.ts) and how results are judged (lib/health's rise/fall). */
export interface HealthCheckOptions extends CheckOptions {
  /** HAProxy defaults ("rise", "fall" in its configuration manual): 2 and 3. */
  readonly rise: number;
  readonly fall: number;
}

/**
 * A Service port's options as the speaker states them: the TCP engine's own knobs as they
 * are, plus the ones this module turns into engine options (source ranges parsed, checks
 * started, drain deadlines).
 */
export interface FrontendOptions extends Pick<TcpFrontendOptions,
  'balance' | 'affinityTimeoutMs' | 'connectTimeoutMs' | 'idleTimeoutMs' | 'connectAttempts' | 'maxConnections'
  | 'newConnectionsPerSecond' | 'newConnectionsBurst' | 'proxyProtocol' | 'keepAliveMs'> {
  /** spec.loadBalancerSourceRanges; empty: everyone. */
  readonly sourceRanges: readonly string[];
  /** Active checks; undefined: the endpoint's `ready` condition is the evidence of health. */
  readonly healthCheck: HealthCheckOptions | undefined;
  /** Eject a backend at its first refused/timed-out connection, before checks notice. */
  readonly ejectOnConnectFailure: boolean;
  /** How long open TCP connections may finish when their frontend or their backend is removed. */
  readonly drainTimeoutMs: number;
  readonly udpFlowIdleTimeoutMs: number;
  readonly udpMaxFlows: number;
}

export const DEFAULT_FRONTEND_OPTIONS: FrontendOptions = {
  balance: 'roundRobin', affinityTimeoutMs: 0, connectTimeoutMs: DEFAULT_TCP_OPTIONS.connectTimeoutMs,
  idleTimeoutMs: DEFAULT_TCP_OPTIONS.idleTimeoutMs, connectAttempts: DEFAULT_TCP_OPTIONS.connectAttempts,
  maxConnections: DEFAULT_TCP_OPTIONS.maxConnections, newConnectionsPerSecond: 0, newConnectionsBurst: 0,
  sourceRanges: [], proxyProtocol: undefined, healthCheck: undefined, ejectOnConnectFailure: true,
  drainTimeoutMs: 30_000, keepAliveMs: DEFAULT_TCP_OPTIONS.keepAliveMs, udpFlowIdleTimeoutMs: DEFAULT_UDP_OPTIONS.flowIdleTimeoutMs, udpMaxFlows: DEFAULT_UDP_OPTIONS.maxFlows,
};

export const DEFAULT_HEALTH_CHECK: HealthCheckOptions = { intervalMs: 2000, timeoutMs: 2000, rise: 2, fall: 3 };

export interface Frontend {
  /** `namespace/name:ip:port/protocol`, stable across applies. */
  readonly key: string;
  /** The Service (`namespace/name`) it serves, for metric labels; default: the key. */
  readonly service?: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  readonly backends: readonly BackendAddress[];
  /** Unset fields take DEFAULT_FRONTEND_OPTIONS (and DEFAULT_HEALTH_CHECK inside healthCheck). */
  readonly options: Partial<Omit<FrontendOptions, 'healthCheck'>> & { readonly healthCheck?: Partial<HealthCheckOptions> | undefined };
}

export interface ProxyLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ApplyResult {
  /** Frontends not served, with why (`listenFailed: EADDRINUSE`, `invalidSourceRanges: ...`). */
  readonly failed: readonly { readonly key: string; readonly reason: string }[];
}

export interface ProxyStats {
  readonly frontends: Record<string, FrontendStats & { service: string; protocol: 'TCP' | 'UDP'; ip: string; port: number; flows?: number; evictions?: number }>;
}

interface Served {
  readonly spec: Frontend;
  readonly fingerprint: string;
  readonly engine: TcpFrontendBase | UdpFrontend | NativeUdpFrontend;
  readonly checker: HealthChecker | undefined;
  readonly drainMs: number;
}

const silent: ProxyLogger = { info: () => undefined, warn: () => undefined };

/** How often expired ClientIP affinity entries are dropped, so the map stays bounded by live clients. */
const AFFINITY_SWEEP_MS = 10_000;

export interface ProxyOptions {
  readonly logger?: ProxyLogger;
  readonly now?: () => number;
  /** Who moves established TCP bytes: the C relay (default; pipe() if it is not built) or pipe(). */
  readonly relay?: 'native' | 'pipe';
  /** Native relay threads; default: one per CPU (HAProxy's nbthread and NGINX's workers do the same). */
  readonly relayThreads?: number;
}

export class Proxy {
  readonly #logger: ProxyLogger;
  readonly #now: () => number;
  readonly #relayChoice: 'native' | 'pipe';
  readonly #relayThreads: number;
  #relay: Relay | undefined;
  readonly #served = new Map<string, Served>();
  readonly #draining = new Set<Promise<void>>();
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** apply() calls run one after another: each sees the state the previous one left. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: ProxyOptions = {}) {
    this.#logger = options.logger ?? silent;
    this.#now = options.now ?? (() => performance.now());
    this.#relayChoice = options.relay ?? 'native';
    this.#relayThreads = Math.max(1, options.relayThreads ?? availableParallelism());
  }

  /** The relay, made at first need (loading the addon is I/O, so not in the constructor). */
  #relayFor(): Relay {
    if (!this.#relay) {
      const { relay, why } = createRelay(this.#relayChoice, this.#relayThreads);
      this.#relay = relay;
      this.#logger.info({ relay: relay.kind, ...(why ? { why } : {}), threads: relay.kind === 'native' ? this.#relayThreads : undefined }, 'relay');
    }
    return this.#relay;
  }


  apply(frontends: readonly Frontend[]): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(frontends));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(frontends: readonly Frontend[]): Promise<ApplyResult> {
    if (this.#closed) return { failed: frontends.map((f) => ({ key: f.key, reason: 'closed' })) };
    const failed: { key: string; reason: string }[] = [];
    const desired = new Map(frontends.map((f) => [f.key, f]));
    // Stop first: a reopened frontend may need the same address.
    for (const [key, s] of this.#served) {
      const d = desired.get(key);
      if (d && fingerprint(d) === s.fingerprint) continue;
      this.#stop(s);
      this.#served.delete(key);
      this.#logger.info({ frontend: key }, d ? 'frontend changed, reopening' : 'frontend removed');
    }
    for (const f of frontends) {
      const cur = this.#served.get(f.key);
      if (cur) { this.#update(cur, f); continue; }
      const reason = await this.#open(f);
      if (reason) {
        failed.push({ key: f.key, reason });
        this.#logger.warn({ frontend: f.key, ip: f.ip, port: f.port, protocol: f.protocol, reason }, 'frontend not served');
      }
    }
    if (this.#served.size > 0 && !this.#sweeper) {
      this.#sweeper = setInterval(() => { for (const s of this.#served.values()) if (!(s.engine instanceof UdpFrontend)) s.engine.expireAffinity(); }, AFFINITY_SWEEP_MS);
    }
    return { failed };
  }

  async #open(f: Frontend): Promise<string | undefined> {
    const o = { ...DEFAULT_FRONTEND_OPTIONS, ...withoutUndefined(f.options) };
    const ranges = parseSourceRanges(o.sourceRanges);
    if (!ranges.ok) return `invalidSourceRanges: ${ranges.problems.join('; ')}`;
    const check = o.healthCheck ? { ...DEFAULT_HEALTH_CHECK, ...withoutUndefined(o.healthCheck) } : undefined;
    const health = { rise: check?.rise ?? DEFAULT_HEALTH_CHECK.rise, fall: check?.fall ?? DEFAULT_HEALTH_CHECK.fall, ejectOnConnectFailure: o.ejectOnConnectFailure };
    const onTransition = (backend: string, t: 'up' | 'down') => this.#logger.info({ frontend: f.key, backend, health: t }, `backend ${t}`);
    const tcp: TcpFrontendOptions = {
      balance: o.balance, affinityTimeoutMs: o.affinityTimeoutMs, connectTimeoutMs: o.connectTimeoutMs, idleTimeoutMs: o.idleTimeoutMs,
      connectAttempts: Math.max(1, o.connectAttempts), maxConnections: o.maxConnections, proxyProtocol: o.proxyProtocol,
      activeChecks: check !== undefined, health, allowClient: ranges.allows,
      newConnectionsPerSecond: o.newConnectionsPerSecond, newConnectionsBurst: o.newConnectionsBurst,
      backendDrainMs: o.drainTimeoutMs, keepAliveMs: o.keepAliveMs,
    };
    const relay = this.#relayFor();
    const udp: UdpFrontendOptions = {
      balance: o.balance, affinityTimeoutMs: o.affinityTimeoutMs, flowIdleTimeoutMs: o.udpFlowIdleTimeoutMs, maxFlows: Math.max(1, o.udpMaxFlows),
      activeChecks: check !== undefined, health, allowClient: ranges.allows,
    };
    // The native relay accepts, connects and moves datagrams itself; otherwise Node's sockets.
    const engine = f.protocol === 'UDP'
      ? relay instanceof NativeRelay ? new NativeUdpFrontend(f.ip, f.port, udp, onTransition, this.#now, relay) : new UdpFrontend(f.ip, f.port, udp, onTransition, this.#now)
      : relay instanceof NativeRelay ? new NativeTcpFrontend(f.ip, f.port, tcp, onTransition, this.#now, relay)
      : new TcpFrontend(f.ip, f.port, tcp, onTransition, this.#now, relay);
    engine.update(f.backends);
    try {
      await engine.start();
    } catch (err) {
      await engine.close();
      return `listenFailed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
    const checker = check ? new HealthChecker(check, (id, pass) => engine.checkResult(id, pass)) : undefined;
    const served: Served = { spec: f, fingerprint: fingerprint(f), engine, checker, drainMs: o.drainTimeoutMs };
    this.#served.set(f.key, served);
    served.checker?.set(checkTargets(f));
    this.#logger.info({ frontend: f.key, ip: f.ip, port: engine.boundPort, protocol: f.protocol, backends: f.backends.length }, 'frontend open');
    return undefined;
  }

  #update(s: Served, f: Frontend): void {
    s.engine.update(f.backends);
    this.#served.set(f.key, { ...s, spec: f });
    s.checker?.set(checkTargets(f));
  }

  #stop(s: Served, maxDrainMs = Infinity): void {
    s.checker?.close();
    const p = s.engine instanceof TcpFrontendBase ? s.engine.close(Math.min(s.drainMs, maxDrainMs)) : s.engine.close();
    this.#draining.add(p);
    void p.finally(() => this.#draining.delete(p));
  }

  stats(): ProxyStats {
    const frontends: ProxyStats['frontends'] = {};
    for (const [key, s] of this.#served) {
      frontends[key] = { ...s.engine.snapshot(), service: s.spec.service ?? key, protocol: s.spec.protocol, ip: s.spec.ip, port: s.engine.boundPort };
    }
    return { frontends };
  }

  /**
   * Closes every listener, drains TCP connections up to each frontend's deadline (and at
   * most `maxDrainMs`: a pod's grace period bounds a shutdown), ends every timer. Idempotent.
   */
  async close(maxDrainMs = Infinity): Promise<void> {
    this.#closed = true;
    await this.#queue;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const s of this.#served.values()) this.#stop(s, maxDrainMs);
    this.#served.clear();
    await Promise.all([...this.#draining]);
    this.#relay?.close();
  }
}

function checkTargets(f: Frontend): { id: string; ip: string; port: number }[] {
  return f.backends.map((b) => ({ id: backendId(b), ip: b.ip, port: b.port }));
}

/** What makes a frontend need reopening: everything but its backends, which update in place. */
function fingerprint(f: Frontend): string {
  return JSON.stringify([f.ip, f.port, f.protocol, sortKeys(f.options)]);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}

/** `{...defaults, ...partial}` must not let an explicit `undefined` erase a default. */
function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
