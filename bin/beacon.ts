#!/usr/bin/env node
/** The `beacon` command: one binary, one subcommand per role. */
import { parseArgs } from 'node:util';
import { runStandalone, serveStandalone } from '../standalone/run.js';
import { DEFAULT_FLAGS, runController } from '../controller/main.js';
import { DEFAULT_SPEAKER_FLAGS, runSpeaker } from '../speaker/main.js';

const USAGE = `usage: beacon <command> [options]

commands:
  standalone [--config FILE] [--once] [--demo]
                               allocate the pools and Services of FILE, without
                               Kubernetes, print the table, then forward TCP Services
                               until Ctrl-C (--once: print and exit; --demo: start HTTP
                               backends on the endpoints first); default FILE: the
                               embedded config/standalone.yaml
  controller [options]         assign IPs to LoadBalancer Services (one active replica,
                               elected on a Lease); options, with defaults:
      --kubeconfig FILE          in-cluster config, else $KUBECONFIG or ~/.kube/config
      --namespace NS             ${DEFAULT_FLAGS.namespace} (ConfigMap, CRDs and Lease live here)
      --config-map NAME          ${DEFAULT_FLAGS.configMap}
      --load-balancer-class C    ${DEFAULT_FLAGS.loadBalancerClass}
      --serve-unclassed          also serve LoadBalancer Services with no class
      --no-crds                  configuration from the ConfigMap only
      --identity ID              $POD_NAME or the host name
      --lease-duration S         ${DEFAULT_FLAGS.leaseDuration} (renew deadline ${DEFAULT_FLAGS.renewDeadline}, retry ${DEFAULT_FLAGS.retryPeriod})
      --listen HOST:PORT         ${DEFAULT_FLAGS.listen} (/metrics, /healthz, /readyz)
      --log-level LEVEL          ${DEFAULT_FLAGS.logLevel}
      --workers N                ${DEFAULT_FLAGS.workers} concurrent reconciles
  speaker [options]            on this node, forward TCP and UDP for the LoadBalancer
                               Services whose IPs the node holds, to their ready
                               endpoints; options, with defaults:
      --kubeconfig FILE          in-cluster config, else $KUBECONFIG or ~/.kube/config
      --node NAME                $NODE_NAME or the host name
      --load-balancer-class C    ${DEFAULT_SPEAKER_FLAGS.loadBalancerClass}
      --serve-unclassed          also serve LoadBalancer Services with no class
      --listen HOST:PORT         ${DEFAULT_SPEAKER_FLAGS.listen} (/metrics, /healthz, /readyz)
      --log-level LEVEL          ${DEFAULT_SPEAKER_FLAGS.logLevel}
      --relay native|pipe        ${DEFAULT_SPEAKER_FLAGS.relay} (pipe: Node streams, no C addon)
      --shutdown-drain S         ${DEFAULT_SPEAKER_FLAGS.shutdownDrainMs / 1000} (on SIGTERM, open connections may finish this long)
  help                         this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'standalone': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, once: { type: 'boolean' }, demo: { type: 'boolean' } }, strict: true });
      const io = { write: (s: string) => process.stdout.write(s), error: (s: string) => process.stderr.write(s) };
      if (values.once) return (await runStandalone(values.config, io)).exitCode;
      const until = new Promise<void>((resolve) => { process.once('SIGINT', () => resolve()); process.once('SIGTERM', () => resolve()); });
      return serveStandalone(values.config, io, { demoBackends: values.demo ?? false, until });
    }
    case 'controller': {
      const { values: v } = parseArgs({
        args: rest, strict: true,
        options: {
          kubeconfig: { type: 'string' }, namespace: { type: 'string' }, 'config-map': { type: 'string' },
          'load-balancer-class': { type: 'string' }, 'serve-unclassed': { type: 'boolean' }, 'no-crds': { type: 'boolean' },
          identity: { type: 'string' }, 'lease-duration': { type: 'string' }, 'renew-deadline': { type: 'string' },
          'retry-period': { type: 'string' }, listen: { type: 'string' }, 'log-level': { type: 'string' }, workers: { type: 'string' },
        },
      });
      const num = (s: string | undefined, d: number) => (s === undefined ? d : Number(s));
      return runController({
        ...DEFAULT_FLAGS,
        ...(v.kubeconfig !== undefined ? { kubeconfig: v.kubeconfig } : {}),
        namespace: v.namespace ?? DEFAULT_FLAGS.namespace,
        configMap: v['config-map'] ?? DEFAULT_FLAGS.configMap,
        loadBalancerClass: v['load-balancer-class'] ?? DEFAULT_FLAGS.loadBalancerClass,
        serveUnclassed: v['serve-unclassed'] ?? false,
        crds: !(v['no-crds'] ?? false),
        identity: v.identity ?? DEFAULT_FLAGS.identity,
        leaseDuration: num(v['lease-duration'], DEFAULT_FLAGS.leaseDuration),
        renewDeadline: num(v['renew-deadline'], DEFAULT_FLAGS.renewDeadline),
        retryPeriod: num(v['retry-period'], DEFAULT_FLAGS.retryPeriod),
        listen: v.listen ?? DEFAULT_FLAGS.listen,
        logLevel: v['log-level'] ?? DEFAULT_FLAGS.logLevel,
        workers: num(v.workers, DEFAULT_FLAGS.workers),
      });
    }
    case 'speaker': {
      const { values: v } = parseArgs({
        args: rest, strict: true,
        options: {
          kubeconfig: { type: 'string' }, node: { type: 'string' }, 'load-balancer-class': { type: 'string' }, 'serve-unclassed': { type: 'boolean' },
          listen: { type: 'string' }, 'log-level': { type: 'string' }, relay: { type: 'string' }, 'shutdown-drain': { type: 'string' },
        },
      });
      if (v.relay !== undefined && v.relay !== 'native' && v.relay !== 'pipe') throw Object.assign(new Error(`--relay: "${v.relay}" is not native or pipe`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
      return runSpeaker({
        ...DEFAULT_SPEAKER_FLAGS,
        ...(v.kubeconfig !== undefined ? { kubeconfig: v.kubeconfig } : {}),
        node: v.node ?? DEFAULT_SPEAKER_FLAGS.node,
        loadBalancerClass: v['load-balancer-class'] ?? DEFAULT_SPEAKER_FLAGS.loadBalancerClass,
        serveUnclassed: v['serve-unclassed'] ?? false,
        listen: v.listen ?? DEFAULT_SPEAKER_FLAGS.listen,
        logLevel: v['log-level'] ?? DEFAULT_SPEAKER_FLAGS.logLevel,
        relay: (v.relay as 'native' | 'pipe' | undefined) ?? DEFAULT_SPEAKER_FLAGS.relay,
        shutdownDrainMs: seconds('--shutdown-drain', v['shutdown-drain'], DEFAULT_SPEAKER_FLAGS.shutdownDrainMs),
      });
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`beacon: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

/** A flag given in seconds (fractions allowed), as milliseconds; a bad value is a usage error. */
function seconds(flag: string, text: string | undefined, defaultMs: number): number {
  if (text === undefined) return defaultMs;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw Object.assign(new Error(`${flag}: "${text}" is not a number of seconds`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  return n * 1000;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    // node:util parseArgs refuses unknown or malformed options with these codes: a usage error.
    const usage = /^ERR_PARSE_ARGS_/.test(String((err as { code?: unknown }).code));
    process.stderr.write(usage ? `beacon: ${(err as Error).message}\n${USAGE}` : `beacon: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = usage ? 2 : 1;
  },
);
