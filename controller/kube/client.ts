/**
 * Everything the controller asks of the API server, behind small interfaces it defines,
 * implemented here with @kubernetes/client-node 1.4 (2.x needs Node 22's undici). Typed
 * calls for requests; the library's Watch for streams, wrapped by ./informer.ts.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { LeaseSpec } from '../../lib/election/lease.js';
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
  patchServiceStatus(namespace: string, name: string, ingress: readonly Ingress[]): Promise<void>;
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
  readonly #watch: Watch;

  constructor(
    readonly kc: KubeConfig,
    private readonly component = 'beacon-controller',
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.coordination = kc.makeApiClient(CoordinationV1Api);
    this.#watch = new Watch(kc);
  }

  async patchServiceStatus(namespace: string, name: string, ingress: readonly Ingress[]): Promise<void> {
    const body = { status: { loadBalancer: { ingress: ingress.map((i) => ({ ip: i.ip, ipMode: i.ipMode })) } } };
    await this.core.patchNamespacedServiceStatus({ namespace, name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  async patchServiceAnnotations(namespace: string, name: string, annotations: Readonly<Record<string, string | null>>): Promise<void> {
    await this.core.patchNamespacedService({ namespace, name, body: { metadata: { annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  async createEvent(ref: ObjectRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace: ref.namespace,
      body: {
        metadata: { generateName: `${ref.name}.`, namespace: ref.namespace },
        involvedObject: { kind: ref.kind, apiVersion: ref.apiVersion, namespace: ref.namespace, name: ref.name, uid: ref.uid },
        type, reason, message: message.slice(0, 1024),
        source: { component: this.component },
        reportingComponent: this.component,
        firstTimestamp: now, lastTimestamp: now, count: 1,
      },
    });
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

/** The HTTP status of a failed API call, if any. */
export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  const code = e?.code ?? e?.statusCode;
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
