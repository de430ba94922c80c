/**
 * The speaker's loop on one node: Services and EndpointSlices from the API server in,
 * the data plane out. Every change marks the state dirty; one sync at a time computes the
 * whole desired state (lib/speaker/frontends.ts) and hands it to Proxy.apply(), which
 * diffs. Changes that arrive during a sync coalesce into one more sync after it, so a
 * burst of EndpointSlice updates costs a few syncs, not one each.
 *
 * A Service we cannot serve as asked gets a Warning Event saying why (misread annotation,
 * SCTP port, address in use), once per distinct message, as the controller does.
 * Which IPs this node serves is `ownership` (today: addresses local to the node; the L2
 * election replaces it).
 */
import type { Logger } from 'pino';
import { desiredFrontends } from '../lib/speaker/frontends.js';
import { SERVICE_NAME_LABEL, type EndpointSlice } from '../lib/speaker/endpoints.js';
import type { ServiceProxyOptions } from '../lib/speaker/service-options.js';
import type { ClassPolicy } from '../lib/service/class.js';
import type { Service } from '../lib/service/types.js';
import type { Scheduler } from '../lib/controller/workqueue.js';
import { Informer, type KubeObject, type ListWatchSource } from '../kube/informer.js';
import type { ObjectRef } from '../kube/client.js';
import type { Proxy } from './proxy/index.js';
import type { SpeakerMetrics } from './metrics.js';

/** The one write the speaker makes. */
export interface SpeakerAPI {
  createEvent(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export interface SpeakerSources {
  readonly services: ListWatchSource<Service & KubeObject>;
  readonly endpointSlices: ListWatchSource<EndpointSlice & KubeObject>;
}

export interface SpeakerOptions {
  readonly node: string;
  readonly policy: ClassPolicy;
  /** Read at each sync: whether this node serves `ip` (canonical text) now. */
  readonly ownership: () => (ip: string) => boolean;
  readonly scheduler: Scheduler;
  readonly logger: Logger;
  readonly metrics: SpeakerMetrics;
}

/**
 * A frontend that could not open (its address in use, say) is tried again this often
 * even when nothing else changes, so it comes up soon after the port is freed.
 */
export const RETRY_FAILED_MS = 5000;

/** Event reasons, stable: users filter on them. */
export const EVENT_SERVING = 'Serving';
export const EVENT_PROXY_CONFIG = 'InvalidProxyConfig';
export const EVENT_NOT_SERVED = 'FrontendFailed';

export class Speaker {
  readonly #services: Informer<Service & KubeObject>;
  readonly #slices: Informer<EndpointSlice & KubeObject>;
  #lastValid: ReadonlyMap<string, ServiceProxyOptions> = new Map();
  /** Per Service and Event reason, the message last told, so each is told once. */
  readonly #told = new Map<string, string>();
  readonly #events = new Set<Promise<void>>();
  #syncing: Promise<void> | undefined;
  #dirty = false;
  #synced = false;
  #closed = false;
  #retry: unknown;

  constructor(
    private readonly api: SpeakerAPI,
    sources: SpeakerSources,
    private readonly proxy: Proxy,
    private readonly opts: SpeakerOptions,
  ) {
    const inf = <T extends KubeObject>(source: ListWatchSource<T>, what: string, transform: (o: never) => unknown) => new Informer<T>(source, () => this.#changed(), {
      scheduler: opts.scheduler, transform,
      onError: (err, retry) => opts.logger.warn({ err: String(err), what, retryInMs: retry }, 'watch failed, retrying'),
    });
    this.#services = inf(sources.services, 'services', trimService);
    this.#slices = inf(sources.endpointSlices, 'endpointslices', trimSlice);
  }

  /** Caches synced and the first sync applied. */
  ready(): boolean {
    return this.#synced;
  }

  async start(): Promise<void> {
    this.#services.start();
    this.#slices.start();
    await Promise.all([this.#services.waitForSync(), this.#slices.waitForSync()]);
    this.#changed();
    await this.#syncing;
  }

  /** Resolves when no sync is running or due (tests, and shutdown). */
  async settled(): Promise<void> {
    while (this.#syncing) await this.#syncing;
  }

  /** Stops watching, waits for the sync under way and the Events in flight. The proxy is the caller's. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.opts.scheduler.clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#services.close();
    this.#slices.close();
    await this.settled();
    await Promise.all(this.#events);
  }

  #changed(): void {
    if (this.#closed || !this.#services.synced || !this.#slices.synced) return;
    this.#dirty = true;
    this.#syncing ??= this.#loop().finally(() => { this.#syncing = undefined; });
  }

  async #loop(): Promise<void> {
    while (this.#dirty && !this.#closed) {
      this.#dirty = false;
      try {
        await this.#sync();
        this.opts.metrics.syncs.inc({ result: 'ok' });
      } catch (err) {
        // Proxy.apply reports failures as values; reaching here is a bug, logged, never fatal.
        this.opts.metrics.syncs.inc({ result: 'error' });
        this.opts.logger.error({ err: String(err) }, 'sync failed');
      }
    }
  }

  async #sync(): Promise<void> {
    const slices = new Map<string, EndpointSlice[]>();
    for (const s of this.#slices.list()) {
      const name = s.metadata.labels?.[SERVICE_NAME_LABEL];
      if (!name) continue;
      const key = `${s.metadata.namespace ?? 'default'}/${name}`;
      const list = slices.get(key);
      if (list) list.push(s); else slices.set(key, [s]);
    }
    const state = desiredFrontends({
      services: this.#services.list(), slices, policy: this.opts.policy, owns: this.opts.ownership(), lastValid: this.#lastValid,
    });
    this.#lastValid = state.lastValid;
    const { failed } = await this.proxy.apply(state.frontends);
    this.opts.metrics.frontendsFailed.set(failed.length);
    if (failed.length > 0 && this.#retry === undefined && !this.#closed) {
      this.#retry = this.opts.scheduler.setTimeout(() => { this.#retry = undefined; this.#changed(); }, RETRY_FAILED_MS);
    }
    this.opts.metrics.servicesWithProblems.set(state.services.filter((s) => s.problems.length > 0).length);

    // Per Service, in one pass over the frontends: what it serves, and what failed with why.
    const why = new Map(failed.map((f) => [f.key, f.reason]));
    const served = new Map<string, Set<string>>();
    const failures = new Map<string, string[]>();
    for (const f of state.frontends) {
      const address = `${f.ip.includes(':') ? `[${f.ip}]` : f.ip}:${f.port}/${f.protocol}`;
      const reason = why.get(f.key);
      if (reason === undefined) served.set(f.service, (served.get(f.service) ?? new Set()).add(address));
      else failures.set(f.service, (failures.get(f.service) ?? []).concat(`${address}: ${reason}`));
    }
    const seen = new Set<string>();
    for (const report of state.services) {
      seen.add(report.service);
      const addresses = served.get(report.service);
      this.#tell(report.service, 'Warning', EVENT_PROXY_CONFIG, report.problems.map((p) => `${p.field}: ${p.reason}`).join('\n'));
      this.#tell(report.service, 'Warning', EVENT_NOT_SERVED, (failures.get(report.service) ?? []).join('\n'));
      this.#tell(report.service, 'Normal', EVENT_SERVING, addresses ? `serving ${[...addresses].join(', ')} on node ${this.opts.node}` : '');
    }
    // A Service no longer here (deleted, moved away): forget what we told, so a return is told again.
    for (const key of this.#told.keys()) if (!seen.has(key.slice(0, key.lastIndexOf('|')))) this.#told.delete(key);
    this.#synced = true;
  }

  /** Records an Event when `message` differs from the last one told for this Service and reason; '' clears. */
  #tell(service: string, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${service}|${reason}`;
    if (message === '') { this.#told.delete(key); return; }
    if (this.#told.get(key) === message) return;
    this.#told.set(key, message);
    const [namespace, name] = [service.slice(0, service.indexOf('/')), service.slice(service.indexOf('/') + 1)];
    const svc = this.#services.get(service) as { metadata?: { uid?: string } } | undefined;
    if (type === 'Warning') this.opts.logger.warn({ service, reason, message }, 'service not served as asked');
    else this.opts.logger.info({ service, reason, message }, 'service served');
    // Best effort and off the sync's path: a lost Event must neither block nor fail it.
    const p = this.api.createEvent({ kind: 'Service', apiVersion: 'v1', namespace, name, ...(svc?.metadata?.uid ? { uid: svc.metadata.uid } : {}) }, type, reason, message)
      .catch((err: unknown) => { this.opts.metrics.apiErrors.inc({ operation: 'createEvent' }); this.opts.logger.warn({ err: String(err) }, 'event not recorded'); })
      .finally(() => this.#events.delete(p));
    this.#events.add(p);
  }
}

/** What the speaker reads of a Service: managedFields and the rest are most of its size. */
function trimService(svc: Service & { metadata: { uid?: string; resourceVersion?: string } }): Service {
  const m = svc.metadata;
  const sp = svc.spec ?? {};
  return {
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, annotations: m.annotations } as Service['metadata'],
    spec: {
      type: sp.type, ports: sp.ports?.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })), loadBalancerClass: sp.loadBalancerClass,
      loadBalancerSourceRanges: sp.loadBalancerSourceRanges, sessionAffinity: sp.sessionAffinity, sessionAffinityConfig: sp.sessionAffinityConfig,
    },
    status: { loadBalancer: { ingress: svc.status?.loadBalancer?.ingress?.map((i) => ({ ip: i.ip })) ?? [] } },
  };
}

function trimSlice(s: EndpointSlice & { metadata: { resourceVersion?: string } }): EndpointSlice {
  const m = s.metadata;
  return {
    metadata: { name: m.name, namespace: m.namespace, resourceVersion: m.resourceVersion, labels: m.labels } as EndpointSlice['metadata'],
    addressType: s.addressType,
    endpoints: (s.endpoints ?? []).map((e) => ({ addresses: e.addresses, conditions: e.conditions ?? {} })),
    ports: (s.ports ?? []).map((p) => ({ name: p.name ?? '', port: p.port ?? null, protocol: p.protocol ?? 'TCP' })),
  };
}
