/**
 * The controller: informers fill caches; a work queue of Service keys feeds one worker
 * that reconciles from the cache (lib/controller/reconcile.ts) and writes the difference.
 * Only the Lease holder reconciles; on taking the Lease it rebuilds the allocator from
 * Service status, claiming assigned Services before pending ones, so no IP moves.
 */
import type { Logger } from 'pino';
import { Allocator } from '../lib/allocator/allocator.js';
import { ConfigState, decodeYAML, parseConfigDocuments, formatProblem } from '../lib/config/index.js';
import { reconcileService, type ReconcileOutcome } from '../lib/controller/reconcile.js';
import { WorkQueue, type Scheduler } from '../lib/controller/workqueue.js';
import { ipEquals, tryParseIP, type IP } from '../lib/ip/address.js';
import { ALLOCATED_FROM_POOL } from '../lib/service/annotations.js';
import { eligibility, type ClassPolicy } from '../lib/service/class.js';
import type { Service } from '../lib/service/types.js';
import { toServiceRequest } from '../lib/service/request.js';
import { Informer, objectKey, type KubeObject, type ListWatchSource } from '../kube/informer.js';
import { statusOf, type ControllerAPI } from '../kube/client.js';
import type { ControllerMetrics } from './metrics.js';

export interface ControllerSources {
  services: ListWatchSource<Service & KubeObject>;
  namespaces: ListWatchSource<KubeObject & { metadata?: { labels?: Record<string, string> } }>;
  configMaps: ListWatchSource<KubeObject & { data?: Record<string, string> }>;
  /** IPAddressPool and L2Advertisement objects of our CRDs; absent when CRDs are off. */
  pools?: ListWatchSource<KubeObject>;
  advertisements?: ListWatchSource<KubeObject>;
}

export interface ControllerOptions {
  readonly namespace: string;
  readonly configMapName: string;
  readonly classPolicy: ClassPolicy;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly metrics: ControllerMetrics;
  /** Concurrent reconciles (API writes overlap; allocation does not). */
  readonly workers: number;
}

type Cached<T> = Informer<T & KubeObject>;

export class Controller {
  readonly #queue: WorkQueue;
  readonly #config = new ConfigState();
  #allocator = new Allocator();
  /** Services that could not be served, with the last failure told in an Event. */
  readonly #pending = new Map<string, string>();
  readonly #informers: { services: Cached<Service>; namespaces: Cached<KubeObject & { metadata?: { labels?: Record<string, string> } }>; configMaps: Cached<KubeObject & { data?: Record<string, string> }>; pools?: Cached<KubeObject>; advertisements?: Cached<KubeObject> };
  #leading = false;
  #workers: Promise<void>[] = [];
  readonly #events = new Set<Promise<void>>();
  #closed = false;
  #configText = '';
  readonly #dirtyPools = new Set<string>();
  #flushTimer: unknown;
  #lastCounters = new Map<string, string>();

  constructor(
    private readonly api: ControllerAPI,
    sources: ControllerSources,
    private readonly opts: ControllerOptions,
  ) {
    this.#queue = new WorkQueue(opts.scheduler);
    const inf = <T extends KubeObject>(source: ListWatchSource<T>, onChange: (obj: T, old: T | undefined) => void, what: string, transform?: (o: never) => unknown) =>
      new Informer<T>(source, (_e, obj, old) => onChange(obj, old), {
        scheduler: opts.scheduler,
        ...(transform ? { transform } : {}),
        onError: (err, retry) => opts.logger.warn({ err: String(err), what, retryInMs: retry }, 'watch failed, retrying'),
      });
    this.#informers = {
      services: inf(sources.services, (svc) => this.#enqueue(objectKey(svc)), 'services', trimService),
      namespaces: inf(sources.namespaces, (ns) => this.#namespaceChanged(ns.metadata?.name ?? ''), 'namespaces'),
      configMaps: inf(sources.configMaps, () => this.#configChanged(), 'configmaps'),
      ...(sources.pools ? { pools: inf(sources.pools, () => this.#configChanged(), 'ipaddresspools') } : {}),
      ...(sources.advertisements ? { advertisements: inf(sources.advertisements, () => this.#configChanged(), 'l2advertisements') } : {}),
    };
  }

  /** Caches synced and a valid configuration in use. */
  ready(): boolean {
    return Object.values(this.#informers).every((i) => i.synced) && this.#config.loaded;
  }

  get config(): ConfigState {
    return this.#config;
  }

  async start(): Promise<void> {
    for (const i of Object.values(this.#informers)) i.start();
    // Several workers: the allocator runs synchronously, so they overlap only in API
    // writes, and the queue never hands one key to two of them.
    if (this.#workers.length === 0) this.#workers = Array.from({ length: this.opts.workers }, () => this.#work());
    await Promise.all(Object.values(this.#informers).map((i) => i.waitForSync()));
    this.#configChanged();
  }

  /**
   * Called by the leader elector, also after a Lease lost during an API outage was won
   * back: the allocator is rebuilt from Service status each time, never trusted across.
   */
  startLeading(): void {
    if (this.#leading || this.#closed) return;
    this.#leading = true;
    this.opts.metrics.leader.set(1);
    this.#rebuild();
    this.#lastCounters.clear();
    this.#updatePoolMetrics();
  }

  stopLeading(): void {
    this.#leading = false;
    this.opts.metrics.leader.set(0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.stopLeading();
    this.#queue.close();
    this.opts.scheduler.clearTimeout(this.#flushTimer);
    for (const i of Object.values(this.#informers)) i.close();
    await Promise.all(this.#workers);
    await Promise.all(this.#events);
  }

  /** Claims every Service's current addresses, then queues all: assigned before pending. */
  #rebuild(): void {
    this.#allocator = new Allocator();
    this.#allocator.setConfig(this.#config.current);
    const services = this.#informers.services.list();
    const withIPs: string[] = [];
    const others: string[] = [];
    for (const svc of services) {
      const key = objectKey(svc);
      const ips = statusIPs(svc);
      if (ips.length > 0 && eligibility(svc, this.opts.classPolicy) === 'ours') {
        const req = toServiceRequest(svc, this.#namespaceLabels(svc));
        if (req.ok) this.#allocator.assign(req.request, ips);
        withIPs.push(key);
      } else {
        others.push(key);
      }
    }
    for (const key of [...withIPs, ...others]) this.#queue.add(key);
    this.#updateDepth();
    this.opts.logger.info({ claimed: withIPs.length, pending: others.length }, 'took the lease: allocator rebuilt from Service status');
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      this.#updateDepth();
      if (!this.#leading) { this.#queue.done(key); continue; }
      const started = process.hrtime.bigint();
      let result = 'ok';
      try {
        result = await this.#reconcile(key);
        this.#queue.forget(key);
      } catch (err) {
        result = 'error';
        const delay = this.#queue.addRateLimited(key);
        this.opts.logger.warn({ key, err: errorText(err), status: statusOf(err), retryInMs: delay }, 'reconcile failed, retrying');
      } finally {
        this.#queue.done(key);
        this.opts.metrics.reconcileDuration.observe({ result }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }
  }

  async #reconcile(key: string): Promise<string> {
    const svc = this.#informers.services.get(key);
    const before = this.#allocator.ipsOf(key);
    let outcome = reconcileService(svc, key, {
      allocator: this.#allocator,
      classPolicy: this.opts.classPolicy,
      namespaceLabels: svc ? this.#namespaceLabels(svc) : {},
    });
    if (outcome.result === 'failed') {
      // Pending Services are retried on every release and configuration change; one
      // Event per distinct failure, not one per retry.
      const message = outcome.events.map((e) => e.message).join('\n');
      if (this.#pending.get(key) === message) outcome = { ...outcome, events: [] };
      else this.opts.metrics.allocationFailures.inc({ reason: outcome.failure ?? 'unknown' });
      this.#pending.set(key, message);
    } else {
      this.#pending.delete(key);
    }
    const after = this.#allocator.ipsOf(key);
    if (before !== undefined && (after === undefined || before.some((ip) => !after.some((a) => ipEquals(a, ip))))) {
      // Addresses were freed: a pending Service may fit now.
      for (const k of this.#pending.keys()) if (k !== key) this.#queue.add(k);
    }
    if (svc) await this.#write(svc, outcome);
    this.#updatePoolMetrics();
    return outcome.result;
  }

  async #write(svc: Service, outcome: ReconcileOutcome): Promise<void> {
    const ns = svc.metadata.namespace ?? 'default';
    const name = svc.metadata.name;
    const call = async (operation: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        this.opts.metrics.apiErrors.inc({ operation });
        throw err;
      }
    };
    const current = (svc.status?.loadBalancer?.ingress ?? []).map((i) => `${i.ip}/${i.ipMode ?? ''}`).join(',');
    const statusChange = outcome.ingress !== undefined && current !== outcome.ingress.map((i) => `${i.ip}/${i.ipMode}`).join(',');
    const annotation = svc.metadata.annotations?.[ALLOCATED_FROM_POOL];
    const annotationChange = outcome.poolAnnotation !== undefined && (outcome.poolAnnotation ?? undefined) !== annotation;
    const annotations = annotationChange ? { [ALLOCATED_FROM_POOL]: outcome.poolAnnotation ?? null } : undefined;
    if (statusChange) {
      await call('patchServiceStatus', () => this.api.patchServiceStatus(ns, name, outcome.ingress!, annotations));
    } else if (annotations) {
      await call('patchServiceAnnotations', () => this.api.patchServiceAnnotations(ns, name, annotations));
    }
    for (const e of outcome.events) {
      // Events are best effort and off the reconcile's path: losing one must neither
      // retry the reconcile nor delay the next Service.
      const p = this.api.createEvent({ kind: 'Service', apiVersion: 'v1', namespace: ns, name, uid: (svc.metadata as { uid?: string }).uid }, e.type, e.reason, e.message)
        .catch((err) => { this.opts.metrics.apiErrors.inc({ operation: 'createEvent' }); this.opts.logger.warn({ err: errorText(err) }, 'event not recorded'); })
        .finally(() => this.#events.delete(p));
      this.#events.add(p);
      this.opts.logger.info({ service: `${ns}/${name}`, reason: e.reason, type: e.type }, e.message);
    }
  }

  #configChanged(): void {
    if (!Object.values(this.#informers).every((i) => i.synced)) return;
    const cm = this.#informers.configMaps.get(`${this.opts.namespace}/${this.opts.configMapName}`);
    const yaml = cm?.data?.['config.yaml'] ?? '';
    const decoded = decodeYAML(yaml);
    const objects = [...(this.#informers.pools?.list() ?? []), ...(this.#informers.advertisements?.list() ?? [])];
    const parsed = parseConfigDocuments([...decoded.docs, ...objects]);
    const result = decoded.problems.length > 0 ? { ok: false as const, problems: [...decoded.problems, ...(parsed.ok ? [] : parsed.problems)] } : parsed;
    const text = JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    if (text === this.#configText) return;
    this.#configText = text;
    const { accepted } = this.#config.apply(result);
    this.opts.metrics.configStale.set(this.#config.stale ? 1 : 0);
    this.opts.metrics.configLoaded.set(this.#config.loaded ? 1 : 0);
    if (!accepted) {
      const lines = this.#config.problems.map((p) => formatProblem(this.opts.configMapName, p));
      this.opts.logger.error({ problems: lines }, 'configuration refused; the last valid one stays in use');
      if (cm && this.#leading) {
        void this.api.createEvent({ kind: 'ConfigMap', apiVersion: 'v1', namespace: this.opts.namespace, name: this.opts.configMapName }, 'Warning', 'InvalidConfig', lines.join('\n'))
          .catch(() => this.opts.metrics.apiErrors.inc({ operation: 'createEvent' }));
      }
      return;
    }
    const { released } = this.#allocator.setConfig(this.#config.current);
    this.opts.logger.info({ pools: this.#config.current.pools.map((p) => p.name), released }, 'configuration loaded');
    for (const svc of this.#informers.services.list()) this.#queue.add(objectKey(svc));
    this.#updatePoolMetrics();
    this.#updateDepth();
  }

  #namespaceChanged(ns: string): void {
    for (const svc of this.#informers.services.list()) if (svc.metadata.namespace === ns) this.#enqueue(objectKey(svc));
  }

  #namespaceLabels(svc: Service): Record<string, string> {
    return this.#informers.namespaces.get(svc.metadata.namespace ?? 'default')?.metadata?.labels ?? {};
  }

  #enqueue(key: string): void {
    this.#queue.add(key);
    this.#updateDepth();
  }

  #updateDepth(): void {
    this.opts.metrics.queueDepth.set(this.#queue.length);
  }

  #updatePoolMetrics(): void {
    for (const pool of this.#config.current.pools) {
      const c = this.#allocator.counters(pool.name);
      if (!c) continue;
      this.#dirtyPools.add(pool.name);
      this.opts.metrics.poolAddresses.set({ pool: pool.name, family: 'ipv4' }, clamp(c.assignedIPv4 + c.availableIPv4));
      this.opts.metrics.poolAddresses.set({ pool: pool.name, family: 'ipv6' }, clamp(c.assignedIPv6 + c.availableIPv6));
      this.opts.metrics.poolAddressesInUse.set({ pool: pool.name, family: 'ipv4' }, clamp(c.assignedIPv4));
      this.opts.metrics.poolAddressesInUse.set({ pool: pool.name, family: 'ipv6' }, clamp(c.assignedIPv6));
    }
    this.#scheduleCounterFlush();
  }

  /**
   * IPAddressPool status (MetalLB's counters), written at most every 200 ms and only when
   * changed: a burst of allocations costs one write per pool, not one per Service.
   */
  #scheduleCounterFlush(): void {
    if (this.#flushTimer !== undefined || !this.#leading || !this.#informers.pools) return;
    this.#flushTimer = this.opts.scheduler.setTimeout(() => {
      this.#flushTimer = undefined;
      void this.#flushCounters();
    }, 200);
  }

  async #flushCounters(): Promise<void> {
    const crdPools = new Set((this.#informers.pools?.list() ?? []).map((p) => p.metadata?.name));
    for (const name of [...this.#dirtyPools]) {
      this.#dirtyPools.delete(name);
      const c = this.#allocator.counters(name);
      if (!c || !crdPools.has(name) || this.#closed || !this.#leading) continue;
      const status = { assignedIPv4: clamp(c.assignedIPv4), assignedIPv6: clamp(c.assignedIPv6), availableIPv4: clamp(c.availableIPv4), availableIPv6: clamp(c.availableIPv6) };
      const text = JSON.stringify(status);
      if (this.#lastCounters.get(name) === text) continue;
      try {
        await this.api.patchPoolStatus(this.opts.namespace, name, status);
        this.#lastCounters.set(name, text);
      } catch (err) {
        this.opts.metrics.apiErrors.inc({ operation: 'patchPoolStatus' });
        this.#dirtyPools.add(name);
        this.opts.logger.warn({ pool: name, err: errorText(err) }, 'pool status not written');
      }
    }
    if (this.#dirtyPools.size > 0) this.#scheduleCounterFlush();
  }
}

/** The fields of a Service that Beacon reads (lib/service/types.ts), nothing else. */
function trimService(svc: Service & { metadata: { uid?: string; resourceVersion?: string } }): Service {
  const m = svc.metadata;
  const sp = svc.spec ?? {};
  return {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, labels: m.labels, annotations: m.annotations } as Service['metadata'],
    spec: {
      type: sp.type, ports: sp.ports?.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })), selector: sp.selector,
      loadBalancerIP: sp.loadBalancerIP, loadBalancerClass: sp.loadBalancerClass, externalTrafficPolicy: sp.externalTrafficPolicy,
      ipFamilies: sp.ipFamilies, ipFamilyPolicy: sp.ipFamilyPolicy,
    },
    status: { loadBalancer: { ingress: svc.status?.loadBalancer?.ingress?.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) ?? [] } },
  };
}

/** JSON numbers are exact to 2^53; an IPv6 /64's 2^64 addresses are reported as that. */
function clamp(n: bigint): number {
  return Number(n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n);
}

function statusIPs(svc: Service): IP[] {
  return (svc.status?.loadBalancer?.ingress ?? []).flatMap((i) => {
    const ip = i.ip === undefined ? undefined : tryParseIP(i.ip);
    return ip ? [ip] : [];
  });
}

function errorText(err: unknown): string {
  const e = err as { message?: string; body?: unknown } | null;
  return `${e?.message ?? String(err)}${e?.body ? ` ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}` : ''}`.slice(0, 500);
}
