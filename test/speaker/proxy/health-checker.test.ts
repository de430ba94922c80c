// Active checks against loopback servers: TCP connect and HTTP GET.
import t, { type Test } from 'tap';
import { createServer as createHttp } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { HealthChecker } from '../../../speaker/proxy/health-checker.js';

/** Listens on loopback; the teardown also cuts server-side sockets the fixture never read to the end. */
async function listen(t: Test, server: Server): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => undefined); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }));
  return (server.address() as { port: number }).port;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Runs a checker until every target has `n` results; returns them by id. */
async function results(targets: { id: string; port: number }[], opts: { httpPath?: string; port?: number }, n = 2): Promise<Record<string, boolean[]>> {
  const got: Record<string, boolean[]> = {};
  let resolve!: () => void;
  const done = new Promise<void>((r) => { resolve = r; });
  const checker = new HealthChecker({ intervalMs: 20, timeoutMs: 500, ...opts }, (id, pass) => {
    (got[id] ??= []).push(pass);
    if (targets.every((x) => (got[x.id]?.length ?? 0) >= n)) resolve();
  });
  checker.set(targets.map((x) => ({ id: x.id, ip: '127.0.0.1', port: x.port })));
  await done;
  checker.close();
  for (const id of Object.keys(got)) got[id] = got[id]!.slice(0, n);
  return got;
}

t.test('TCP connect checks', async (t) => {
  const up = await listen(t, createServer((s) => s.destroy()));
  const down = await closedPort();
  t.same(await results([{ id: 'up', port: up }, { id: 'down', port: down }], {}), { up: [true, true], down: [false, false] });
});

t.test('HTTP checks: 2xx and 3xx pass, others fail', async (t) => {
  const http = createHttp((req, res) => {
    const status = Number(req.url?.slice(1)) || 200;
    res.writeHead(status, status === 302 ? { location: '/' } : {});
    res.end();
  });
  const port = await listen(t, http as unknown as Server);
  const notHttp = await listen(t, createServer((s) => s.end('SSH-2.0-nope\r\n')));
  const silentClose = await listen(t, createServer((s) => s.end()));
  const rows: { desc: string; path: string; port: number; pass: boolean }[] = [
    { desc: '200', path: '/200', port, pass: true },
    { desc: '302', path: '/302', port, pass: true },
    { desc: '404', path: '/404', port, pass: false },
    { desc: '503', path: '/503', port, pass: false },
    { desc: 'not HTTP at all', path: '/', port: notHttp, pass: false },
    { desc: 'closed without a word', path: '/', port: silentClose, pass: false },
  ];
  for (const row of rows) {
    const got = await results([{ id: 'x', port: row.port }], { httpPath: row.path }, 1);
    t.same(got['x'], [row.pass], row.desc);
  }
});

t.test('a separate health port, target changes, close stops everything', async (t) => {
  const health = await listen(t, createServer((s) => s.destroy()));
  const down = await closedPort();
  t.same(await results([{ id: 'b', port: down }], { port: health }, 1), { b: [true] }, 'the health port is probed, not the backend port');
  const seen: string[] = [];
  const checker = new HealthChecker({ intervalMs: 10, timeoutMs: 500 }, (id) => seen.push(id));
  checker.set([{ id: 'a', ip: '127.0.0.1', port: health }, { id: 'b', ip: '127.0.0.1', port: health }]);
  await new Promise((r) => setTimeout(r, 100));
  checker.set([{ id: 'b', ip: '127.0.0.1', port: health }]);
  await new Promise((r) => setTimeout(r, 50));
  const count = seen.length;
  seen.length = 0;
  await new Promise((r) => setTimeout(r, 100));
  t.ok(count > 2, 'checks ran');
  t.notOk(seen.includes('a'), 'a removed target is no longer checked');
  t.ok(seen.includes('b'), 'the remaining one still is');
  checker.close();
  seen.length = 0;
  await new Promise((r) => setTimeout(r, 100));
  t.same(seen, [], 'nothing after close');
  checker.set([{ id: 'c', ip: '127.0.0.1', port: health }]);
  t.same(seen, [], 'set after close does nothing');
});
