// The speaker against a real kube-apiserver and etcd, with exactly its ServiceAccount's
// RBAC: Services and EndpointSlices in, traffic through 127.0.0.22x out. Nothing runs
// the endpoint controllers here, so the test writes the EndpointSlices and the Service
// status (the controller's job) itself. The API server refuses loopback endpoints, so
// the backends listen on a veth address of a test host of our own (test/helpers/netns.ts).
// Scenarios share one cluster, in order.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { DiscoveryV1Api, PatchStrategy, setHeaderOptions, type V1EndpointSlice } from '@kubernetes/client-node';
import { eventsFor, lbService, startCluster, until, type Cluster } from '../controller/harness.js';
import { startSpeaker, type RunningSpeaker, DEFAULT_SPEAKER_FLAGS } from '../../speaker/main.js';
import { echoBackend, talk, type EchoBackend } from '../helpers/tcp-peers.js';
import { createTestHost, type TestHost } from '../helpers/netns.js';
import { repoRoot } from '../helpers/root.js';
import { spawn } from 'node:child_process';

const dir = mkdtempSync(join(tmpdir(), 'beacon-spk-'));
let c: Cluster;
let discovery: DiscoveryV1Api;
let sp: RunningSpeaker;
let a: EchoBackend;
let b: EchoBackend;
let host: TestHost;

t.before(async () => {
  host = createTestHost('spk', 1);
  c = await startCluster(dir);
  discovery = c.kc.makeApiClient(DiscoveryV1Api);
  a = await echoBackend('a', { host: host.localIp });
  b = await echoBackend('b', { host: host.localIp });
  sp = await startSpeaker({ ...DEFAULT_SPEAKER_FLAGS, kubeconfig: c.speakerKubeconfig, node: 'node-1', listen: '127.0.0.1:0', logLevel: 'silent', relay: 'native' });
});

t.teardown(async () => {
  await sp?.stop();
  await a?.close();
  await b?.close();
  await c?.stop();
  host?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Conditions = { ready?: boolean; serving?: boolean; terminating?: boolean };
const slice = (service: string, name: string, portName: string, protocol: string, endpoints: [number, Conditions?][]): V1EndpointSlice => ({
  apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
  metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  // Every backend is on one address; a slice names each address once, so ports differ per slice.
  endpoints: endpoints.length ? [{ addresses: [host.localIp], conditions: endpoints[0]![1] ?? { ready: true } }] : [],
  ports: endpoints.length ? [{ name: portName, port: endpoints[0]![0], protocol }] : [],
});

async function createService(svc: ReturnType<typeof lbService>, ip: string): Promise<void> {
  await c.core.createNamespacedService({ namespace: 'default', body: svc });
  // The controller's write: status with the assigned address.
  await c.core.patchNamespacedServiceStatus({ name: svc.metadata!.name!, namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip, ipMode: 'Proxy' }] } } } },
    mergePatch);
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const httpGet = async (port: number, path: string): Promise<string> => (await fetch(`http://127.0.0.1:${port}${path}`)).text();

t.test('a Service with ready endpoints is served on its IP within a second', async (t) => {
  await createService(lbService('web', { ports: [{ port: 8080 }] }), '127.0.0.221');
  await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice('web', 'web-a', 'p8080tcp', 'TCP', [[a.port]]) });
  await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice('web', 'web-b', 'p8080tcp', 'TCP', [[b.port]]) });
  const started = Date.now();
  const seen = await until('traffic through 127.0.0.221:8080 reaches both backends', async () => {
    const got = new Set<string>();
    for (let i = 0; i < 4; i++) got.add((await talk(8080, 'x', true, '127.0.0.221')).split(':')[0]!);
    return got.has('a') && got.has('b') ? [...got].sort() : false;
  }, 10_000);
  t.same(seen, ['a', 'b'], 'round-robin over both slices');
  t.comment(`served ${Date.now() - started} ms after the second slice was written`);
  const events = await until('Serving event', async () => (await eventsFor(c.core, 'web')).find((e) => e.reason === 'Serving'));
  t.equal(events.message, 'serving 127.0.0.221:8080/TCP on node node-1');
  t.match(await httpGet(sp.port, '/readyz'), 'ok');
  const metrics = await httpGet(sp.port, '/metrics');
  t.match(metrics, /beacon_proxy_connections_total\{service="default\/web",frontend="127.0.0.221:8080\/TCP"\} \d+/, 'metrics per Service');
  t.match(metrics, /beacon_speaker_syncs_total\{result="ok"\} \d+/);
});

t.test('a terminating endpoint keeps its connection and gets no new ones', async (t) => {
  // Hold one connection to each backend first.
  const held = new Map<string, ReturnType<typeof connect>>();
  await until('a connection held to each backend', async () => {
    const s = connect({ host: '127.0.0.221', port: 8080 });
    s.on('error', () => undefined);
    const greeting = await new Promise<string>((resolve) => { s.once('data', (d: Buffer) => resolve(d.toString())); s.once('close', () => resolve('')); });
    const name = greeting.split(':')[0]!;
    if (name && !held.has(name)) held.set(name, s); else s.destroy();
    return held.size === 2;
  });
  t.teardown(() => { for (const s of held.values()) s.destroy(); });
  await discovery.replaceNamespacedEndpointSlice({ name: 'web-b', namespace: 'default', body: slice('web', 'web-b', 'p8080tcp', 'TCP', [[b.port, { ready: false, serving: true, terminating: true }]]) });
  await until('b marked terminating', async () => sp.proxy.stats().frontends['default/web:127.0.0.221:8080/TCP']?.backends[`${host.localIp}:${b.port}`]?.state === 'terminating');
  const names = new Set<string>();
  for (let i = 0; i < 6; i++) names.add((await talk(8080, 'y', true, '127.0.0.221')).split(':')[0]!);
  t.same([...names], ['a'], 'new connections go to the ready endpoint only');
  const bConn = held.get('b')!;
  bConn.write('still here');
  const [echo] = await once(bConn, 'data') as [Buffer];
  t.equal(echo.toString(), 'still here', "the terminating endpoint's open connection still works");
});

t.test('a misread annotation is an Event naming it; the Service keeps serving', async (t) => {
  await c.core.patchNamespacedService({ name: 'web', namespace: 'default', body: { metadata: { annotations: { 'beacon-lb.io/balance': 'fastest' } } } },
    mergePatch);
  const ev = await until('InvalidProxyConfig event', async () => (await eventsFor(c.core, 'web')).find((e) => e.reason === 'InvalidProxyConfig'));
  t.match(ev.message, /metadata\.annotations\[beacon-lb\.io\/balance\]: "fastest" is not one of round-robin, least-connections/);
  t.match(await talk(8080, 'z', true, '127.0.0.221'), /^a:z$/, 'still forwarding');
});

t.test('UDP Services are forwarded; SCTP ports and taken addresses get Events', async (t) => {
  const echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  echo.bind(0, host.localIp);
  await once(echo, 'listening');
  t.teardown(() => echo.close());
  await createService(lbService('dns', { ports: [{ port: 5353, protocol: 'UDP' }, { port: 9999, protocol: 'SCTP' }] }), '127.0.0.222');
  await discovery.createNamespacedEndpointSlice({ namespace: 'default', body: slice('dns', 'dns-a', 'p5353udp', 'UDP', [[echo.address().port]]) });
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  const reply = await until('a UDP echo through 127.0.0.222:5353', async () => {
    const got = once(client, 'message');
    client.send('ping', 5353, '127.0.0.222');
    const r = await Promise.race([got, new Promise((res) => setTimeout(() => res(undefined), 300))]) as [Buffer] | undefined;
    return r?.[0].toString();
  });
  t.equal(reply, 'ping');
  const sctp = await until('SCTP event', async () => (await eventsFor(c.core, 'dns')).find((e) => e.reason === 'InvalidProxyConfig'));
  t.match(sctp.message, /spec\.ports\[1\]\.protocol: SCTP is not forwarded/);

  const squatter: Server = createServer();
  squatter.listen(7000, '127.0.0.223');
  await once(squatter, 'listening');
  await createService(lbService('taken', { ports: [{ port: 7000 }] }), '127.0.0.223');
  const taken = await until('FrontendFailed event', async () => (await eventsFor(c.core, 'taken')).find((e) => e.reason === 'FrontendFailed'));
  t.match(taken.message, /127\.0\.0\.223:7000\/TCP: listenFailed: EADDRINUSE/);
  t.match(await httpGet(sp.port, '/metrics'), /beacon_speaker_frontends_failed 1/);
  await new Promise((r) => squatter.close(r));
  const served = await until('the freed address served, with nothing else changed', async () => (await eventsFor(c.core, 'taken')).find((e) => e.reason === 'Serving'), 15_000);
  t.equal(served.message, 'serving 127.0.0.223:7000/TCP on node node-1');
  t.match(await httpGet(sp.port, '/metrics'), /beacon_speaker_frontends_failed 0/);
});

t.test('IPs the node does not hold, other classes and opted-out Services are left alone', async (t) => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): on no interface here, and never sent to.
  await createService(lbService('elsewhere', { ports: [{ port: 80 }] }), '192.0.2.10');
  await createService(lbService('other', { ports: [{ port: 80 }], cls: 'example.com/lb' }), '127.0.0.224');
  await createService(lbService('vip', { ports: [{ port: 80 }], annotations: { 'beacon-lb.io/proxy': 'false' } }), '127.0.0.225');
  await createService(lbService('marker', { ports: [{ port: 8181 }] }), '127.0.0.226');
  await until('the marker Service after them is served', async () => sp.proxy.stats().frontends['default/marker:127.0.0.226:8181/TCP'] !== undefined);
  const keys = Object.keys(sp.proxy.stats().frontends);
  t.notOk(keys.some((k) => /elsewhere|other|vip/.test(k)), `none of them served (${keys.join(', ')})`);
});

t.test('a deleted Service stops being served', async (t) => {
  await c.core.deleteNamespacedService({ name: 'web', namespace: 'default' });
  await until('frontend gone', async () => sp.proxy.stats().frontends['default/web:127.0.0.221:8080/TCP'] === undefined);
  const refused = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.221', port: 8080 });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.on('connect', () => { s.destroy(); resolve('connected'); });
  });
  t.equal(refused, 'ECONNREFUSED');
});

t.test('`beacon speaker` as the DaemonSet runs it: serves, answers probes, exits 0 on SIGTERM', async (t) => {
  await sp.stop(); // the command takes over the same addresses
  const proc = spawn(process.execPath, [join(repoRoot(), 'dist/bin/beacon.js'), 'speaker', `--kubeconfig=${c.speakerKubeconfig}`, '--node=node-2', '--listen=127.0.0.1:0', '--relay=pipe'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d: Buffer) => { logs += d.toString(); });
  proc.stderr.on('data', (d: Buffer) => { logs += d.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  const port = await until('status server port in the logs', async () => Number(/"port":(\d+)/.exec(logs)?.[1]) || false);
  await until('ready', async () => (await httpGet(port, '/readyz')) === 'ok');
  t.equal(await talk(8181, '', true, '127.0.0.226'), '', 'the marker Service is served (no endpoints: the client is closed at once)');
  t.match(logs, /"relay":"pipe"[^\n]*"msg":"relay"/, 'the relay chosen on the command line');
  proc.kill('SIGTERM');
  t.equal(await exited, 0, 'exit code 0');
  t.match(logs, /"msg":"stopped"/);
});
