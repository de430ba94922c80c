/** /metrics, /healthz and /readyz on one small HTTP server, for every component run in a cluster. */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface HealthSource {
  /** Alive: the event loop answers. Ready: caches synced and a configuration loaded. */
  ready(): boolean;
}

export class StatusServer {
  #server: Server | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly health: HealthSource,
  ) {}

  async start(host: string, port: number): Promise<number> {
    this.#server = createServer((req, res) => {
      if (req.url === '/metrics') {
        this.registry.metrics().then(
          (body) => { res.writeHead(200, { 'content-type': this.registry.contentType }); res.end(body); },
          (err: Error) => { res.writeHead(500); res.end(err.message); },
        );
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (req.url === '/readyz') {
        const ready = this.health.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok' : 'not ready');
      } else {
        res.writeHead(404).end();
      }
    });
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
