/**
 * Integration harness: a real control plane (test/k8s/control-plane.ts), Beacon's
 * manifests applied to it, kubeconfigs holding exactly the controller's and the speaker's
 * ServiceAccount tokens, and controllers run as child processes (`beacon controller` from
 * dist/). The speaker's tests use it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/root.js';
import { parseAllDocuments } from 'yaml';
import { CoreV1Api, CustomObjectsApi, KubeConfig, KubernetesObjectApi, type KubernetesObject, type V1Service } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../k8s/control-plane.js';

const root = repoRoot();
export const NS = 'beacon-system';

export interface Cluster {
  plane: ControlPlane;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  objects: KubernetesObjectApi;
  /** A kubeconfig holding the controller ServiceAccount's token. */
  controllerKubeconfig: string;
  /** A kubeconfig holding the speaker ServiceAccount's token. */
  speakerKubeconfig: string;
  stop(): Promise<void>;
}

export async function startCluster(dir: string): Promise<Cluster> {
  const plane = await startControlPlane();
  try {
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (const file of ['namespace.yaml', 'crds.yaml', 'controller.yaml', 'speaker.yaml']) await applyFile(objects, join(root, 'config/deploy', file));
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await until('CRDs served', async () => {
      try { await custom.listNamespacedCustomObject({ group: 'beacon-lb.io', version: 'v1beta1', namespace: NS, plural: 'ipaddresspools' }); return true; } catch { return false; }
    }, 30_000);
    const kubeconfigFor = async (sa: string): Promise<string> => {
      const token = await core.createNamespacedServiceAccountToken({ name: sa, namespace: NS, body: { spec: { audiences: [], expirationSeconds: 7200 } } });
      const file = join(dir, `${sa}.kubeconfig`);
      writeFileSync(file, JSON.stringify({
        apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
        clusters: [{ name: 'c', cluster: { server: plane.server, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'sa', user: { token: token.status?.token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'sa' } }],
      }));
      return file;
    };
    const controllerKubeconfig = await kubeconfigFor('beacon-controller');
    const speakerKubeconfig = await kubeconfigFor('beacon-speaker');
    return { plane, kc, core, custom, objects, controllerKubeconfig, speakerKubeconfig, stop: () => plane.stop() };
  } catch (err) {
    await plane.stop();
    throw err;
  }
}

export async function applyFile(objects: KubernetesObjectApi, file: string): Promise<void> {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const obj = doc.toJS() as KubernetesObject | null;
    if (obj) await objects.create(obj);
  }
}

export async function until<T>(what: string, fn: () => Promise<T | false | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== false && v !== undefined) return v;
    } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface RunningController {
  proc: ChildProcess;
  logs: () => string;
  identity: string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startController(cluster: Cluster, identity: string, extra: string[] = []): RunningController {
  let logs = '';
  const proc = spawn(process.execPath, [join(root, 'dist/bin/beacon.js'), 'controller',
    `--kubeconfig=${cluster.controllerKubeconfig}`, `--namespace=${NS}`, `--identity=${identity}`, '--listen=127.0.0.1:0',
    '--lease-duration=3', '--renew-deadline=2', '--retry-period=0.5', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => { logs += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { logs += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc, identity, logs: () => logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export function lbService(name: string, opts: { ns?: string; annotations?: Record<string, string>; ports?: { port: number; protocol?: string }[]; cls?: string | null; type?: string; ipFamilyPolicy?: string; ipFamilies?: string[] } = {}): V1Service {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name, namespace: opts.ns ?? 'default', ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      type: opts.type ?? 'LoadBalancer',
      // Beacon's proxy needs no node ports, and the benchmark creates more Services than
      // the node port range holds.
      ...((opts.type ?? 'LoadBalancer') === 'LoadBalancer' ? { allocateLoadBalancerNodePorts: false } : {}),
      ...(opts.cls === null ? {} : { loadBalancerClass: opts.cls ?? 'beacon-lb.io/lb' }),
      ports: (opts.ports ?? [{ port: 80 }]).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP', name: `p${p.port}${(p.protocol ?? 'tcp').toLowerCase()}` })),
      selector: { app: name },
      ...(opts.ipFamilyPolicy ? { ipFamilyPolicy: opts.ipFamilyPolicy } : {}),
      ...(opts.ipFamilies ? { ipFamilies: opts.ipFamilies } : {}),
    },
  };
}

export async function ingressOf(core: CoreV1Api, name: string, ns = 'default'): Promise<string[]> {
  const svc = await core.readNamespacedServiceStatus({ name, namespace: ns });
  return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '');
}

/** Waits until the Service's ingress IPs equal `ips` (joined with ","), or are non-empty when ips is '*'. */
export async function waitIngress(core: CoreV1Api, name: string, ips: string, ns = 'default', timeoutMs = 15_000): Promise<string> {
  return until(`${ns}/${name} ingress ${ips}`, async () => {
    const got = (await ingressOf(core, name, ns)).join(',');
    return (ips === '*' ? got !== '' : got === ips) ? got : false;
  }, timeoutMs);
}

export function poolObject(name: string, addresses: string[], spec: Record<string, unknown> = {}) {
  return { apiVersion: 'beacon-lb.io/v1beta1', kind: 'IPAddressPool', metadata: { name, namespace: NS }, spec: { addresses, ...spec } };
}

export async function createPool(c: Cluster, name: string, addresses: string[], spec: Record<string, unknown> = {}) {
  await c.custom.createNamespacedCustomObject({ group: 'beacon-lb.io', version: 'v1beta1', namespace: NS, plural: 'ipaddresspools', body: poolObject(name, addresses, spec) });
}

export async function deletePool(c: Cluster, name: string) {
  await c.custom.deleteNamespacedCustomObject({ group: 'beacon-lb.io', version: 'v1beta1', namespace: NS, plural: 'ipaddresspools', name });
}

export async function eventsFor(core: CoreV1Api, name: string, ns = 'default'): Promise<{ reason: string; message: string }[]> {
  const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? '', message: e.message ?? '' }));
}
