/**
 * The speaker's Prometheus metrics, on a registry of its own (no globals). The proxy's
 * figures are read from Proxy.stats() at scrape time rather than pushed per connection:
 * the per-connection path stays free of metric calls (it is the hot path the benchmark
 * measures), and a removed frontend's series disappear with it. Names are stable and
 * listed in README.md.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CONNECT_BUCKETS_MS } from '../lib/balancer/backend-pool.js';
import type { ProxyStats } from './proxy/index.js';

type Labels = Record<string, string>;
interface Sample { readonly labels: Labels; readonly value: number; readonly metricName?: string }

/** A metric whose samples are computed at scrape time (prom-client's Registry calls get()). */
class ScrapedMetric {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'gauge' | 'counter' | 'histogram',
    private readonly samples: () => Sample[],
  ) {}

  get(): { name: string; help: string; type: string; values: Sample[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator };
  }

  reset(): void { /* nothing kept between scrapes */ }
}

/** Bucket bounds in seconds, as Prometheus names them. */
const CONNECT_BUCKETS_S = CONNECT_BUCKETS_MS.map((ms) => ms / 1000);

export class SpeakerMetrics {
  readonly registry = new Registry();
  readonly frontendsFailed = new Gauge({ name: 'beacon_speaker_frontends_failed', help: 'Service ports this node should serve and cannot (listen failed, invalid source ranges)', registers: [this.registry] });
  readonly servicesWithProblems = new Gauge({ name: 'beacon_speaker_services_with_problems', help: 'Services served with a problem told in an Event (misread annotation, SCTP port)', registers: [this.registry] });
  readonly syncs = new Counter({ name: 'beacon_speaker_syncs_total', help: 'Desired data plane computed and applied, by result', labelNames: ['result'], registers: [this.registry] });
  readonly apiErrors = new Counter({ name: 'beacon_speaker_api_errors_total', help: 'Failed API server calls by operation', labelNames: ['operation'], registers: [this.registry] });

  constructor(stats: () => ProxyStats, defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'beacon_speaker_' });
    for (const m of proxyMetrics(stats)) this.registry.registerMetric(m as never);
  }
}

/**
 * The proxy's metrics over `stats`. A scrape asks every metric in the same turn of the
 * event loop (prom-client's Registry.metrics()), so the counters are copied once per
 * scrape, not once per metric.
 */
export function proxyMetrics(read: () => ProxyStats): ScrapedMetric[] {
  let cached: ProxyStats | undefined;
  const stats = (): ProxyStats => {
    if (!cached) {
      cached = read();
      queueMicrotask(() => { cached = undefined; });
    }
    return cached;
  };
  const frontends = (f: (labels: Labels, s: ProxyStats['frontends'][string]) => Sample[]) => () =>
    Object.values(stats().frontends).flatMap((s) => f({ service: s.service, frontend: `${s.ip.includes(':') ? `[${s.ip}]` : s.ip}:${s.port}/${s.protocol}` }, s));
  const backends = (f: (labels: Labels, b: ProxyStats['frontends'][string]['backends'][string]) => Sample[]) =>
    frontends((labels, s) => Object.entries(s.backends).flatMap(([backend, b]) => f({ ...labels, backend }, b)));
  const errors = (labels: Labels, byReason: Record<string, number>) => Object.entries(byReason).map(([reason, value]) => ({ labels: { ...labels, reason }, value }));
  return [
    new ScrapedMetric('beacon_proxy_connections_active', 'Open TCP connections or live UDP flows per frontend', 'gauge', frontends((labels, s) => [{ labels, value: s.active }])),
    new ScrapedMetric('beacon_proxy_connections_total', 'TCP connections accepted or UDP flows started per frontend', 'counter', frontends((labels, s) => [{ labels, value: s.total }])),
    new ScrapedMetric('beacon_proxy_bytes_total', 'Bytes relayed per frontend; direction in: client to backend', 'counter',
      frontends((labels, s) => [{ labels: { ...labels, direction: 'in' }, value: s.bytesIn }, { labels: { ...labels, direction: 'out' }, value: s.bytesOut }])),
    new ScrapedMetric('beacon_proxy_errors_total', 'Refused or failed connections and flows per frontend, by reason', 'counter', frontends((labels, s) => errors(labels, s.errors))),
    new ScrapedMetric('beacon_proxy_udp_flow_evictions_total', 'UDP flows evicted because the flow table was full', 'counter',
      frontends((labels, s) => (s.evictions === undefined ? [] : [{ labels, value: s.evictions }]))),
    new ScrapedMetric('beacon_proxy_backend_connections_active', 'Open connections or live flows per backend', 'gauge', backends((labels, b) => [{ labels, value: b.active }])),
    new ScrapedMetric('beacon_proxy_backend_connections_total', 'Connections or flows per backend', 'counter', backends((labels, b) => [{ labels, value: b.total }])),
    new ScrapedMetric('beacon_proxy_backend_bytes_total', 'Bytes relayed per backend; direction in: client to backend', 'counter',
      backends((labels, b) => [{ labels: { ...labels, direction: 'in' }, value: b.bytesIn }, { labels: { ...labels, direction: 'out' }, value: b.bytesOut }])),
    new ScrapedMetric('beacon_proxy_backend_errors_total', 'Failures per backend, by reason', 'counter', backends((labels, b) => errors(labels, b.errors))),
    new ScrapedMetric('beacon_proxy_backend_healthy', '1 while the backend may take new connections by its health (checks and passive ejection)', 'gauge', backends((labels, b) => [{ labels, value: b.healthy ? 1 : 0 }])),
    new ScrapedMetric('beacon_proxy_backend_ready', '1 for a ready endpoint, 0 for one that only keeps its connections (terminating, not ready)', 'gauge', backends((labels, b) => [{ labels, value: b.state === 'ready' ? 1 : 0 }])),
    new ScrapedMetric('beacon_proxy_backend_connect_duration_seconds', 'Time to connect to the backend', 'histogram', backends((labels, b) => {
      let cumulative = 0;
      const out: Sample[] = CONNECT_BUCKETS_S.map((le, i) => {
        cumulative += b.connectBuckets[i] ?? 0;
        return { metricName: 'beacon_proxy_backend_connect_duration_seconds_bucket', labels: { ...labels, le: String(le) }, value: cumulative };
      });
      out.push({ metricName: 'beacon_proxy_backend_connect_duration_seconds_bucket', labels: { ...labels, le: '+Inf' }, value: b.connectCount });
      out.push({ metricName: 'beacon_proxy_backend_connect_duration_seconds_sum', labels, value: b.connectMsSum / 1000 });
      out.push({ metricName: 'beacon_proxy_backend_connect_duration_seconds_count', labels, value: b.connectCount });
      return out;
    })),
  ];
}
