// The UDP frontend on loopback: real datagrams, nothing outside 127.0.0.0/8. Every case
// runs on each engine: Node's dgram in JavaScript, and the native relay's threads.
import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { UdpFrontend, DEFAULT_UDP_OPTIONS, type UdpFrontendOptions } from '../../../speaker/proxy/udp-frontend.js';
import { NativeUdpFrontend } from '../../../speaker/proxy/native-udp-frontend.js';
import { createRelay, NativeRelay } from '../../../speaker/proxy/native-relay.js';
import { until } from '../../helpers/wait.js';

const ENGINES = ['dgram', 'native'] as const;
type Engine = (typeof ENGINES)[number];

/** `threads`: the native relay's; its frontend has a socket and a share of maxFlows per thread. */
function make(t: Test, engine: Engine, opts: UdpFrontendOptions, onTransition?: (b: string, tr: 'up' | 'down') => void, port = 0, threads = 2): UdpFrontend | NativeUdpFrontend {
  if (engine === 'dgram') return new UdpFrontend('127.0.0.1', port, opts, onTransition);
  const { relay, why } = createRelay('native', threads);
  if (!(relay instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => relay.close());
  return new NativeUdpFrontend('127.0.0.1', port, opts, onTransition, undefined, relay);
}

/** Polls `cond` every 20 ms for up to 3 s (the native engine reports ends from its thread). */

/** A UDP backend that answers `name:payload` (or the bare payload when `plain`). */
async function backend(t: Test, name: string, plain = false): Promise<{ port: number; socket: Socket }> {
  const socket = createSocket('udp4');
  socket.on('message', (m, r) => socket.send(plain ? m : Buffer.concat([Buffer.from(`${name}:`), m]), r.port, r.address));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.teardown(() => new Promise<void>((r) => socket.close(() => r())));
  return { port: socket.address().port, socket };
}

/** A dead port: bound then closed, so the kernel answers ICMP port unreachable. */
async function deadPort(): Promise<number> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function frontend(t: Test, engine: Engine, ports: number[], opts: Partial<UdpFrontendOptions> = {}, threads = 2) {
  const f = make(t, engine, { ...DEFAULT_UDP_OPTIONS, ...opts }, undefined, 0, threads);
  f.update(ports.map((port) => ({ ip: '127.0.0.1', port, state: 'ready' as const })));
  await f.start();
  t.teardown(() => f.close());
  return f;
}

/** A client socket; `ask` sends one datagram and resolves with the reply (or '' after 1 s). */
async function client(t: Test) {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return {
    ask: (port: number, payload: string | Buffer): Promise<Buffer> => new Promise((resolve) => {
      const timer = setTimeout(() => { s.off('message', on); resolve(Buffer.alloc(0)); }, 1000);
      const on = (m: Buffer) => { clearTimeout(timer); resolve(m); };
      s.once('message', on);
      s.send(payload, port, '127.0.0.1');
    }),
  };
}

for (const engine of ENGINES) {
  t.test(`${engine}: round trip, per-flow affinity, round-robin between flows`, async (t) => {
    const a = await backend(t, 'a'); const b = await backend(t, 'b');
    const f = await frontend(t, engine, [a.port, b.port]);
    const c1 = await client(t); const c2 = await client(t);
    const first = (await c1.ask(f.boundPort, 'x')).toString();
    t.match(first, /^[ab]:x$/, 'the reply comes back from the frontend address');
    for (let i = 0; i < 3; i++) t.equal((await c1.ask(f.boundPort, 'x')).toString(), first, `datagram ${i + 2} of the flow goes to the same backend`);
    const other = (await c2.ask(f.boundPort, 'y')).toString();
    t.equal(other, first.startsWith('a') ? 'b:y' : 'a:y', 'a second client is a new flow on the next backend');
    const s = f.snapshot();
    t.equal(s.flows, 2);
    t.equal(s.total, 2);
    t.equal(s.bytesIn, 5);
    t.equal(s.bytesOut, 4 * 3 + 3);
  });

  t.test(`${engine}: datagrams up to the UDP maximum pass whole`, async (t) => {
    const e = await backend(t, 'e', true);
    const f = await frontend(t, engine, [e.port]);
    const c = await client(t);
    const big = Buffer.alloc(65_000, 7);
    const got = await c.ask(f.boundPort, big);
    t.equal(got.length, big.length);
    t.ok(got.equals(big), 'same bytes');
  });

  t.test(`${engine}: the flow table is bounded: evictions counted, idle flows expire`, async (t) => {
    const a = await backend(t, 'a');
    // One thread: the whole table is one share, so LRU order is exact across all clients
    // (with several, per thread share: native-udp-threads.test.ts).
    const f = await frontend(t, engine, [a.port], { maxFlows: 2, flowIdleTimeoutMs: 200 }, 1);
    const clients = [await client(t), await client(t), await client(t)];
    for (const c of clients) t.equal((await c.ask(f.boundPort, 'p')).toString(), 'a:p');
    t.equal(f.snapshot().flows, 2, 'never more than maxFlows');
    t.equal(f.snapshot().evictions, 1, 'the oldest flow was evicted');
    t.equal((await clients[0]!.ask(f.boundPort, 'again')).toString(), 'a:again', 'an evicted client just starts a new flow');
    t.equal(f.snapshot().total, 4);
    await until(() => f.snapshot().flows === 0);
    t.equal(f.snapshot().flows, 0, 'idle flows are swept');
  });

  t.test(`${engine}: a dead backend ends its own flow only and is ejected`, async (t) => {
    const a = await backend(t, 'a');
    const dead = await deadPort();
    const transitions: string[] = [];
    const f = make(t, engine, DEFAULT_UDP_OPTIONS, (b, tr) => transitions.push(`${b} ${tr}`));
    f.update([{ ip: '127.0.0.1', port: a.port, state: 'ready' }, { ip: '127.0.0.1', port: dead, state: 'ready' }]);
    await f.start();
    t.teardown(() => f.close());
    const clients = [await client(t), await client(t), await client(t)];
    const replies = [];
    for (const c of clients) replies.push((await c.ask(f.boundPort, 'q')).toString());
    t.ok(replies.includes('a:q'), 'the live backend answers');
    await until(() => transitions.length > 0);
    t.same(transitions, [`127.0.0.1:${dead} down`], 'ICMP unreachable ejected the dead one');
    t.equal((await clients[0]!.ask(f.boundPort, 'r')).toString(), 'a:r', 'the next datagrams all reach the live backend');
    t.equal((await clients[1]!.ask(f.boundPort, 'r')).toString(), 'a:r');
    t.equal(f.snapshot().errors['backendError'], 1);
    t.equal(f.snapshot().backends[`127.0.0.1:${a.port}`]?.healthy, true);
  });

  t.test(`${engine}: source ranges, no backend, removed backends`, async (t) => {
    const a = await backend(t, 'a');
    const denied = await frontend(t, engine, [a.port], { allowClient: () => false });
    const c = await client(t);
    t.equal((await c.ask(denied.boundPort, 'x')).length, 0, 'a denied client gets nothing');
    t.same(denied.snapshot().errors, { sourceDenied: 1 });
    const empty = await frontend(t, engine, []);
    t.equal((await c.ask(empty.boundPort, 'x')).length, 0);
    t.same(empty.snapshot().errors, { noBackend: 1 });
    const f = await frontend(t, engine, [a.port]);
    t.equal((await c.ask(f.boundPort, 'x')).toString(), 'a:x');
    const b = await backend(t, 'b');
    f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
    await until(() => f.snapshot().flows === 0);
    t.equal(f.snapshot().flows, 0, 'the flow to the removed backend ended');
    t.equal((await c.ask(f.boundPort, 'x')).toString(), 'b:x', 'the client moves to the new backend');
    await f.close();
    await f.close();
    t.pass('close is idempotent');
  });

  t.test(`${engine}: a taken port is refused with its errno name; checks and affinity reach the pool`, async (t) => {
    const a = await backend(t, 'a');
    const busy = createSocket('udp4');
    busy.bind(0, '127.0.0.1');
    await once(busy, 'listening');
    t.teardown(() => new Promise<void>((r) => busy.close(() => r())));
    const clash = make(t, engine, DEFAULT_UDP_OPTIONS, undefined, busy.address().port);
    await t.rejects(clash.start(), { code: 'EADDRINUSE' });
    await clash.close();
    const f = await frontend(t, engine, [a.port], { activeChecks: true, affinityTimeoutMs: 1 });
    const c = await client(t);
    t.equal((await c.ask(f.boundPort, 'x')).length, 0, 'no backend is healthy before a check passes');
    t.same(f.snapshot().errors, { noHealthyBackend: 1 });
    f.checkResult(`127.0.0.1:${a.port}`, true);
    t.equal((await c.ask(f.boundPort, 'y')).toString(), 'a:y', 'a passed check makes it eligible');
    if (f instanceof NativeUdpFrontend) f.expireAffinity(); else f.sweep();
    t.equal((await c.ask(f.boundPort, 'z')).toString(), 'a:z', 'the flow goes on after its affinity entry expired');
  });
}
