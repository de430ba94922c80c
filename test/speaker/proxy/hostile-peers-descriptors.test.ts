// A hostile client flood can use up the proxy's descriptors. Then the proxy cannot open
// its connection to a backend. That is the proxy's own shortage, not the backend's fault,
// so the backend must not be ejected. If it were, and there are no active checks, it
// would never come back and the Service would stay down after the flood.
import t, { type Test } from 'tap';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { echoBackend, talk } from '../../helpers/tcp-peers.js';
import { until } from '../../helpers/hostile-peers.js';
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
