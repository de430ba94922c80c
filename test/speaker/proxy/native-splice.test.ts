// The native relay's splice path (native/splice.c): a bulk stream moves through kernel
// pipes, byte-exact both ways, with backpressure from a slow reader, half-close, and
// every pipe closed with the relay. Loopback only.
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { createRelay, NativeRelay } from '../../../speaker/proxy/native-relay.js';
import { NativeTcpFrontend } from '../../../speaker/proxy/native-frontend.js';
import { DEFAULT_TCP_OPTIONS } from '../../../speaker/proxy/tcp-frontend-base.js';
import { until } from '../../helpers/wait.js';

/** Pipes this process holds open (the relay's splice pipes among them). */
const openPipes = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith('pipe:'); } catch { return false; } }).length;

const sha = (chunks: Buffer[]) => createHash('sha256').update(Buffer.concat(chunks)).digest('hex');

/** Reads everything, pausing now and then so the sender meets backpressure. */
function slowReader(s: Socket): Promise<Buffer[]> {
  const got: Buffer[] = [];
  let n = 0;
  s.on('data', (d: Buffer) => {
    got.push(d);
    if (++n % 32 === 0) { s.pause(); setTimeout(() => s.resume(), 5); }
  });
  return once(s, 'end').then(() => got);
}

t.test('a bulk stream both ways through splice: byte-exact, half-close, pipes released', async (t) => {
  const before = openPipes();
  const up = randomBytes(8 << 20);
  const down = randomBytes(6 << 20);
  let backendGot!: Promise<Buffer[]>;
  let backendSocket!: Socket;
  const backend = createServer({ allowHalfOpen: true }, (s) => {
    backendSocket = s;
    backendGot = slowReader(s);
    s.end(down);
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  t.teardown(() => new Promise((r) => backend.close(r)));
  const { relay } = createRelay('native', 2);
  if (!(relay instanceof NativeRelay)) throw new Error('the native relay is built by npm run build');
  const f = new NativeTcpFrontend('127.0.0.1', 0, DEFAULT_TCP_OPTIONS, undefined, undefined, relay);
  f.update([{ ip: '127.0.0.1', port: (backend.address() as { port: number }).port, state: 'ready' }]);
  await f.start();

  const client = connect({ host: '127.0.0.1', port: f.boundPort, allowHalfOpen: true });
  const clientGot = slowReader(client);
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, openPipes()); }, 2);
  client.end(up);
  const [fromBackend, toBackend] = await Promise.all([clientGot, (async () => { await once(client, 'finish'); while (!backendGot) await new Promise((r) => setTimeout(r, 5)); return backendGot; })()]);
  clearInterval(sampler);
  t.equal(sha(toBackend), createHash('sha256').update(up).digest('hex'), '8 MiB client to backend, byte-exact');
  t.equal(sha(fromBackend), createHash('sha256').update(down).digest('hex'), '6 MiB backend to client, byte-exact');
  t.ok(peak > before, `bulk directions borrowed pipes (${before} open before, ${peak} at the peak)`);
  client.destroy();
  backendSocket.destroy();
  await until(() => f.snapshot().active === 0, 10_000);
  const s = f.snapshot();
  t.equal(s.bytesIn, up.length, 'bytes in counted, spliced ones included');
  t.equal(s.bytesOut, down.length, 'bytes out counted');
  await f.close();
  relay.close();
  t.equal(openPipes(), before, 'every pipe closed with the relay');
});

