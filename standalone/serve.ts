/**
 * Standalone mode's data plane: a TCP frontend on every allocated IP:port, forwarding to
 * the file's endpoints. On loopback no address needs announcing (all of 127.0.0.0/8 is
 * local on Linux); the speaker work adds ARP/NDP for real interfaces.
 */
import { createServer, type Server } from 'node:http';
import { formatIP } from '../lib/ip/address.js';
import { formatEndpoint } from '../lib/standalone/endpoint.js';
import type { PlanRow } from '../lib/standalone/plan.js';
import { DEFAULT_TCP_OPTIONS, TcpFrontend } from '../speaker/proxy/tcp-frontend.js';

export interface Serving {
  readonly frontends: readonly { readonly key: string; readonly address: string; readonly frontend: TcpFrontend }[];
  /** Services we could not serve, and why. */
  readonly skipped: readonly string[];
  close(): Promise<void>;
}

export async function serve(rows: readonly PlanRow[], log: (line: string) => void): Promise<Serving> {
  const frontends: { key: string; address: string; frontend: TcpFrontend }[] = [];
  const skipped: string[] = [];
  for (const row of rows) {
    if (row.status !== 'allocated') continue;
    for (const ip of row.ips) {
      for (const p of row.ports) {
        const address = `${formatIP(ip)}:${p.port}/${p.protocol}`;
        if (p.protocol !== 'TCP') { skipped.push(`${row.key} ${address}: only TCP is forwarded so far`); continue; }
        const f = new TcpFrontend(formatIP(ip), p.port, DEFAULT_TCP_OPTIONS, (backend, t) => log(`${row.key}: backend ${backend} ${t}`));
        f.update(p.endpoints.map((e) => ({ ip: formatIP(e.ip), port: e.port, state: 'ready' as const })));
        try {
          await f.start();
          frontends.push({ key: row.key, address, frontend: f });
          log(`${row.key}: forwarding ${address} to ${p.endpoints.map(formatEndpoint).join(', ')}`);
        } catch (err) {
          skipped.push(`${row.key} ${address}: ${(err as Error).message}`);
        }
      }
    }
  }
  return {
    frontends, skipped,
    close: async () => { await Promise.all(frontends.map((f) => f.frontend.close(1000))); },
  };
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
