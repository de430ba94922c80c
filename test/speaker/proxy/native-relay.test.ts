// The native relay's own edges: IPv6 clients, the fallback to pipe(), errors as values,
// and a closed relay refusing work. Loopback only (127.0.0.1 and ::1).
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { ALL_TAGS, createRelay, NativeRelay, RelayLoadError, loadRelayAddon } from '../../../speaker/proxy/native-relay.js';
import { NativeTcpFrontend } from '../../../speaker/proxy/native-frontend.js';
import { DEFAULT_TCP_OPTIONS } from '../../../speaker/proxy/tcp-frontend-base.js';
import { decode } from '../../../lib/proxy/proxy-protocol.js';
import { echoBackend, talk } from '../../helpers/tcp-peers.js';
import { until } from '../../helpers/wait.js';

function relay(): NativeRelay {
  const { relay: r, why } = createRelay('native', 2);
  if (!(r instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => r.close());
  return r;
}

t.test('choosing a relay', async (t) => {
  const pipe = createRelay('pipe', 2);
  t.equal(pipe.relay.kind, 'pipe');
  t.match(pipe.why, /pipe relay chosen/);
  t.notOk(loadRelayAddon() instanceof RelayLoadError, 'the addon loads (npm run build made it)');
});

t.test('an IPv6 client: its address reaches the PROXY header and the source ranges', async (t) => {
  let header: ReturnType<typeof decode> | undefined;
  const b = await echoBackend('b', { onData: (d, s) => { header ??= decode(d); s.end('ok'); } });
  t.teardown(b.close);
  const seen: string[] = [];
  const f = new NativeTcpFrontend('::1', 0, {
    ...DEFAULT_TCP_OPTIONS, proxyProtocol: 'v2', allowClient: (ip) => { seen.push(ip); return true; },
  }, undefined, undefined, relay());
  f.update([{ ip: '127.0.0.1', port: b.port, state: 'ready' }]);
  await f.start();
  t.teardown(() => f.close());
  t.equal(await talk(f.boundPort, 'x', false, '::1'), 'ok', 'forwarded from [::1] to 127.0.0.1');
  t.same(seen, ['::1'], 'the client address as text');
  t.equal(header?.kind, 'header');
  if (header?.kind === 'header') {
    // The decoder writes IPv6 groups uncompressed.
    t.equal(header.connection?.sourceAddress, '0:0:0:0:0:0:0:1');
    t.equal(header.connection?.destinationAddress, '0:0:0:0:0:0:0:1');
  }
});

t.test('listen errors carry the errno name; a closed relay refuses work', async (t) => {
  const r = relay();
  const taken = createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const f = new NativeTcpFrontend('127.0.0.1', port, DEFAULT_TCP_OPTIONS, undefined, undefined, r);
  await t.rejects(f.start(), { code: 'EADDRINUSE' });
  await f.close();
  r.close();
  r.close(); // idempotent
  const events = { accepted: () => undefined, connected: () => undefined, connectFailed: () => undefined, ended: () => undefined, routesTaken: () => undefined, refused: () => undefined };
  t.throws(() => r.listen('127.0.0.1', 0, 1000, events), { code: 'BEACON_RELAY_CLOSED' });
  t.equal(r.connect(1, 0, '127.0.0.1', 1, { timeoutMs: 100, idleTimeoutMs: 0, keepAliveMs: 0 }), false, 'a connect on a closed relay is refused at once');
  r.cut(1);
  r.cutTag(1, ALL_TAGS);
  r.reject(1);
  r.unlisten(1);
  r.detach(1);
  t.pass('cut, cutTag, reject, unlisten and detach on a closed relay do nothing');
});

t.test('handoff: a pair whose bytes Node already read falls back to pipe()', async (t) => {
  const r = relay();
  const b = await echoBackend('b');
  t.teardown(b.close);
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, allowHalfOpen: true });
  client.on('error', () => undefined);
  const [inner] = await accepted;
  client.write('early');
  await once(inner, 'readable'); // Node has the bytes now: the native side could not see them
  const upstream = connect({ host: '127.0.0.1', port: b.port, allowHalfOpen: true });
  upstream.pause();
  await once(upstream, 'connect');
  const ended = new Promise((resolve) => r.relay(inner, upstream, { idleTimeoutMs: 0 }, resolve));
  t.equal(r.fallbacks, 1, 'carried by pipe()');
  t.equal(r.size, 0, 'not by the threads');
  let got = '';
  client.on('data', (d) => { got += d.toString(); });
  client.end();
  await ended;
  t.equal(got, 'b:early', 'the early bytes still reach the backend');
  client.destroy();
});

/** Records a listener's reports; `ask` answers the accepts the threads leave to JavaScript. */
function recorder(ask: (id: number) => void = () => undefined) {
  const log: { kind: string; routed?: number; tag?: number; gen?: number }[] = [];
  const events = {
    accepted: (id: number, _ip: string, _port: number, routed: number) => { log.push({ kind: 'accepted', routed }); if (routed < 0) ask(id); },
    connected: (_id: number, tag: number) => { log.push({ kind: 'connected', tag }); },
    connectFailed: (_id: number, tag: number) => { log.push({ kind: 'connectFailed', tag }); },
    ended: (tag: number) => { log.push({ kind: 'ended', tag }); },
    routesTaken: (gen: number) => { log.push({ kind: 'routesTaken', gen }); },
    refused: () => { log.push({ kind: 'refused' }); },
  };
  return { log, events };
}


t.test('a route: the threads connect each client in turn, over its limit they close it, without one they ask', async (t) => {
  const a = await echoBackend('a'); const b = await echoBackend('b');
  t.teardown(async () => { await a.close(); await b.close(); });
  const r = relay();
  let asked = 0;
  const { log, events } = recorder((id) => { asked++; r.connect(id, 9, '127.0.0.1', a.port, { timeoutMs: 1000, idleTimeoutMs: 0, keepAliveMs: 0 }); });
  const l = r.listen('127.0.0.1', 0, 0, events);
  const options = { timeoutMs: 1000, idleTimeoutMs: 0, keepAliveMs: 0, maxOpen: 2 };
  t.ok(r.routes(l.id, 1, [{ tag: 4, ip: '127.0.0.1', port: a.port }, { tag: 7, ip: '127.0.0.1', port: b.port }], options));
  t.ok(await until(() => log.filter((e) => e.kind === 'routesTaken' && e.gen === 1).length === r.threads), 'every thread takes the route');

  const got = [await talk(l.port, 'x'), await talk(l.port, 'x'), await talk(l.port, 'x'), await talk(l.port, 'x')];
  t.same(got, ['a:x', 'b:x', 'a:x', 'b:x'], 'round-robin across the threads, in the route\'s order');
  t.ok(await until(() => log.filter((e) => e.kind === 'ended').length === 4));
  t.same(log.filter((e) => e.kind === 'accepted').map((e) => e.routed), [4, 7, 4, 7], 'each accept says which backend the threads picked');
  t.same(log.filter((e) => e.kind === 'connected').map((e) => e.tag), [4, 7, 4, 7], 'and its connect carries that tag');
  t.equal(asked, 0, 'JavaScript was asked nothing');

  const held: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ host: '127.0.0.1', port: l.port });
    s.on('error', () => undefined);
    await once(s, 'data');
    held.push(s);
  }
  t.equal(await talk(l.port, 'x', false), '', 'the third open connection is closed');
  t.ok(await until(() => log.some((e) => e.kind === 'refused')), 'and reported refused');
  for (const s of held) s.destroy();
  t.ok(await until(() => log.filter((e) => e.kind === 'ended').length === 6));
  t.equal(await talk(l.port, 'x'), 'a:x', 'room again once they closed');

  r.routes(l.id, 2, [], options);
  t.ok(await until(() => log.filter((e) => e.kind === 'routesTaken' && e.gen === 2).length === r.threads));
  t.equal(await talk(l.port, 'y'), 'a:y', 'an empty route ends it');
  t.equal(asked, 1, 'JavaScript is asked again');
  t.equal(log.filter((e) => e.kind === 'accepted').at(-1)?.routed, -1);

  r.unlisten(l.id);
  r.routes(l.id, 3, [{ tag: 4, ip: '127.0.0.1', port: a.port }], options);
  t.ok(await until(() => log.filter((e) => e.kind === 'routesTaken' && e.gen === 3).length === r.threads), 'a route for a listener gone is still acknowledged');
  const addon = loadRelayAddon();
  if (addon instanceof RelayLoadError) throw addon;
  const h = addon.create(1, () => undefined);
  t.throws(() => addon.routes(h, 1, 1, [1, '127.0.0.1'], 0, 0, 0, 1), { code: 'BEACON_RELAY' }, 'a backend list not in threes is refused');
  t.throws(() => addon.routes(h, 1, 1, [1, 'not an address', 80], 0, 0, 0, 1), { code: 'BEACON_RELAY' }, 'so is a backend that is not an address');
  addon.close(h);
});

t.test('a routed connect that fails goes back to the frontend, which retries elsewhere and ejects the backend', async (t) => {
  const dead = await echoBackend('dead'); const deadPort = dead.port; await dead.close();
  const live = await echoBackend('live');
  t.teardown(() => live.close());
  const transitions: string[] = [];
  const f = new NativeTcpFrontend('127.0.0.1', 0, { ...DEFAULT_TCP_OPTIONS, connectTimeoutMs: 500 }, (b, tr) => transitions.push(`${b} ${tr}`), undefined, relay());
  f.update([{ ip: '127.0.0.1', port: deadPort, state: 'ready' }, { ip: '127.0.0.1', port: live.port, state: 'ready' }]);
  await f.start();
  t.teardown(() => f.close());
  for (let i = 0; i < 4; i++) t.equal(await talk(f.boundPort, 'hi'), 'live:hi', `connection ${i + 1} reaches the live backend`);
  t.same(transitions, [`127.0.0.1:${deadPort} down`], 'the dead one is ejected once');
  // Reports that need no answer reach JavaScript a moment later (REPORT_DELAY_MS).
  t.ok(await until(() => f.snapshot().backends[`127.0.0.1:${live.port}`]?.total === 4 && f.snapshot().active === 0), 'all four were relayed by the live backend');
  t.equal(f.snapshot().total, 4);
  t.same(f.snapshot().errors, {}, 'no client saw an error');
});

t.test('without active checks a passive ejection runs out, and the route takes the backend back', async (t) => {
  const back = await echoBackend('back'); await back.close(); // down for now, on a port we keep
  const live = await echoBackend('live');
  t.teardown(async () => { await live.close(); await back.close(); });
  const transitions: string[] = [];
  const f = new NativeTcpFrontend('127.0.0.1', 0, { ...DEFAULT_TCP_OPTIONS, connectTimeoutMs: 500, passiveEjectionMs: 200 }, (b, tr) => transitions.push(`${b} ${tr}`), undefined, relay());
  f.update([{ ip: '127.0.0.1', port: back.port, state: 'ready' }, { ip: '127.0.0.1', port: live.port, state: 'ready' }]);
  await f.start();
  t.teardown(() => f.close());
  for (let i = 0; i < 2; i++) t.equal(await talk(f.boundPort, 'x'), 'live:x', 'the refusing backend is skipped');
  t.same(transitions, [`127.0.0.1:${back.port} down`]);
  await back.reopen();
  t.ok(await until(() => transitions.length === 2), 'no connection needed to bring it back');
  t.same(transitions, [`127.0.0.1:${back.port} down`, `127.0.0.1:${back.port} up`]);
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await talk(f.boundPort, 'x'));
  t.same(got.sort(), ['back:x', 'back:x', 'live:x', 'live:x'], 'the route has it again');
});
