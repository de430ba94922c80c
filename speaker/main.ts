/**
 * `beacon speaker`: wires the speaker loop to the API server, the proxy, the status
 * server and signals. SIGTERM/SIGINT: stop watching, drain open connections up to each
 * Service's drain timeout, exit 0.
 */
import { hostname, networkInterfaces } from 'node:os';
import { pino } from 'pino';
import { DEFAULT_CLASS } from '../lib/service/class.js';
import { realScheduler } from '../kube/informer.js';
import { localOwnership } from '../lib/speaker/ownership.js';
import { KubeAPI, loadKubeConfig } from '../kube/client.js';
import { StatusServer } from '../kube/status-server.js';
import { Proxy } from './proxy/index.js';
import { SpeakerMetrics } from './metrics.js';
import { Speaker } from './speaker.js';

export interface SpeakerFlags {
  kubeconfig?: string;
  node: string;
  loadBalancerClass: string;
  serveUnclassed: boolean;
  listen: string;
  logLevel: string;
  relay: 'native' | 'pipe';
  /** On SIGTERM, open connections may finish this long (ms), at most. */
  shutdownDrainMs: number;
}

export const DEFAULT_SPEAKER_FLAGS: SpeakerFlags = {
  node: process.env['NODE_NAME'] ?? hostname(),
  loadBalancerClass: DEFAULT_CLASS,
  serveUnclassed: false,
  // 7472 is the controller's; the speaker runs on the host network beside it (config/deploy).
  listen: '0.0.0.0:7473',
  logLevel: 'info',
  relay: 'native',
  // The DaemonSet's terminationGracePeriodSeconds is 10: finish before the kubelet's SIGKILL.
  shutdownDrainMs: 8000,
};

/** Every address on the node's interfaces, read at each sync: addresses come and go. */
function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

export interface RunningSpeaker {
  /** The status server's port (for tests that listen on :0). */
  readonly port: number;
  readonly speaker: Speaker;
  readonly proxy: Proxy;
  /** Stops everything; resolves when drained. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the speaker and resolves once its caches are synced and the first sync applied. */
export async function startSpeaker(flags: SpeakerFlags): Promise<RunningSpeaker> {
  const logger = pino({ level: flags.logLevel, base: { component: 'speaker', node: flags.node } });
  const api = new KubeAPI(loadKubeConfig(flags.kubeconfig), 'beacon-speaker');
  const proxy = new Proxy({ logger: logger.child({ component: 'proxy' }), relay: flags.relay });
  const metrics = new SpeakerMetrics(() => proxy.stats());
  const speaker = new Speaker(api, {
    services: api.source('/api/v1/services', () => api.core.listServiceForAllNamespaces()),
    endpointSlices: api.source('/apis/discovery.k8s.io/v1/endpointslices', () => api.discovery.listEndpointSliceForAllNamespaces()),
  }, proxy, {
    node: flags.node,
    policy: { loadBalancerClass: flags.loadBalancerClass, serveUnclassed: flags.serveUnclassed },
    ownership: () => localOwnership(interfaceAddresses()),
    scheduler: realScheduler, logger, metrics,
  });
  const server = new StatusServer(metrics.registry, speaker);
  const i = flags.listen.lastIndexOf(':');
  const port = await server.start(flags.listen.slice(0, i).replace(/^\[|\]$/g, ''), Number(flags.listen.slice(i + 1)));
  logger.info({ listen: flags.listen, port }, 'status server up');
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    await speaker.close();
    await proxy.close(flags.shutdownDrainMs);
    await server.close();
    api.close();
    logger.info('stopped');
  })());
  try {
    await speaker.start();
  } catch (err) {
    await stop();
    throw err;
  }
  logger.info('caches synced, data plane applied');
  return { port, speaker, proxy, stop };
}

export async function runSpeaker(flags: SpeakerFlags): Promise<number> {
  const running = await startSpeaker(flags);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await running.stop();
  return 0;
}
