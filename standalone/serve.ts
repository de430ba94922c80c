/**
 * Standalone mode's data plane: the speaker's Proxy (speaker/proxy) on every allocated
 * IP:port, TCP and UDP, forwarding to the file's endpoints. On loopback no address needs
 * announcing (all of 127.0.0.0/8 is local on Linux); the speaker work adds ARP/NDP for
 * real interfaces.
 */
import { createServer, type Server } from 'node:http';
import { formatIP } from '../lib/ip/address.js';
import { formatEndpoint } from '../lib/standalone/endpoint.js';
import type { PlanRow } from '../lib/standalone/plan.js';
import { Proxy, type Frontend } from '../speaker/proxy/index.js';

export interface Served {
  /** The Service (`namespace/name`). */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
}

export interface Serving {
  readonly frontends: readonly Served[];
  /** Frontends we could not serve, and why. */
  readonly skipped: readonly string[];
  close(): Promise<void>;
}

/** How long open connections may finish when standalone mode stops, unless the Service's drain-timeout says. */
const STOP_DRAIN_MS = 1000;

export async function serve(rows: readonly PlanRow[], log: (line: string) => void): Promise<Serving> {
  // Backend health changes are worth a line on the console; the rest is in the table.
  const note = (o: { frontend?: string; backend?: string; health?: string }, msg: string) => { if (o.health) log(`${o.frontend}: ${msg} ${o.backend}`); };
  const proxy = new Proxy({ logger: { info: note, warn: note } });
  const wanted: (Frontend & { service: string; endpoints: string })[] = [];
  const skipped: string[] = [];
  for (const row of rows) {
    if (row.status !== 'allocated') continue;
    for (const p of row.proxyProblems) log(`${row.key}: ${p.field}: ${p.reason} (its default applies)`);
    for (const ip of row.ips) {
      for (const p of row.ports) {
        const address = `${formatIP(ip)}:${p.port}/${p.protocol}`;
        if (p.protocol !== 'TCP' && p.protocol !== 'UDP') { skipped.push(`${row.key} ${address}: ${p.protocol} is not forwarded`); continue; }
        wanted.push({
          service: row.key, endpoints: p.endpoints.map(formatEndpoint).join(', '), key: `${row.key}:${address}`, ip: formatIP(ip), port: p.port, protocol: p.protocol,
          backends: p.endpoints.map((e) => ({ ip: formatIP(e.ip), port: e.port, state: 'ready' as const })),
          options: { ...row.proxy, drainTimeoutMs: row.proxy.drainTimeoutMs ?? STOP_DRAIN_MS },
        });
      }
    }
  }
  const { failed } = await proxy.apply(wanted);
  const reasons = new Map(failed.map((f) => [f.key, f.reason]));
  const frontends: Served[] = [];
  for (const f of wanted) {
    const reason = reasons.get(f.key);
    if (reason) { skipped.push(`${f.key}: ${reason}`); continue; }
    frontends.push({ key: f.service, ip: f.ip, port: f.port, protocol: f.protocol });
    log(`${f.service}: forwarding ${f.ip}:${f.port}/${f.protocol} to ${f.endpoints}`);
  }
  return { frontends, skipped, close: () => proxy.close() };
}

/**
 * Tiny HTTP backends for the embedded default's endpoints, so the first command of the
 * README shows traffic flowing without anything else installed.
 */
export async function startDemoBackends(rows: readonly PlanRow[]): Promise<{ close(): Promise<void> }> {
  const servers: Server[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    for (const p of row.ports) {
      if (p.protocol !== 'TCP') continue;
      for (const e of p.endpoints) {
        const id = formatEndpoint(e);
        if (seen.has(id)) continue;
        seen.add(id);
        const server = createServer((_req, res) => { res.setHeader('connection', 'close'); res.end(`hello from demo backend ${id}\n`); });
        await new Promise<void>((resolve) => {
          server.once('error', () => resolve()); // taken: someone already serves it
          server.listen(e.port, formatIP(e.ip), () => resolve());
        });
        if (server.listening) servers.push(server);
      }
    }
  }
  return { close: async () => { await Promise.all(servers.map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); }))); } };
}
