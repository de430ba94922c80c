/**
 * Everything Beacon's controller and speaker ask of the API server, behind small
 * interfaces each of them defines, implemented here with @kubernetes/client-node 1.4
 * (2.x needs Node 22's undici). Typed calls for requests; the library's Watch for
 * streams, wrapped by ./informer.ts.
 */
import { BeaconError } from '../lib/errors.js';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { Agent, request, type RequestOptions } from 'node:https';
import type { LeaseSpec } from '../lib/election/lease.js';
import type { KubeObject, ListWatchSource, WatchEventType } from './informer.js';

export interface ObjectRef {
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface Ingress {
  readonly ip: string;
  readonly ipMode: 'Proxy' | 'VIP';
}

/** The writes the controller makes; a result of `false` never happens: failures throw ApiError. */
export interface ControllerAPI {
  /** Also sets `annotations` when given, in the same request (see KubeAPI). */
  patchServiceStatus(namespace: string, name: string, ingress: readonly Ingress[], annotations?: Readonly<Record<string, string | null>>): Promise<void>;
  patchServiceAnnotations(namespace: string, name: string, annotations: Readonly<Record<string, string | null>>): Promise<void>;
  createEvent(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
  patchPoolStatus(namespace: string, name: string, status: Readonly<Record<string, number>>): Promise<void>;
  readLease(namespace: string, name: string): Promise<{ spec: Partial<LeaseSpec>; resourceVersion: string } | undefined>;
  createLease(namespace: string, name: string, spec: LeaseSpec): Promise<void>;
  replaceLease(namespace: string, name: string, spec: LeaseSpec, resourceVersion: string): Promise<void>;
}

export class KubeAPI implements ControllerAPI {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly coordination: CoordinationV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly #watch: Watch;
  #agent: Agent | undefined;
  #auth: { headers: Record<string, string>; at: number } | undefined;

  constructor(
    readonly kc: KubeConfig,
    private readonly component = 'beacon-controller',
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.#watch = new Watch(kc);
  }

  // The three writes of every reconcile go over one keep-alive agent and skip decoding
  // the response: the typed client opens a new TLS connection per request (a fresh agent
  // each call) and decodes the whole Service it gets back, which capped the controller at
  // about 30 Services a second on 2 cores (BENCHMARKS.md).
  // A merge patch on services/status also applies metadata: the Service status strategy
  // resets only spec. One write instead of two per allocation halves the API server's
  // work per Service; should a server ever drop the metadata, the next reconcile sees the
  // annotation missing and patches the Service itself.
  async patchServiceStatus(namespace: string, name: string, ingress: readonly Ingress[], annotations?: Readonly<Record<string, string | null>>): Promise<void> {
    const body = {
      ...(annotations ? { metadata: { annotations } } : {}),
      status: { loadBalancer: { ingress: ingress.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) } },
    };
    await this.#send('PATCH', `/api/v1/namespaces/${enc(namespace)}/services/${enc(name)}/status`, body, PatchStrategy.MergePatch);
  }

  async patchServiceAnnotations(namespace: string, name: string, annotations: Readonly<Record<string, string | null>>): Promise<void> {
    await this.#send('PATCH', `/api/v1/namespaces/${enc(namespace)}/services/${enc(name)}`, { metadata: { annotations } }, PatchStrategy.MergePatch);
  }

  async createEvent(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    await this.#send('POST', `/api/v1/namespaces/${enc(ref.namespace)}/events`, {
      apiVersion: 'v1', kind: 'Event',
      metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
      involvedObject: { kind: ref.kind, apiVersion: ref.apiVersion, namespace: ref.namespace, name: ref.name, uid: ref.uid },
      type, reason, message: message.slice(0, 1024),
      source: { component: this.component },
      reportingComponent: this.component,
      firstTimestamp: now, lastTimestamp: now, count: 1,
    }, 'application/json');
  }

  /** One request on the shared keep-alive agent; rejects with ApiError on a non-2xx answer. */
  async #send(method: string, path: string, body: unknown, contentType: string): Promise<void> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    if (this.#auth === undefined || Date.now() - this.#auth.at > 60_000) {
      // Re-read credentials every minute: projected ServiceAccount tokens rotate.
      const opts: RequestOptions = { headers: {} };
      await this.kc.applyToHTTPSOptions(opts);
      this.#agent ??= new Agent({
        keepAlive: true, maxSockets: 16,
        ca: opts.ca, cert: opts.cert, key: opts.key,
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      });
      (opts.agent as Agent | undefined)?.destroy();
      this.#auth = { headers: { ...(opts.headers as Record<string, string>) }, at: Date.now() };
    }
    const payload = JSON.stringify(body);
    const url = new URL(cluster.server + path);
    await new Promise<void>((resolve, reject) => {
      const req = request(url, {
        method, agent: this.#agent, timeout: 30_000,
        headers: { ...this.#auth!.headers, 'content-type': contentType, accept: 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { if (text.length < 4096) text += c; });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve();
          else reject(new ApiError(status, `${method} ${path}: ${status}`, text));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  async patchPoolStatus(namespace: string, name: string, status: Readonly<Record<string, number>>): Promise<void> {
    await this.custom.patchNamespacedCustomObjectStatus(
      { group: 'beacon-lb.io', version: 'v1beta1', namespace, plural: 'ipaddresspools', name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  async readLease(namespace: string, name: string): Promise<{ spec: Partial<LeaseSpec>; resourceVersion: string } | undefined> {
    try {
      const lease = await this.coordination.readNamespacedLease({ namespace, name });
      const s = lease.spec ?? {};
      return {
        resourceVersion: lease.metadata?.resourceVersion ?? '',
        spec: {
          holderIdentity: s.holderIdentity ?? '',
          leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
          acquireTime: isoMicro(s.acquireTime),
          renewTime: isoMicro(s.renewTime),
          leaseTransitions: s.leaseTransitions ?? 0,
        },
      };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async createLease(namespace: string, name: string, spec: LeaseSpec): Promise<void> {
    await this.coordination.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: leaseBody(spec) } });
  }

  async replaceLease(namespace: string, name: string, spec: LeaseSpec, resourceVersion: string): Promise<void> {
    await this.coordination.replaceNamespacedLease({ namespace, name, body: { metadata: { name, namespace, resourceVersion }, spec: leaseBody(spec) } });
  }

  /** A list+watch source for `path` (e.g. /api/v1/services), listing with `list`. */
  source<T extends KubeObject>(path: string, list: () => Promise<{ items: readonly object[]; metadata?: { resourceVersion?: string } }>, query: Record<string, string> = {}): ListWatchSource<T> {
    return {
      list: async () => {
        const r = await list();
        // The typed client decodes into its model classes; we read them by shape.
        return { items: r.items as unknown as T[], resourceVersion: r.metadata?.resourceVersion ?? '' };
      },
      watch: async (resourceVersion, timeoutSeconds, onEvent, onDone) => {
        const params = { ...query, resourceVersion, timeoutSeconds, allowWatchBookmarks: true };
        const controller = await this.#watch.watch(path, params, (type: string, obj: T) => onEvent(type as WatchEventType, obj), onDone);
        return { abort: () => controller.abort() };
      },
    };
  }
}

/** A refused API call (`BEACON_API_ERROR`), with the server's status and answer. */
export class ApiError extends BeaconError {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly body: string,
  ) {
    super('BEACON_API_ERROR', message);
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

/** The HTTP status of a failed API call, if any. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  const code = typeof e?.statusCode === 'number' ? e.statusCode : e?.code;
  return typeof code === 'number' ? code : undefined;
}

function leaseBody(spec: LeaseSpec) {
  // MicroTime must have six fractional digits (Go parses RFC3339Micro strictly); the client
  // would write a Date with three, so the strings go through as they are (it passes
  // non-Date values unchanged).
  return {
    holderIdentity: spec.holderIdentity,
    leaseDurationSeconds: spec.leaseDurationSeconds,
    acquireTime: spec.acquireTime as unknown as Date,
    renewTime: spec.renewTime as unknown as Date,
    leaseTransitions: spec.leaseTransitions,
  };
}

function isoMicro(d: Date | string | undefined): string {
  if (d === undefined) return '';
  return typeof d === 'string' ? d : d.toISOString();
}

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return kc;
}
