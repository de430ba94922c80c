// A UDP client the native frontend refused is remembered for REFUSED_MS (native/udp.h):
// its datagrams are dropped and counted without asking JavaScript again, so a flood from a
// refused address costs one decision per second, and it is asked about again after that
// (a backend back, a range changed). Loopback only.
import t from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createRelay, NativeRelay } from '../../../speaker/proxy/native-relay.js';
import { NativeUdpFrontend } from '../../../speaker/proxy/native-udp-frontend.js';
import { DEFAULT_UDP_OPTIONS } from '../../../speaker/proxy/udp-frontend.js';
import { until } from '../../helpers/wait.js';

/** native/udp.h REFUSED_MS. */
const REFUSED_MS = 1000;

async function socket(): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } }));
  return s;
}


t.test('a refused client is not asked about again for a second; its datagrams are counted', async (t) => {
  const backend = await socket();
  backend.on('message', (m, from) => backend.send(m, from.port, from.address));
  const { relay, why } = createRelay('native', 2);
  if (!(relay instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => relay.close());
  let asked = 0;
  let allow = false;
  const f = new NativeUdpFrontend('127.0.0.1', 0, { ...DEFAULT_UDP_OPTIONS, allowClient: () => { asked++; return allow; } }, undefined, undefined, relay);
  f.update([{ ip: '127.0.0.1', port: backend.address().port, state: 'ready' }]);
  await f.start();
  t.teardown(() => f.close());
  const client = await socket();
  const replies: string[] = [];
  client.on('message', (m) => replies.push(m.toString()));
  const send = (n: number) => { for (let i = 0; i < n; i++) client.send(`d${i}`, f.boundPort, '127.0.0.1'); };

  send(1);
  t.ok(await until(() => asked === 1), 'the first datagram is a new flow: JavaScript decides (refused)');
  const refusedAt = Date.now();
  send(50);
  t.ok(await until(() => (f.snapshot().errors['refusedRecently'] ?? 0) >= 50), 'the next ones are dropped and counted in the threads');
  t.equal(asked, 1, 'without asking JavaScript again');
  t.equal(f.snapshot().errors['sourceDenied'], 1, 'the refusal itself is counted once');
  t.equal(f.snapshot().flows, 0, 'a refused client is no flow');
  t.same(replies, [], 'nothing reached the backend');

  allow = true;
  await new Promise((r) => setTimeout(r, Math.max(0, refusedAt + REFUSED_MS + 50 - Date.now())));
  send(1);
  t.ok(await until(() => replies.length === 1), 'after a second it is asked about again, and served');
  t.equal(asked, 2);
  t.equal(f.snapshot().flows, 1);
});

t.test('a backend that becomes usable ends the refusals at once', async (t) => {
  const backend = await socket();
  backend.on('message', (m, from) => backend.send(m, from.port, from.address));
  const { relay, why } = createRelay('native', 2);
  if (!(relay instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => relay.close());
  const f = new NativeUdpFrontend('127.0.0.1', 0, DEFAULT_UDP_OPTIONS, undefined, undefined, relay);
  await f.start();
  t.teardown(() => f.close());
  const client = await socket();
  const replies: string[] = [];
  client.on('message', (m) => replies.push(m.toString()));
  client.send('first', f.boundPort, '127.0.0.1');
  t.ok(await until(() => f.snapshot().errors['noBackend'] === 1), 'no backend: refused');
  f.update([{ ip: '127.0.0.1', port: backend.address().port, state: 'ready' }]);
  const started = Date.now();
  const ask = setInterval(() => client.send('again', f.boundPort, '127.0.0.1'), 20);
  t.teardown(() => clearInterval(ask));
  t.ok(await until(() => replies.length > 0), 'served');
  t.ok(Date.now() - started < REFUSED_MS / 2, `well before the refusal would have run out (${Date.now() - started} ms)`);
});
