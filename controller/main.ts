/**
 * `beacon controller`: wires the controller to the API server, the Lease, the status
 * server and signals. SIGTERM/SIGINT: release the Lease, stop watches, exit 0.
 */
import { hostname } from 'node:os';
import { pino } from 'pino';
import { DEFAULT_CLASS } from '../lib/service/class.js';
import { realScheduler } from '../kube/informer.js';
import { Controller } from './controller.js';
import { StatusServer } from '../kube/status-server.js';
import { KubeAPI, loadKubeConfig } from '../kube/client.js';
import { LeaderElector } from './leader.js';
import { ControllerMetrics } from './metrics.js';

export interface ControllerFlags {
  kubeconfig?: string;
  namespace: string;
  configMap: string;
  loadBalancerClass: string;
  serveUnclassed: boolean;
  crds: boolean;
  identity: string;
  leaseName: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  listen: string;
  logLevel: string;
  workers: number;
}

export const DEFAULT_FLAGS: ControllerFlags = {
  namespace: process.env['BEACON_NAMESPACE'] ?? 'beacon-system',
  configMap: 'beacon-config',
  loadBalancerClass: DEFAULT_CLASS,
  serveUnclassed: false,
  crds: true,
  identity: process.env['POD_NAME'] ?? hostname(),
  leaseName: 'beacon-controller',
  leaseDuration: 15,
  renewDeadline: 10,
  retryPeriod: 2,
  listen: '0.0.0.0:7472',
  logLevel: 'info',
  workers: 8,
};

export async function runController(flags: ControllerFlags): Promise<number> {
  const logger = pino({ level: flags.logLevel, base: { component: 'controller', identity: flags.identity } });
  const kc = loadKubeConfig(flags.kubeconfig);
  const api = new KubeAPI(kc);
  const metrics = new ControllerMetrics();
  const ns = flags.namespace;
  const group = { group: 'beacon-lb.io', version: 'v1beta1', namespace: ns };
  const controller = new Controller(api, {
    services: api.source('/api/v1/services', () => api.core.listServiceForAllNamespaces()),
    namespaces: api.source('/api/v1/namespaces', () => api.core.listNamespace()),
    configMaps: api.source(`/api/v1/namespaces/${ns}/configmaps`, () => api.core.listNamespacedConfigMap({ namespace: ns, fieldSelector: `metadata.name=${flags.configMap}` }), { fieldSelector: `metadata.name=${flags.configMap}` }),
    ...(flags.crds ? {
      pools: api.source(`/apis/beacon-lb.io/v1beta1/namespaces/${ns}/ipaddresspools`, () => api.custom.listNamespacedCustomObject({ ...group, plural: 'ipaddresspools' })),
      advertisements: api.source(`/apis/beacon-lb.io/v1beta1/namespaces/${ns}/l2advertisements`, () => api.custom.listNamespacedCustomObject({ ...group, plural: 'l2advertisements' })),
    } : {}),
  }, {
    namespace: ns,
    configMapName: flags.configMap,
    classPolicy: { loadBalancerClass: flags.loadBalancerClass, serveUnclassed: flags.serveUnclassed },
    scheduler: realScheduler,
    logger,
    metrics,
    workers: flags.workers,
  });

  let stopping: Promise<void> | undefined;
  const elector = new LeaderElector(api, {
    namespace: ns, name: flags.leaseName, identity: flags.identity,
    leaseDurationSeconds: flags.leaseDuration, renewDeadlineSeconds: flags.renewDeadline, retryPeriodSeconds: flags.retryPeriod,
    scheduler: realScheduler, now: () => performance.now(),
    onStartedLeading: () => { logger.info('started leading'); controller.startLeading(); },
    onStoppedLeading: () => {
      // Stop writing at once (another replica may take over after the lease duration; we
      // stepped down at the renew deadline, before that) and stand by to win it back.
      logger.warn('lost the lease; standing by');
      controller.stopLeading();
    },
    onError: (err) => logger.debug({ err: String(err) }, 'lease update failed'),
  });
  const server = new StatusServer(metrics.registry, controller);
  const [host, port] = splitHostPort(flags.listen);
  const bound = await server.start(host, port);
  logger.info({ listen: `${host}:${bound}` }, 'status server up');

  let stopped!: () => void;
  const done = new Promise<void>((resolve) => { stopped = resolve; });
  const stop = () => (stopping ??= (async () => {
    await elector.close();
    await controller.close();
    await server.close();
    api.close();
    logger.info('stopped');
    stopped();
  })());
  const onSignal = (signal: string) => { logger.info({ signal }, 'shutting down'); void stop(); };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await controller.start();
  logger.info('caches synced');
  elector.start();
  await done;
  process.removeListener('SIGTERM', onSignal);
  process.removeListener('SIGINT', onSignal);
  return 0;
}

function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i).replace(/^\[|\]$/g, ''), Number(s.slice(i + 1))];
}
