// The speaker's metrics over a real Proxy on loopback: what a scrape shows after traffic.
import t from 'tap';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Proxy } from '../../speaker/proxy/index.js';
import { SpeakerMetrics } from '../../speaker/metrics.js';
import { echoBackend, talk } from '../helpers/tcp-peers.js';
import { CONNECT_BUCKETS_MS } from '../../lib/balancer/backend-pool.js';

/** `name{labels} value` lines of a scrape, as a map from the part before the value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

t.test('per frontend and backend: connections, bytes, errors by reason, health, connect latency', async (t) => {
  const live = await echoBackend('a');
  const dead = await echoBackend('dead');
  await dead.close(); // its port now refuses
  t.teardown(live.close);
  const proxy = new Proxy();
  t.teardown(() => proxy.close());
  const metrics = new SpeakerMetrics(() => proxy.stats(), false);
  const backends = [{ ip: '127.0.0.1', port: dead.port, state: 'ready' as const }, { ip: '127.0.0.1', port: live.port, state: 'ready' as const }];
  const r = await proxy.apply([
    { key: 'demo/web:127.0.0.1:0/TCP', service: 'demo/web', ip: '127.0.0.1', port: 0, protocol: 'TCP', backends, options: { drainTimeoutMs: 0 } },
    { key: 'demo/dns:127.0.0.1:0/UDP', service: 'demo/dns', ip: '127.0.0.1', port: 0, protocol: 'UDP', backends: [], options: {} },
  ]);
  t.same(r.failed, []);
  const port = proxy.stats().frontends['demo/web:127.0.0.1:0/TCP']!.port;
  // Round-robin starts at the dead backend: the first client is retried on the live one.
  t.equal(await talk(port, 'hello'), 'a:hello');
  t.equal(await talk(port, 'again'), 'a:again');
  const udpPort = proxy.stats().frontends['demo/dns:127.0.0.1:0/UDP']!.port;
  const client = createSocket('udp4');
  client.send('q', udpPort, '127.0.0.1');
  await once(client, 'listening').catch(() => undefined);
  for (let i = 0; i < 100 && !proxy.stats().frontends['demo/dns:127.0.0.1:0/UDP']!.errors['noBackend']; i++) await new Promise((res) => setTimeout(res, 10));
  client.close();
  for (let i = 0; i < 100 && proxy.stats().frontends['demo/web:127.0.0.1:0/TCP']!.active > 0; i++) await new Promise((res) => setTimeout(res, 10));

  const text = await metrics.registry.metrics();
  const s = samples(text);
  const fe = `service="demo/web",frontend="127.0.0.1:${port}/TCP"`;
  const liveB = `${fe},backend="127.0.0.1:${live.port}"`;
  const deadB = `${fe},backend="127.0.0.1:${dead.port}"`;
  const rows: { desc: string; sample: string; value: number }[] = [
    { desc: 'connections accepted', sample: `beacon_proxy_connections_total{${fe}}`, value: 2 },
    { desc: 'none open now', sample: `beacon_proxy_connections_active{${fe}}`, value: 0 },
    { desc: 'client bytes in, without any header', sample: `beacon_proxy_bytes_total{${fe},direction="in"}`, value: 10 },
    { desc: 'bytes out, greetings included', sample: `beacon_proxy_bytes_total{${fe},direction="out"}`, value: 14 },
    { desc: 'the live backend carried both', sample: `beacon_proxy_backend_connections_total{${liveB}}`, value: 2 },
    { desc: 'the dead one refused once and was ejected', sample: `beacon_proxy_backend_errors_total{${deadB},reason="connectFailed"}`, value: 1 },
    { desc: 'ejected: unhealthy', sample: `beacon_proxy_backend_healthy{${deadB}}`, value: 0 },
    { desc: 'the live one healthy', sample: `beacon_proxy_backend_healthy{${liveB}}`, value: 1 },
    { desc: 'both are ready endpoints', sample: `beacon_proxy_backend_ready{${deadB}}`, value: 1 },
    { desc: 'two connect latencies observed', sample: `beacon_proxy_backend_connect_duration_seconds_count{${liveB}}`, value: 2 },
    { desc: '+Inf bucket holds every observation', sample: `beacon_proxy_backend_connect_duration_seconds_bucket{${liveB},le="+Inf"}`, value: 2 },
    { desc: 'UDP datagram with no backend counted by reason', sample: 'beacon_proxy_errors_total{service="demo/dns",frontend="127.0.0.1:' + udpPort + '/UDP",reason="noBackend"}', value: 1 },
    { desc: 'UDP frontends show evictions', sample: 'beacon_proxy_udp_flow_evictions_total{service="demo/dns",frontend="127.0.0.1:' + udpPort + '/UDP"}', value: 0 },
  ];
  for (const row of rows) t.equal(s.get(row.sample), row.value, row.desc);
  const buckets = CONNECT_BUCKETS_MS.map((ms) => s.get(`beacon_proxy_backend_connect_duration_seconds_bucket{${liveB},le="${ms / 1000}"}`));
  t.ok(buckets.every((v, i) => v !== undefined && (i === 0 || v >= buckets[i - 1]!)), 'buckets are cumulative');
  t.ok((s.get(`beacon_proxy_backend_connect_duration_seconds_sum{${liveB}}`) ?? -1) > 0, 'sum of connect time in seconds');
  t.match(text, /# TYPE beacon_proxy_backend_connect_duration_seconds histogram/);

  await proxy.apply([]);
  t.notMatch(await metrics.registry.metrics(), /demo\/web/, 'a removed frontend leaves no series behind');
});

t.test('process metrics come with the speaker prefix', async (t) => {
  const m = new SpeakerMetrics(() => ({ frontends: {} }));
  t.match(await m.registry.metrics(), /beacon_speaker_process_cpu_seconds_total/);
  m.syncs.inc({ result: 'ok' });
  t.match(await m.registry.metrics(), /beacon_speaker_syncs_total\{result="ok"\} 1/);
});
