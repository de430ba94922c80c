// npm run bench -- proxy [figures...] [--quick] [--rounds=N] [--paths=direct,beacon,...] [--no-plain] [--no-engine]
// Issue 4's benchmark: one run, the same backends, several paths to them: direct, Beacon,
// HAProxy (tcp mode) and NGINX (stream), plus the plain Node pipe() proxy as a reference
// when Beacon's engine is built (without it, "beacon" IS the plain proxy, labelled
// impl "plain-pipe"). Every peer is a Debian package started here in the foreground with a
// generated config on 127.0.0.1 and stopped at the end.
// Figures (select any): rss, throughput, connections, keepalive, latency, udp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { ensurePeers, startIperfServer, startHttpBackend, startEchoBackend, startHaproxy, startNginxStream } from './proxy/peers.mjs';
import { startBeacon, engineAvailable } from './proxy/beacon.mjs';
import { iperf, wrk, udpLoad, holdIdle } from './proxy/load.mjs';
import { installExitHandlers, stopAll, hardNofile, treeRss, treeCpuMs, sleep } from './proxy/proc.mjs';

const ECHO_BACKEND = fileURLToPath(new URL('./proxy/echo-backend.mjs', import.meta.url));
const FIGURES = ['rss', 'throughput', 'connections', 'keepalive', 'latency', 'udp'];
const ALIASES = { newconn: 'connections', idle: 'rss' };

/** Issue 4's targets, Beacon against the named peer (rss: absolute). */
const TARGETS = {
  tcp_throughput: { vs: 'haproxy', min: 1.0 },
  new_connections: { vs: 'haproxy', min: 0.9 },
  keepalive_requests: { vs: 'haproxy', min: 1.0 },
  udp_datagrams: { vs: 'nginx', min: 1.0 },
};
const RSS_TARGET_BYTES = 2048;
/** HAProxy's default is maxconn/4 pipes; a single iperf3 stream needs 2 and wrk's 50 connections at most 100. */
const HAPROXY_MAXPIPES = 1000;

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const log = (msg) => process.stderr.write(`[proxy bench] ${msg}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function run(emit, args) {
  const quick = args.includes('--quick');
  const wanted = args.filter((a) => !a.startsWith('--')).map((a) => ALIASES[a] ?? a);
  for (const w of wanted) if (!FIGURES.includes(w)) throw new Error(`unknown figure ${w}; one of ${FIGURES.join(', ')}`);
  const figures = new Set(wanted.length > 0 ? wanted : FIGURES);
  const pathsArg = args.find((a) => a.startsWith('--paths='))?.slice('--paths='.length).split(',');
  const rounds = Math.max(1, Number(args.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? 1));
  // --no-engine: drive "beacon" as the plain proxy, as happens when dist/ has no engine.
  const engine = engineAvailable() && !args.includes('--no-engine');
  const allPaths = ['direct', 'beacon', ...(engine && !args.includes('--no-plain') ? ['plain'] : []), 'haproxy', 'nginx'];
  const paths = pathsArg ? allPaths.filter((p) => pathsArg.includes(p)) : allPaths;
  const d = quick
    ? { iperf: 2, wrk: 3, latency: 2, udp: 2, idle: 2000 }
    : { iperf: 5, wrk: 10, latency: 5, udp: 5, idle: 10_000 };
  // A proxy holds two descriptors per connection, and HAProxy reserves HAPROXY_MAXPIPES
  // splice pipes (2 each) on top: the hard limit (not raisable here) caps the idle count.
  const nofile = hardNofile();
  const idleCount = Math.min(d.idle, Math.floor((nofile - 2 * HAPROXY_MAXPIPES - 600) / 2));

  installExitHandlers();
  const versions = ensurePeers(log);
  const dir = mkdtempSync(join(tmpdir(), 'beacon-proxy-bench-'));
  const results = {}; // figure → path → value
  const put = (figure, path, value) => { (results[figure] ??= {})[path] = value; };
  try {
    const port = { iperf: await freePort(), http: await freePort(), tcpEcho: await freePort(), udpEcho: await freePort() };
    await startIperfServer(port.iperf);
    await startHttpBackend(dir, port.http);
    await startEchoBackend(ECHO_BACKEND, port.udpEcho, port.tcpEcho);

    // Each path: where its iperf, http, idle-TCP and UDP traffic goes, and the pid to weigh.
    const routes = { direct: { iperf: port.iperf, http: port.http, tcpEcho: port.tcpEcho, udpEcho: port.udpEcho } };
    const pids = {};
    const impl = {};
    const listen = async () => ({ iperf: await freePort(), http: await freePort(), tcpEcho: await freePort(), udpEcho: await freePort() });
    const tcpPairs = (r) => ['iperf', 'http', 'tcpEcho'].map((k) => ({ listen: r[k], to: port[k] }));
    for (const p of paths) {
      if (p === 'direct') continue;
      const r = await listen();
      routes[p] = r;
      if (p === 'beacon' || p === 'plain') {
        const spec = [...tcpPairs(r).map((t) => ({ listenIP: '127.0.0.1', port: t.listen, protocol: 'TCP', backends: [{ ip: '127.0.0.1', port: t.to }] })),
          { listenIP: '127.0.0.1', port: r.udpEcho, protocol: 'UDP', backends: [{ ip: '127.0.0.1', port: port.udpEcho }] }];
        const b = await startBeacon(spec, { impl: p === 'plain' || !engine ? 'plain' : 'beacon' });
        pids[p] = b.pid;
        impl[p] = b.impl;
      } else if (p === 'haproxy') {
        const h = await startHaproxy(dir, tcpPairs(r), idleCount + 100, HAPROXY_MAXPIPES);
        pids[p] = h.pid;
        delete r.udpEcho;
      } else {
        const h = await startNginxStream(dir, tcpPairs(r), [{ listen: r.udpEcho, to: port.udpEcho }], nofile);
        pids[p] = h.pid;
      }
    }
    emit('setup', impl.beacon ?? 'none', '', { impl: impl.beacon, paths, quick, rounds, load1: loadavg()[0], idleConnections: idleCount, nofile, ...versions });
    const extra = (p) => (p === 'beacon' || p === 'plain' ? { path: p, impl: impl[p] } : { path: p });

    // Idle connections first, while every proxy is fresh: what a held connection costs.
    // Opened in two halves: the whole delta over the count is what a user sees after a
    // fresh start (one-time costs included: code paged in, JIT, pools); the second half's
    // delta over its count is the marginal cost of one more held connection, with every
    // one-time cost already paid, the same way for every path.
    if (figures.has('rss')) {
      for (const p of paths) {
        if (p === 'direct') continue;
        const before = treeRss(pids[p]).bytes;
        const half = Math.floor(idleCount / 2);
        const first = await holdIdle(routes[p].tcpEcho, half, quick ? 30_000 : 60_000);
        await sleep(1500); // let allocators settle before reading RSS
        const mid = treeRss(pids[p]).bytes;
        const second = await holdIdle(routes[p].tcpEcho, idleCount - half, quick ? 30_000 : 60_000);
        await sleep(1500);
        const after = treeRss(pids[p]);
        await first.stop();
        await second.stop();
        const held = first.held + second.held;
        const perConn = held > 0 ? Math.round((after.bytes - before) / held) : NaN;
        const marginal = second.held > 0 ? Math.round((after.bytes - mid) / second.held) : NaN;
        put('rss_per_idle_connection', p, perConn);
        put('rss_per_idle_connection_marginal', p, marginal);
        emit('rss_per_idle_connection', perConn, 'bytes', {
          ...extra(p), held, failed: first.failed + second.failed, rssBeforeMB: +(before / 1e6).toFixed(1), rssAfterMB: +(after.bytes / 1e6).toFixed(1),
          processes: after.processes, load1: loadavg()[0], ...(p === 'beacon' ? { target: `<= ${RSS_TARGET_BYTES}`, met: perConn <= RSS_TARGET_BYTES } : {}),
        });
        emit('rss_per_idle_connection_marginal', marginal, 'bytes', { ...extra(p), held: second.held, rssMidMB: +(mid / 1e6).toFixed(1), rssAfterMB: +(after.bytes / 1e6).toFixed(1) });
        await sleep(1000); // closing 2 x idleCount sockets
      }
    }

    // Each figure: every path in turn, `rounds` times over (interleaved, so a noisy
    // neighbour hits all paths alike); the median of the rounds is the figure.
    const measure = async (figure, unit, forPaths, fn, digits = 0) => {
      const samples = {};
      const extras = {};
      for (let round = 0; round < rounds; round++) {
        for (const p of forPaths) {
          const { value, ...rest } = await fn(p);
          (samples[p] ??= []).push(value);
          extras[p] = { ...rest, load1: loadavg()[0] };
        }
      }
      for (const p of forPaths) {
        const value = median(samples[p]);
        put(figure, p, value);
        emit(figure, +value.toFixed(digits), unit, { ...extra(p), ...extras[p], ...(rounds > 1 ? { rounds: samples[p].map((v) => +v.toFixed(digits)) } : {}) });
      }
    };

    if (figures.has('throughput')) {
      await measure('tcp_throughput', 'Gbit/s', paths, async (p) => {
        const r = await iperf(routes[p].iperf, d.iperf);
        return { value: r.gbps, seconds: d.iperf, retransmits: r.retransmits };
      }, 2);
    }

    if (figures.has('connections')) {
      await measure('new_connections', 'conn/s', paths, async (p) => {
        // CPU per connection as well as the rate: on a shared 2-core machine the rate moves
        // with whatever else runs, the proxy's own CPU per connection much less.
        const cpu0 = p === 'direct' ? 0 : treeCpuMs(pids[p]);
        const r = await wrk(routes[p].http, d.wrk, { close: true });
        const cpuUsPerConn = p === 'direct' ? undefined : +((treeCpuMs(pids[p]) - cpu0) * 1000 / r.requests).toFixed(1);
        return { value: r.rps, seconds: d.wrk, p99ms: r.p99Ms, errors: r.errors, non2xx: r.non2xx, cpuUsPerConn };
      });
    }

    if (figures.has('keepalive')) {
      await measure('keepalive_requests', 'req/s', paths, async (p) => {
        const r = await wrk(routes[p].http, d.wrk, { close: false });
        return { value: r.rps, seconds: d.wrk, p50ms: r.p50Ms, p99ms: r.p99Ms, errors: r.errors, non2xx: r.non2xx };
      });
    }

    // Latency apart from throughput: at saturation, 2 wrk threads, the backend and the proxy
    // share 2 cores and p99 measures the scheduler (the direct path's p99 came out above the
    // proxies'). One connection, one request at a time, keep-alive: p99 is the path's own.
    if (figures.has('latency')) {
      await measure('p99_latency', 'ms', paths, async (p) => {
        const r = await wrk(routes[p].http, d.latency, { close: false, threads: 1, connections: 1 });
        return { value: r.p99Ms, p50ms: r.p50Ms, requests: r.requests, load: 'wrk keep-alive, 1 thread, 1 connection' };
      }, 3);
      const direct = results.p99_latency?.direct;
      if (direct !== undefined) {
        for (const p of paths) {
          if (p === 'direct') continue;
          const added = +(results.p99_latency[p] - direct).toFixed(3);
          put('added_p99_latency', p, added);
          emit('added_p99_latency', added, 'ms', extra(p));
        }
      }
    }

    if (figures.has('udp')) {
      await measure('udp_datagrams', 'datagrams/s', paths.filter((p) => routes[p].udpEcho !== undefined), async (p) => { // HAProxy: no UDP
        const r = await udpLoad(routes[p].udpEcho, d.udp);
        return { value: r.echoesPerSecond, seconds: d.udp, flows: r.flows, window: r.window, sentPerSecond: Math.round(r.sentPerSecond), refills: r.refills };
      });
    }

    // Ratios: Beacon (and the plain reference) over each peer, with issue 4's target where it has one.
    for (const [figure, byPath] of Object.entries(results)) {
      if (figure === 'added_p99_latency') continue;
      for (const ours of ['beacon', 'plain']) {
        if (byPath[ours] === undefined) continue;
        for (const peer of ['haproxy', 'nginx']) {
          if (byPath[peer] === undefined || byPath[peer] === 0) continue;
          const ratio = +(byPath[ours] / byPath[peer]).toFixed(2);
          const t = TARGETS[figure];
          const target = ours === 'beacon' && t?.vs === peer ? { target: `>= ${t.min}x`, met: ratio >= t.min } : {};
          emit(`${figure}_ratio`, ratio, 'x', { path: ours, impl: impl[ours], vs: peer, ...target });
        }
      }
    }
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}
