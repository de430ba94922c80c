// A hostile client flood can use up the proxy's descriptors. Then the proxy cannot open
// its connection to a backend. That is the proxy's own shortage, not the backend's fault,
// so the backend must not be ejected. If it were, and there are no active checks, it
// would never come back and the Service would stay down after the flood.
import t, { type Test } from 'tap';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { Proxy } from '../../../speaker/proxy/index.js';
import { once } from 'node:events';
import { echoBackend, talk } from '../../helpers/tcp-peers.js';
import { until } from '../../helpers/wait.js';
import { serve, TRANSPORTS, type Transport } from '../../helpers/proxy-under-test.js';

/** The soft RLIMIT_NOFILE, from /proc/self/limits. */
function descriptorLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return Number(line?.split(/\s+/)[3]);
}

/**
 * Opens /dev/null until the table is full, then closes `free` of them. Returns a function
 * that closes the rest.
 */
function exhaustDescriptors(free: number): () => void {
  const held: number[] = [];
  const limit = descriptorLimit();
  try {
    while (held.length < limit) held.push(openSync('/dev/null', 'r'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EMFILE') throw err;
  }
  for (const fd of held.splice(held.length - free, free)) closeSync(fd);
  return () => { for (const fd of held.splice(0)) closeSync(fd); };
}

async function outOfDescriptors(t: Test, transport: Transport): Promise<void> {
  const b = await echoBackend('b');
  t.teardown(() => b.close());
  const served = await serve(t, transport, [b.port], { idleTimeoutMs: 10_000, connectTimeoutMs: 2000, connectAttempts: 3, drainTimeoutMs: 1000 });
  t.equal(await talk(served.port, 'x'), 'b:x', 'served before');
  // Two descriptors left: the client's socket and the proxy's accepted one.
  const release = exhaustDescriptors(2);
  let closed: Promise<unknown>;
  try {
    const client = connect({ host: '127.0.0.1', port: served.port });
    client.on('error', () => undefined);
    closed = once(client, 'close');
    await until(() => (served.stats().errors['connectFailed'] ?? 0) > 0, 5000);
  } finally {
    release();
  }
  await closed;
  t.equal(served.stats().errors['connectFailed'], 1, 'the client could not be served, and that was counted');
  t.equal(served.stats().backends[`127.0.0.1:${b.port}`]?.healthy, true, 'the backend is not blamed for the proxy\'s shortage');
  t.equal(await talk(served.port, 'y'), 'b:y', 'served again once descriptors are free');
  t.ok(await until(() => served.stats().active === 0), 'nothing left open');
}

for (const transport of TRANSPORTS) {
  t.test(`${transport} transport: out of descriptors, the backend is not ejected`, (t) => outOfDescriptors(t, transport));
}

async function udpSocket(t: Test): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

// UDP sources are cheap to forge: each new client port costs the proxy one upstream socket,
// and the default udpMaxFlows (65,536) is above common descriptor limits.
t.test('UDP: out of descriptors for a new flow, the backend is not ejected', async (t) => {
  const echo = await udpSocket(t);
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  const proxy = new Proxy();
  t.teardown(() => proxy.close());
  const key = 'test/udp:53/UDP';
  await proxy.apply([{ key, ip: '127.0.0.1', port: 0, protocol: 'UDP', options: {}, backends: [{ ip: '127.0.0.1', port: echo.address().port, state: 'ready' }] }]);
  const stats = () => proxy.stats().frontends[key]!;
  const [first, second] = [await udpSocket(t), await udpSocket(t)];
  const release = exhaustDescriptors(0);
  try {
    first.send('x', stats().port, '127.0.0.1');
    await until(() => Object.keys(stats().errors).length > 0, 5000);
  } finally {
    release();
  }
  t.equal(stats().backends[`127.0.0.1:${echo.address().port}`]?.healthy, true, 'the backend is not blamed for the proxy\'s shortage');
  t.same(stats().errors, { noResources: 1 }, 'counted as the proxy\'s shortage');
  const reply = new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('no reply'), 2000);
    second.once('message', (m: Buffer) => { clearTimeout(timer); resolve(m.toString()); });
  });
  second.send('y', stats().port, '127.0.0.1');
  t.equal(await reply, 'y', 'a new flow is served once descriptors are free');
});

// Last: every subtest and teardown above has run; a socket or timer left would keep the file alive.
t.test('nothing is left to keep the process alive', async (t) => {
  await new Promise((r) => setTimeout(r, 50)); // let the last close callbacks run
  const left = process.getActiveResourcesInfo().filter((r) => /TCP|UDP|Timeout|Immediate/.test(r));
  t.same(left, [], 'no socket, listener or timer (tap\'s own pipes aside)');
});
