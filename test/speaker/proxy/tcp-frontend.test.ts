// The TCP frontend on loopback: real sockets, real backends, nothing outside 127.0.0.0/8.
import t, { type Test } from 'tap';
import { TcpFrontend, DEFAULT_TCP_OPTIONS, type TcpFrontendOptions } from '../../../speaker/proxy/tcp-frontend.js';
import { decode } from '../../../lib/proxy/proxy-protocol.js';
import { parseSourceRanges } from '../../../lib/proxy/source-ranges.js';
import { echoBackend, talk } from '../../helpers/tcp-peers.js';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { PipeRelay } from '../../../speaker/proxy/relay.js';
import { createRelay, NativeRelay } from '../../../speaker/proxy/native-relay.js';
import { NativeTcpFrontend } from '../../../speaker/proxy/native-frontend.js';
import type { TcpFrontendBase } from '../../../speaker/proxy/tcp-frontend-base.js';
import { until } from '../../helpers/wait.js';

const backend = echoBackend;

// Every case runs on each transport: Node sockets with the pipe relay, Node sockets handed
// to the native relay, and the native relay accepting and connecting itself.
const RELAYS = ['pipe', 'handoff', 'native'] as const;
let relayKind: (typeof RELAYS)[number] = 'pipe';
const cases: [string, (t: Test) => Promise<unknown>][] = [];
const test = (name: string, fn: (t: Test) => Promise<unknown>) => { cases.push([name, fn]); };

function nativeRelay(t: Test): NativeRelay {
  const { relay, why } = createRelay('native', 2);
  if (!(relay instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => relay.close());
  return relay;
}

function newFrontend(t: Test, opts: TcpFrontendOptions, transitions: string[] = [], now?: () => number): TcpFrontendBase {
  const onTransition = (b: string, tr: string) => { transitions.push(`${b} ${tr}`); };
  if (relayKind === 'pipe') return new TcpFrontend('127.0.0.1', 0, opts, onTransition, now, new PipeRelay());
  if (relayKind === 'handoff') return new TcpFrontend('127.0.0.1', 0, opts, onTransition, now, nativeRelay(t));
  return new NativeTcpFrontend('127.0.0.1', 0, opts, onTransition, now, nativeRelay(t));
}

async function frontend(t: Test, backends: { port: number; state?: 'ready' | 'terminating' }[], opts: Partial<TcpFrontendOptions> = {}, transitions: string[] = []) {
  const f = newFrontend(t, { ...DEFAULT_TCP_OPTIONS, connectTimeoutMs: 500, ...opts }, transitions);
  f.update(backends.map((b) => ({ ip: '127.0.0.1', port: b.port, state: b.state ?? 'ready' })));
  await f.start();
  t.teardown(() => f.close());
  return f;
}

test('ClientIP affinity holds until its timeout, then the client is balanced again', async (t) => {
  const a = await backend('a'); const b = await backend('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  let clock = 0;
  const f = newFrontend(t, { ...DEFAULT_TCP_OPTIONS, affinityTimeoutMs: 1000 }, [], () => clock);
  f.update([a, b].map((x) => ({ ip: '127.0.0.1', port: x.port, state: 'ready' as const })));
  await f.start();
  t.teardown(() => f.close());
  const first = (await talk(f.boundPort, 'x')).split(':')[0];
  const again = [];
  for (let i = 0; i < 3; i++) again.push((await talk(f.boundPort, 'x')).split(':')[0]);
  t.same(again, [first, first, first], 'the same client sticks to its backend');
  clock = 1001;
  f.expireAffinity();
  t.not((await talk(f.boundPort, 'x')).split(':')[0], first, 'after the timeout, round-robin moves it on');
});

test('round-robin across ready backends', async (t) => {
  const a = await backend('a'); const b = await backend('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const f = await frontend(t, [a, b]);
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await talk(f.boundPort, 'x')).split(':')[0]);
  t.same(got.sort(), ['a', 'a', 'b', 'b']);
  await until(() => f.snapshot().total === 4); // the native threads report a moment after (REPORT_DELAY_MS)
  t.equal(f.snapshot().total, 4);
});

test('a dead backend is ejected and the client is retried on a live one', async (t) => {
  const dead = await backend('dead'); const deadPort = dead.port; await dead.close();
  const live = await backend('live');
  t.teardown(() => live.close());
  const transitions: string[] = [];
  const f = await frontend(t, [{ port: deadPort }, live], {}, transitions);
  for (let i = 0; i < 3; i++) t.equal(await talk(f.boundPort, 'hi'), 'live:hi', `connection ${i + 1} reaches the live backend`);
  t.same(transitions, [`127.0.0.1:${deadPort} down`], 'one transition, logged once');
  t.equal(f.snapshot().backends[`127.0.0.1:${deadPort}`]?.healthy, false);
  await until(() => f.snapshot().active === 0); // native ends are reported a moment after the client sees them
  t.same(f.snapshot().errors, {}, 'no client saw an error');
});

test('no healthy backend: the connection is closed and counted', async (t) => {
  const dead = await backend('dead'); const port = dead.port; await dead.close();
  const f = await frontend(t, [{ port }], { connectAttempts: 1 });
  t.equal(await talk(f.boundPort, 'x'), '');
  t.equal(await talk(f.boundPort, 'x'), '');
  t.same(f.snapshot().errors, { connectFailed: 1, noHealthyBackend: 1 });
});

test('half-close: the client ends its side and still gets the reply', async (t) => {
  const b = await backend('b', { halfClose: true });
  t.teardown(() => b.close());
  const f = await frontend(t, [b]);
  t.equal(await talk(f.boundPort, 'question'), 'b:questionbye');
});

test('PROXY protocol v1 and v2 reach the backend first, with the client address', async (t) => {
  for (const version of ['v1', 'v2'] as const) {
    let header: ReturnType<typeof decode> | undefined;
    let rest = '';
    const b = await backend('b', { onData: (d, s) => { if (!header) { header = decode(d); if (header.kind === 'header') rest += d.subarray(header.length).toString(); } else rest += d.toString(); if (rest === 'data') s.end('ok'); } });
    const f = newFrontend(t, { ...DEFAULT_TCP_OPTIONS, proxyProtocol: version });
    f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
    await f.start();
    t.equal(await talk(f.boundPort, 'data', false), 'ok', `${version}: payload after the header`);
    t.equal(header?.kind, 'header', `${version}: header decoded`);
    if (header?.kind === 'header') {
      t.equal(header.connection?.sourceAddress, '127.0.0.1', `${version}: client address`);
      t.equal(header.connection?.destinationPort, f.boundPort, `${version}: the frontend port`);
    }
    await f.close();
    await b.close();
  }
});

test('a terminating backend keeps its connection and gets no new one', async (t) => {
  const a = await backend('a'); const b = await backend('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const f = await frontend(t, [a, { port: b.port, state: 'terminating' }]);
  const s = connect({ host: '127.0.0.1', port: f.boundPort });
  let got = '';
  s.on('data', (d) => { got += d.toString(); });
  await new Promise((r) => setTimeout(r, 100));
  t.equal(got, 'a:', 'first connection on a');
  f.update([{ ip: '127.0.0.1', port: a.port, state: 'terminating' }, { ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  t.equal(await talk(f.boundPort, 'n'), 'b:n', 'new connections go to b');
  s.write('still');
  await new Promise((r) => setTimeout(r, 100));
  t.equal(got, 'a:still', 'the open connection to the terminating backend still works');
  s.end();
  await once(s, 'close');
});

test('idle connections are closed after the idle timeout', async (t) => {
  const b = await backend('b');
  t.teardown(() => b.close());
  const f = await frontend(t, [b], { idleTimeoutMs: 150 });
  t.equal(await talk(f.boundPort, '', false), 'b:', 'closed by the proxy while the client waited');
  await until(() => f.snapshot().active === 0); // native ends are reported a moment after the client sees them
  t.same(f.snapshot().errors, { idleTimeout: 1 });
});

test('resets and abrupt clients end one connection, never the process', async (t) => {
  const rude = await backend('r', { onData: (_d, s) => s.resetAndDestroy() });
  const b = await backend('b');
  t.teardown(async () => { await rude.close(); await b.close(); });
  const f = await frontend(t, [rude]);
  t.equal(await talk(f.boundPort, 'x', false), '', 'backend reset: the client connection is closed');
  f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  for (let i = 0; i < 20; i++) {
    const s = connect({ host: '127.0.0.1', port: f.boundPort });
    s.on('error', () => undefined);
    s.on('connect', () => { s.write('x'.repeat(1000)); s.resetAndDestroy(); });
  }
  await new Promise((r) => setTimeout(r, 200));
  t.equal(await talk(f.boundPort, 'still alive'), 'b:still alive');
  await until(() => f.snapshot().active === 0);
  t.equal(f.snapshot().active, 0, 'no connection left behind');
});

test('close drains open connections up to the deadline, then cuts them', async (t) => {
  const b = await backend('b');
  t.teardown(() => b.close());
  const f = newFrontend(t, DEFAULT_TCP_OPTIONS);
  f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  await f.start();
  const s = connect({ host: '127.0.0.1', port: f.boundPort });
  s.on('error', () => undefined);
  await once(s, 'data');
  const cut = once(s, 'close'); // may come before close() resolves
  const started = Date.now();
  await f.close(200);
  t.ok(Date.now() - started >= 150, 'waited for the drain deadline');
  await cut;
  t.pass('the remaining connection was cut');
  await f.close(); // idempotent
});


test('source ranges and the new-connection rate are enforced and counted', async (t) => {
  const b = await backend('b');
  t.teardown(() => b.close());
  const ranges = parseSourceRanges(['10.0.0.0/8']);
  if (!ranges.ok) return t.fail('ranges');
  const denied = await frontend(t, [b], { allowClient: ranges.allows });
  t.equal(await talk(denied.boundPort, 'x'), '', 'a client outside the ranges is refused');
  t.same(denied.snapshot().errors, { sourceDenied: 1 });
  t.equal(denied.snapshot().total, 0, 'and never reaches a backend');
  const limited = await frontend(t, [b], { newConnectionsPerSecond: 0.001, newConnectionsBurst: 2 });
  const got = [await talk(limited.boundPort, 'x'), await talk(limited.boundPort, 'x'), await talk(limited.boundPort, 'x')];
  t.same(got, ['b:x', 'b:x', ''], 'the burst passes, the next is refused');
  t.same(limited.snapshot().errors, { rateLimited: 1 });
});

test('max connections: the one over the limit is closed and counted', async (t) => {
  const b = await backend('b');
  t.teardown(() => b.close());
  const f = await frontend(t, [b], { maxConnections: 2 });
  const held: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ host: '127.0.0.1', port: f.boundPort });
    s.on('error', () => undefined);
    await once(s, 'data');
    held.push(s);
  }
  t.equal(await talk(f.boundPort, 'x', false), '', 'the third connection is dropped');
  await until(() => f.snapshot().active === 2 && f.snapshot().errors['maxConnections'] === 1); // native reports come a moment later
  t.same(f.snapshot().errors, { maxConnections: 1 });
  t.equal(f.snapshot().active, 2);
  for (const s of held) s.destroy();
  await until(() => f.snapshot().active === 0);
  t.equal(await talk(f.boundPort, 'y'), 'b:y', 'room again once they close');
});

test('backpressure: a slow reader holds the backend back instead of filling memory', async (t) => {
  const total = 64 * 1024 * 1024;
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const b = await backend('b', {
    onData: (_d, s) => {
      // Write as fast as the proxy lets us: stop when write() says the buffers are full.
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    },
  });
  t.teardown(() => b.close());
  const f = await frontend(t, [b]);
  const s = connect({ host: '127.0.0.1', port: f.boundPort });
  s.pause();
  s.write('go');
  await new Promise((r) => setTimeout(r, 500));
  const whilePaused = written;
  // Kernel socket buffers on loopback autotune to a few MB per socket (tcp_rmem/tcp_wmem),
  // two connections hold at most ~20 MB; without backpressure all 64 MB would be written.
  t.ok(whilePaused < 40 * 1024 * 1024, `backend held back while the client did not read (${whilePaused} bytes)`);
  let got = 0;
  s.on('data', (d: Buffer) => { got += d.length; });
  s.resume();
  await once(s, 'end');
  s.destroy();
  t.equal(got, total, 'every byte arrives once the client reads');
});

test('a removed backend: its connections drain up to the deadline, then are cut', async (t) => {
  const a = await backend('a'); const b = await backend('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const f = await frontend(t, [a], { backendDrainMs: 150 });
  const s = connect({ host: '127.0.0.1', port: f.boundPort });
  s.on('error', () => undefined);
  await once(s, 'data');
  const back = connect({ host: '127.0.0.1', port: f.boundPort });
  back.on('error', () => undefined);
  const backClosed = once(back, 'close');
  await once(back, 'data');
  f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  s.write('still');
  const [d] = await once(s, 'data') as [Buffer];
  t.equal(d.toString(), 'still', 'works during the drain');
  await once(s, 'close');
  // A native relay reports ends from its thread, a moment after the client saw the close.
  await until(() => f.snapshot().errors['backendRemoved'] === 2);
  t.equal(f.snapshot().errors['backendRemoved'], 2, 'both connections to the removed backend were cut at the deadline');
  await backClosed;
  // A backend removed and re-added within the deadline keeps its connections.
  const c = connect({ host: '127.0.0.1', port: f.boundPort });
  c.on('error', () => undefined);
  await once(c, 'data');
  f.update([{ ip: '127.0.0.1', port: a.port, state: 'ready' }]);
  f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  await new Promise((r) => setTimeout(r, 300));
  c.write('kept');
  const [e] = await once(c, 'data') as [Buffer];
  t.equal(e.toString(), 'kept', 'a backend back before the deadline is not cut');
  c.destroy();
});

for (const kind of RELAYS) {
  t.test(`${kind} relay`, async (t) => {
    for (const [name, fn] of cases) {
      await t.test(name, async (t) => { relayKind = kind; await fn(t); });
    }
  });
}
