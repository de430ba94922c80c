// npm run bench -- controller [count]
// Against a real kube-apiserver (test/k8s): 2,000 LoadBalancer Services created at
// 100/s, then 2,000 more as fast as the API server takes them. Per Service: creation
// (the create call) to status seen by a watch, p50/p99; time until all are assigned;
// controller RSS; a restart (time to ready, IPs changed). The same run measures a plain
// status patch seen by the same watch, and reports the controller's overhead as the
// difference, so the API server's own latency on this machine is not counted against us.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:https';
import { Watch, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startCluster, startController, createPool, lbService, until } from '../dist/test/controller/harness.js';

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const rssOf = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Creates Services over one keep-alive pool. The typed client opens a TLS connection per
 * call; on 2 cores that load generator alone took a third of a core at 100 creates/s,
 * CPU the API server and the controller under test then lacked.
 */
function creator(c) {
  const agent = new Agent({ keepAlive: true, maxSockets: 32, rejectUnauthorized: false });
  const create = (ns, body) => new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(`${c.plane.server}/api/v1/namespaces/${ns}/services`, {
      method: 'POST', agent,
      headers: { authorization: `Bearer ${c.plane.adminToken}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`create ${ns}/${body.metadata.name}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
  return { create, close: () => agent.destroy() };
}

export async function run(emit, args) {
  const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 2000);
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-'));
  const c = await startCluster(dir);
  let ctl;
  const stopWatch = [];
  try {
    await createPool(c, 'bench', ['10.100.0.0/18']); // 16,384 addresses
    for (const ns of ['bench-slow', 'bench-a', 'bench-b', 'baseline']) await c.core.createNamespace({ body: { metadata: { name: ns } } });
    ctl = startController(c, 'bench-1', ['--log-level=warn', '--lease-duration=15', '--renew-deadline=10', '--retry-period=2']);

    // One watch on all Services: when was an ingress first seen for each?
    const created = new Map();
    const seen = new Map();
    const watch = new Watch(c.kc);
    const req = await watch.watch('/api/v1/services', { allowWatchBookmarks: true }, (_type, obj) => {
      const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
      if (!seen.has(key) && (obj.status?.loadBalancer?.ingress?.length ?? 0) > 0) seen.set(key, performance.now());
    }, () => undefined);
    stopWatch.push(() => req.abort());

    // Baseline: a status patch by hand on a Service of another class, seen by the same watch.
    const baseline = [];
    for (let i = 0; i < 200; i++) {
      const name = `base-${i}`;
      await c.core.createNamespacedService({ namespace: 'baseline', body: lbService(name, { ns: 'baseline', cls: 'example.com/none' }) });
      const t0 = performance.now();
      created.set(`baseline/${name}`, t0);
      await c.core.patchNamespacedServiceStatus({ namespace: 'baseline', name, body: { status: { loadBalancer: { ingress: [{ ip: `192.0.2.${i % 250}` }] } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      await until('baseline seen', async () => seen.get(`baseline/${name}`), 5000);
      baseline.push(seen.get(`baseline/${name}`) - t0);
    }
    emit('status_patch_roundtrip_p50', +pct(baseline, 50).toFixed(1), 'ms', { samples: baseline.length });
    emit('status_patch_roundtrip_p99', +pct(baseline, 99).toFixed(1), 'ms');

    // Wait until the controller leads before timing it.
    await until('controller took the lease', async () => {
      await c.core.createNamespacedService({ namespace: 'bench-a', body: lbService('warmup', { ns: 'bench-a' }) }).catch(() => undefined);
      return seen.has('bench-a/warmup');
    }, 30_000);

    const client = creator(c);
    stopWatch.push(() => client.close());
    // rate: Services per second, or 0 for as fast as the API server takes them.
    const phase = async (ns, rate, n = count) => {
      const paced = rate > 0;
      const keys = [];
      const start = performance.now();
      const inflight = new Set();
      for (let i = 0; i < n; i++) {
        const name = `svc-${i}`;
        const key = `${ns}/${name}`;
        keys.push(key);
        if (paced) await sleep(Math.max(0, start + (i * 1000) / rate - performance.now()));
        const t0 = performance.now();
        created.set(key, t0);
        const p = client.create(ns, lbService(name, { ns })).finally(() => inflight.delete(p));
        inflight.add(p);
        if (inflight.size >= (paced ? 64 : 16)) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      await until(`${ns} all assigned`, async () => keys.every((k) => seen.has(k)), 120_000);
      const lat = keys.map((k) => seen.get(k) - created.get(k));
      return { lat, total: Math.max(...keys.map((k) => seen.get(k))) - start };
    };

    // Below saturation first: what the controller adds when the API server has room.
    const slow = await phase('bench-slow', 25, 500);
    emit('paced_25ps_p50', +pct(slow.lat, 50).toFixed(1), 'ms', { services: 500 });
    emit('paced_25ps_p99', +pct(slow.lat, 99).toFixed(1), 'ms');
    emit('paced_25ps_overhead_p99', +(pct(slow.lat, 99) - pct(baseline, 99)).toFixed(1), 'ms', { note: 'p99 minus the plain status patch p99' });

    const a = await phase('bench-a', 100);
    emit('paced_100ps_p50', +pct(a.lat, 50).toFixed(1), 'ms', { services: count });
    emit('paced_100ps_p99', +pct(a.lat, 99).toFixed(1), 'ms', { target: 100 });
    emit('paced_overhead_p99', +(pct(a.lat, 99) - pct(baseline, 99)).toFixed(1), 'ms', { target: 20, note: 'p99 minus the plain status patch p99' });
    emit('paced_all_assigned', Math.round(a.total), 'ms');
    emit('controller_rss', +(rssOf(ctl.proc.pid) / 2 ** 20).toFixed(1), 'MB', { services: count + 1, target: 150 });

    const b = await phase('bench-b', 0);
    emit('burst_p50', +pct(b.lat, 50).toFixed(1), 'ms', { services: count });
    emit('burst_p99', +pct(b.lat, 99).toFixed(1), 'ms');
    emit('burst_all_assigned', Math.round(b.total), 'ms', { servicesPerSecond: Math.round(count / (b.total / 1000)) });
    emit('controller_rss_after_burst', +(rssOf(ctl.proc.pid) / 2 ** 20).toFixed(1), 'MB', { services: 2 * count + 1 });

    // Restart: SIGTERM releases the Lease; the next controller must reach ready and move nothing.
    const snapshot = async () => Object.fromEntries((await c.core.listServiceForAllNamespaces()).items
      .filter((s) => s.spec?.loadBalancerClass === 'beacon-lb.io/lb')
      .map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',')]));
    const before = await snapshot();
    await ctl.stop('SIGTERM');
    const t0 = performance.now();
    ctl = startController(c, 'bench-2', ['--log-level=info']);
    const port = await until('status port', async () => /"listen":"127\.0\.0\.1:(\d+)"/.exec(ctl.logs())?.[1], 30_000);
    await until('ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000);
    emit('restart_to_ready', Math.round(performance.now() - t0), 'ms', { services: Object.keys(before).length });
    await until('leading and queue drained', async () => {
      const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return /^beacon_controller_leader 1$/m.test(m) && /^beacon_controller_queue_depth 0$/m.test(m) && /took the lease/.test(ctl.logs());
    }, 60_000);
    emit('restart_to_converged', Math.round(performance.now() - t0), 'ms');
    await sleep(1000);
    const after = await snapshot();
    const changed = Object.keys(before).filter((k) => before[k] !== after[k]).length;
    emit('restart_ips_changed', changed, 'count', { target: 0 });
  } finally {
    for (const s of stopWatch) s();
    await ctl?.stop('SIGTERM');
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
