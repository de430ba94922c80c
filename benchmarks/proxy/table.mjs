#!/usr/bin/env node
// Turns the proxy benchmark's JSON lines (stdin or a file) into the Markdown tables of
// BENCHMARKS.md: one row per figure, one column per path, then Beacon's ratios and targets.
// node benchmarks/proxy/table.mjs results.jsonl
import { readFileSync } from 'node:fs';

const text = readFileSync(process.argv[2] ?? 0, 'utf8');
const rows = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const env = rows.find((r) => r.figure === 'environment');
const setup = rows.find((r) => r.figure === 'setup');
const FIGS = [
  ['tcp_throughput', 'single-stream TCP throughput (iperf3)'],
  ['new_connections', 'new connections/s (wrk, Connection: close)'],
  ['keepalive_requests', 'keep-alive requests/s (wrk)'],
  ['p99_latency', 'p99 latency, one request at a time (wrk -c1)'],
  ['added_p99_latency', 'added p99 over direct'],
  ['udp_datagrams', 'UDP echoes/s (64 B, 16 flows x 16 in flight)'],
  ['rss_per_idle_connection', `RSS per idle TCP connection (${setup?.idleConnections ?? '?'} held)`],
];
const paths = setup?.paths ?? ['direct', 'beacon', 'haproxy', 'nginx'];
const label = (p) => (p === 'beacon' ? `Beacon (${setup?.impl === 'plain-pipe' ? 'plain-pipe' : 'engine'})` : p === 'plain' ? 'plain pipe()' : p === 'haproxy' ? 'HAProxy' : p === 'nginx' ? 'NGINX' : p);
const fmt = (v, unit) => (v === undefined ? '–' : unit === 'bytes' ? `${v.toLocaleString('en-US')} B` : `${v.toLocaleString('en-US')} ${unit}`);
const out = [];
if (env) out.push(`Machine: Node ${env.node}, ${env.cpu}, ${env.cores} cores, ${env.memoryGiB} GiB; HAProxy ${setup?.haproxy}, NGINX ${setup?.nginx}, iperf3 ${setup?.iperf3}, wrk ${setup?.wrk}; load average at start ${setup?.load1}.`, '');
out.push(`| figure | ${paths.map(label).join(' | ')} |`, `|---|${paths.map(() => '---|').join('')}`);
for (const [f, name] of FIGS) {
  const byPath = Object.fromEntries(rows.filter((r) => r.figure === f).map((r) => [r.path, r]));
  if (Object.keys(byPath).length === 0) continue;
  out.push(`| ${name} | ${paths.map((p) => fmt(byPath[p]?.value, byPath[p]?.unit)).join(' | ')} |`);
}
const ratios = rows.filter((r) => r.figure.endsWith('_ratio'));
if (ratios.length > 0) {
  out.push('', '| ratio | vs HAProxy | vs NGINX | target |', '|---|---|---|---|');
  for (const ours of ['beacon', 'plain']) {
    for (const [f, name] of FIGS) {
      const h = ratios.find((r) => r.figure === `${f}_ratio` && r.path === ours && r.vs === 'haproxy');
      const n = ratios.find((r) => r.figure === `${f}_ratio` && r.path === ours && r.vs === 'nginx');
      if (!h && !n) continue;
      const t = [h, n].find((r) => r?.target);
      const rss = f === 'rss_per_idle_connection' && ours === 'beacon' ? rows.find((r) => r.figure === f && r.path === 'beacon') : undefined;
      const target = t ? `${t.target} ${t.vs === 'haproxy' ? 'HAProxy' : 'NGINX'}: ${t.met ? 'met' : '**missed**'}` : rss ? `${rss.target} B: ${rss.met ? 'met' : '**missed**'}` : '';
      out.push(`| ${label(ours)}: ${name.replace(/ \(.*\)$/, '')} | ${h ? `${h.value}x` : '–'} | ${n ? `${n.value}x` : '–'} | ${target} |`);
    }
  }
}
process.stdout.write(out.join('\n') + '\n');
