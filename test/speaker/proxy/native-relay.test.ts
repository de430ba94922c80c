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
  const events = { accepted: () => undefined, connected: () => undefined, connectFailed: () => undefined, ended: () => undefined };
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
