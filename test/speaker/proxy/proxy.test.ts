// The Proxy's public API (speaker/proxy/index.ts) on loopback: desired state in, traffic out.
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Proxy, type Frontend } from '../../../speaker/proxy/index.js';
import { echoBackend, talk as talkOnce, type EchoBackend } from '../../helpers/tcp-peers.js';
import { until } from '../../helpers/wait.js';

/** A backend torn down with the test. */
async function backend(t: Test, name: string): Promise<EchoBackend> {
  const b = await echoBackend(name);
  t.teardown(b.close);
  return b;
}

const talk = (port: number, send = 'x'): Promise<string> => talkOnce(port, send);

/** Opens a connection and waits for the greeting; the caller closes it. */
async function hold(port: number): Promise<{ socket: Socket; greeting: string }> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  // A refused connection closes without data: resolve with '' rather than hang the file.
  const greeting = await new Promise<string>((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d.toString()));
    socket.once('close', () => resolve(''));
  });
  return { socket, greeting };
}


const tcp = (key: string, ports: number[], options: Frontend['options'] = {}, state: 'ready' | 'terminating' = 'ready'): Frontend => ({
  key, ip: '127.0.0.1', port: 0, protocol: 'TCP', options,
  backends: ports.map((port) => ({ ip: '127.0.0.1', port, state })),
});

function proxy(t: Test, logs: string[] = [], relay: 'native' | 'pipe' = 'native'): Proxy {
  const p = new Proxy({ relay, logger: { info: (o, m) => logs.push(`${m} ${JSON.stringify(o)}`), warn: (o, m) => logs.push(`WARN ${m} ${JSON.stringify(o)}`) } });
  t.teardown(() => p.close());
  return p;
}

t.test('apply scenario: open, update in place, reopen on option change, remove', async (t) => {
  const a = await backend(t, 'a'); const b = await backend(t, 'b');
  const p = proxy(t);
  const port = () => p.stats().frontends['ns/web:80/TCP']!.port;

  t.same(await p.apply([tcp('ns/web:80/TCP', [a.port])]), { failed: [] }, 'open');
  const first = port();
  t.equal(await talk(first), 'a:x');

  await p.apply([tcp('ns/web:80/TCP', [a.port, b.port])]);
  t.equal(port(), first, 'a backend change keeps the listener');
  const got = [await talk(first), await talk(first)].sort();
  t.same(got, ['a:x', 'b:x'], 'the new backend takes its share');
  // The native threads report a moment after the fact (REPORT_DELAY_MS).
  await until(() => p.stats().frontends['ns/web:80/TCP']!.backends[`127.0.0.1:${a.port}`]!.total === 2);
  t.equal(p.stats().frontends['ns/web:80/TCP']!.total, 3, 'counters survive the update');
  t.equal(p.stats().frontends['ns/web:80/TCP']!.backends[`127.0.0.1:${a.port}`]!.total, 2, 'per-backend counters too');

  await p.apply([tcp('ns/web:80/TCP', [a.port, b.port], { balance: 'leastConnections' })]);
  t.equal(p.stats().frontends['ns/web:80/TCP']!.total, 0, 'an option change reopens the frontend');
  const reopened = port();

  await p.apply([]);
  t.same(p.stats().frontends, {}, 'removed');
  t.equal(await talk(reopened), '', 'nothing listens any more');
});

t.test('failures are values: bad source ranges, address in use; the others are served', async (t) => {
  const a = await backend(t, 'a');
  const logs: string[] = [];
  const p = proxy(t, logs);
  const taken = { ...tcp('ns/taken:80/TCP', [a.port]), port: a.port };
  const result = await p.apply([tcp('ns/bad:80/TCP', [a.port], { sourceRanges: ['10.0.0.0/33'] }), taken, tcp('ns/ok:80/TCP', [a.port])]);
  t.same(result.failed.map((f) => f.key), ['ns/bad:80/TCP', 'ns/taken:80/TCP']);
  t.match(result.failed[0]!.reason, /^invalidSourceRanges: spec.loadBalancerSourceRanges\[0\]/);
  t.equal(result.failed[1]!.reason, 'listenFailed: EADDRINUSE');
  t.same(Object.keys(p.stats().frontends), ['ns/ok:80/TCP']);
  t.equal(logs.filter((l) => l.startsWith('WARN frontend not served')).length, 2, 'each failure logged');
});

t.test('least connections and ClientIP affinity through the public API', async (t) => {
  const a = await backend(t, 'a'); const b = await backend(t, 'b');
  const p = proxy(t);
  await p.apply([tcp('ns/lc:80/TCP', [a.port, b.port], { balance: 'leastConnections' }), tcp('ns/aff:80/TCP', [a.port, b.port], { affinityTimeoutMs: 60_000 })]);
  const lc = p.stats().frontends['ns/lc:80/TCP']!.port;
  const held = await hold(lc);
  const other = held.greeting === 'a:' ? 'b:x' : 'a:x';
  // A client sees its connection closed before the proxy has counted it closed (the relay
  // reports ends from its threads): wait for that count before the next pick, or both
  // backends look equally busy for a moment.
  const talkSettled = async () => {
    const got = await talk(lc);
    await until(() => p.stats().frontends['ns/lc:80/TCP']!.active === 1);
    return got;
  };
  t.same([await talkSettled(), await talkSettled(), await talkSettled()], [other, other, other], 'new connections avoid the busy backend');
  held.socket.destroy();
  const aff = p.stats().frontends['ns/aff:80/TCP']!.port;
  const firstAff = await talk(aff);
  t.same([await talk(aff), await talk(aff), await talk(aff)], [firstAff, firstAff, firstAff], 'the same client sticks to its backend');
});

t.test('active checks: no backend is healthy without evidence; down and back up', async (t) => {
  const a = await backend(t, 'a');
  const logs: string[] = [];
  const p = proxy(t, logs);
  const check = { intervalMs: 30, timeoutMs: 200, rise: 2, fall: 2 };
  await p.apply([tcp('ns/hc:80/TCP', [a.port], { healthCheck: check })]);
  const id = `127.0.0.1:${a.port}`;
  const healthy = () => p.stats().frontends['ns/hc:80/TCP']!.backends[id]!.healthy;
  t.equal(healthy(), false, 'unhealthy until the first check passes');
  t.ok(await until(healthy), 'the first passed check brings it up');
  const port = p.stats().frontends['ns/hc:80/TCP']!.port;
  t.equal(await talk(port), 'a:x');
  await a.close();
  t.ok(await until(() => !healthy()), 'failed checks take it down');
  t.equal(await talk(port), '', 'no healthy backend: refused');
  t.equal(p.stats().frontends['ns/hc:80/TCP']!.errors['noHealthyBackend'], 1);
  await a.reopen();
  t.ok(await until(healthy), 'passing checks bring it back');
  t.equal(await talk(port), 'a:x');
  t.same(logs.filter((l) => l.startsWith('backend ')).map((l) => l.split(' ')[1]), ['up', 'down', 'up'], 'every transition logged');
});

t.test('a terminating backend keeps its connection; removing a frontend drains it', async (t) => {
  const a = await backend(t, 'a'); const b = await backend(t, 'b');
  const p = proxy(t);
  await p.apply([tcp('ns/t:80/TCP', [a.port], { drainTimeoutMs: 5000 })]);
  const port = p.stats().frontends['ns/t:80/TCP']!.port;
  const held = await hold(port);
  t.equal(held.greeting, 'a:');
  await p.apply([{ ...tcp('ns/t:80/TCP', [b.port], { drainTimeoutMs: 5000 }), backends: [{ ip: '127.0.0.1', port: a.port, state: 'terminating' }, { ip: '127.0.0.1', port: b.port, state: 'ready' }] }]);
  t.equal(await talk(port), 'b:x', 'new connections go to the ready backend');
  held.socket.write('still');
  const [d] = await once(held.socket, 'data') as [Buffer];
  t.equal(d.toString(), 'still', 'the open connection to the terminating backend works');
  await p.apply([]);
  held.socket.write('draining');
  const [e] = await once(held.socket, 'data') as [Buffer];
  t.equal(e.toString(), 'draining', 'a removed frontend lets open connections finish');
  held.socket.end();
  await once(held.socket, 'close');
});

// UDP on both engines: the native relay's threads (default) and Node's dgram (relay 'pipe',
// as when the addon is not built).
for (const relay of ['native', 'pipe'] as const) {
  t.test(`UDP through the public API (${relay})`, async (t) => {
    const echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('u:'), m]), r.port, r.address));
    echo.bind(0, '127.0.0.1');
    await once(echo, 'listening');
    t.teardown(() => new Promise<void>((r) => echo.close(() => r())));
    const p = proxy(t, [], relay);
    await p.apply([{ key: 'ns/dns:53/UDP', ip: '127.0.0.1', port: 0, protocol: 'UDP', options: {}, backends: [{ ip: '127.0.0.1', port: echo.address().port, state: 'ready' }] }]);
    const c = createSocket('udp4');
    t.teardown(() => new Promise<void>((r) => c.close(() => r())));
    c.send('ping', p.stats().frontends['ns/dns:53/UDP']!.port, '127.0.0.1');
    const [m] = await once(c, 'message') as [Buffer];
    t.equal(m.toString(), 'u:ping');
    t.equal(p.stats().frontends['ns/dns:53/UDP']!.flows, 1);
    await p.close();
    t.equal(p.stats().frontends['ns/dns:53/UDP'], undefined, 'closed: the frontend is gone');
  });
}

t.test('close() leaves nothing behind and is idempotent; apply after close refuses', async (t) => {
  const a = await backend(t, 'a');
  const p = new Proxy();
  await p.apply([tcp('ns/c:80/TCP', [a.port], { healthCheck: { intervalMs: 20, timeoutMs: 100, rise: 1, fall: 1 }, drainTimeoutMs: 100 })]);
  const port = p.stats().frontends['ns/c:80/TCP']!.port;
  t.ok(await until(() => p.stats().frontends['ns/c:80/TCP']!.backends[`127.0.0.1:${a.port}`]!.healthy), 'checked healthy');
  const held = await hold(port);
  const cut = once(held.socket, 'close'); // may come before close() resolves
  await Promise.all([p.close(), p.close()]);
  await cut;
  t.pass('open connections cut at the drain deadline');
  t.equal(await talk(port), '', 'listener gone');
  t.same(await p.apply([tcp('ns/c:80/TCP', [a.port])]), { failed: [{ key: 'ns/c:80/TCP', reason: 'closed' }] });
  // If any timer or socket were left, this test file would never end and tap would fail it.
});

t.test('close(maxDrainMs) bounds every frontend drain: a shutdown fits the pod grace period', async (t) => {
  const a = await backend(t, 'a');
  const p = new Proxy();
  await p.apply([tcp('ns/g:80/TCP', [a.port], { drainTimeoutMs: 60_000 })]);
  const held = await hold(p.stats().frontends['ns/g:80/TCP']!.port);
  t.equal(held.greeting, 'a:');
  const cut = once(held.socket, 'close');
  const started = performance.now();
  await p.close(50);
  await cut;
  // The drain asked for is a minute; anything far below it shows the bound took effect.
  t.ok(performance.now() - started < 30_000, 'closed long before the frontend drain of 60 s');
});
