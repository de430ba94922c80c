// Issue 4, "Observability and safety", for UDP: a seeded random round against a real UDP
// frontend on 127.0.0.1, through the public Proxy. Well-behaved clients send datagrams of
// random size up to the UDP maximum and must get each back whole, while a flood of
// distinct client ports pushes the flow table past udpMaxFlows and backends answer ICMP
// port unreachable. The table never grows past its bound, every flow is accounted for,
// and the dead backends end their own flows only.
// Replay a failure with BEACON_FUZZ_SEED=<seed printed in the test name>.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { Proxy, type Frontend } from '../../../speaker/proxy/index.js';
import { openDescriptors, pattern } from '../../helpers/hostile-peers.js';
import { until } from '../../helpers/wait.js';

/** RFC 768 and 791: 65535 minus the UDP and IPv4 headers. */
const MAX_DATAGRAM = 65_507;
const MAX_FLOWS = 8;
const KEY = 'test/hostile:53/UDP';

async function bound(t: Test): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } }));
  return s;
}

/** A port nothing listens on: the kernel answers ICMP port unreachable. */
async function deadPort(t: Test): Promise<number> {
  const s = await bound(t);
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Sends `payload` and resolves with the reply. UDP may drop a datagram on a busy box (or
 * its flow may have just been pinned to a dead backend): like any UDP client, it sends
 * again after a second, `tries` times at most, then resolves with undefined.
 */
async function ask(s: Socket, port: number, payload: Buffer, tries = 3): Promise<Buffer | undefined> {
  for (let attempt = 0; attempt < tries; attempt++) {
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => { s.off('message', on); resolve(undefined); }, 1000);
      const on = (m: Buffer) => { clearTimeout(timer); resolve(m); };
      s.once('message', on);
      s.send(payload, port, '127.0.0.1');
    });
    if (reply) return reply;
  }
  return undefined;
}

const roundArb = fc.record({
  sizes: fc.array(fc.integer({ min: 1, max: MAX_DATAGRAM }), { minLength: 4, maxLength: 10 }),
  flood: fc.integer({ min: 2 * MAX_FLOWS, max: 8 * MAX_FLOWS }),
  floodDelayMs: fc.integer({ min: 0, max: 50 }),
});

async function round(t: Test, seed: number): Promise<void> {
  const [plan] = fc.sample(roundArb, { seed, numRuns: 1 });
  if (!plan) throw new Error('no plan');
  const echoes = [await bound(t), await bound(t)];
  for (const e of echoes) e.on('message', (m, r) => e.send(m, r.port, r.address));
  const [dead, deadLater] = [await deadPort(t), await deadPort(t)];
  const fdsBefore = openDescriptors();
  const proxy = new Proxy();
  t.teardown(() => proxy.close());
  const frontend = (ports: number[]): Frontend => ({
    key: KEY, ip: '127.0.0.1', port: 0, protocol: 'UDP', options: { udpMaxFlows: MAX_FLOWS, udpFlowIdleTimeoutMs: 60_000 },
    backends: ports.map((port) => ({ ip: '127.0.0.1', port, state: 'ready' as const })),
  });
  const live = echoes.map((e) => e.address().port);
  t.same(await proxy.apply([frontend([...live, dead])]), { failed: [] });
  const stats = () => proxy.stats().frontends[KEY]!;
  const port = stats().port;
  let maxFlows = 0;
  const monitor = setInterval(() => { maxFlows = Math.max(maxFlows, stats().flows ?? 0); }, 5);
  t.teardown(() => clearInterval(monitor));

  // One at a time, so exactly one new flow meets the dead backend before it is ejected.
  const clients = [await bound(t), await bound(t), await bound(t)];
  for (const [i, c] of clients.entries()) {
    t.same(await ask(c, port, Buffer.from(`hello ${i}`)), Buffer.from(`hello ${i}`), `client ${i} is served`);
  }
  t.equal(stats().backends[`127.0.0.1:${dead}`]?.healthy, false, 'ICMP unreachable ejected the dead backend');
  t.equal(stats().errors['backendError'], 1, 'and ended its one flow');

  // Now, all at once: the clients' datagrams, a flood of new client ports, another dead backend.
  const flood = async () => {
    await new Promise((r) => setTimeout(r, plan.floodDelayMs));
    await proxy.apply([frontend([...live, dead, deadLater])]);
    const ports = await Promise.all(Array.from({ length: plan.flood }, () => bound(t)));
    // One datagram each, awaited (answer or a second's silence), so every flood flow was
    // opened. No retries: a second burst would meet the clients' own retries.
    await Promise.all(ports.map((s, i) => ask(s, port, Buffer.from(`flood ${i}`), 1)));
  };
  const talk = async (c: Socket, i: number) => {
    const wrong: string[] = [];
    for (const [k, size] of [MAX_DATAGRAM, ...plan.sizes].entries()) {
      const payload = pattern(size, size + i);
      const reply = await ask(c, port, payload);
      if (!reply?.equals(payload)) wrong.push(`datagram ${k} (${size} bytes): ${reply ? `${reply.length} bytes, not the same` : 'no reply'}`);
    }
    return wrong;
  };
  const [, ...wrong] = await Promise.all([flood(), ...clients.map(talk)]);
  t.same(wrong, [[], [], []], 'every datagram came back whole, up to 65,507 bytes');

  clearInterval(monitor);
  const s = stats();
  t.ok(maxFlows <= MAX_FLOWS && (s.flows ?? 0) <= MAX_FLOWS, `the flow table never held more than ${MAX_FLOWS} (at most ${maxFlows} seen)`);
  t.ok((s.evictions ?? 0) >= plan.flood - MAX_FLOWS, `the flood evicted (${s.evictions} evictions, ${plan.flood} flood ports)`);
  t.equal(s.total, (s.flows ?? 0) + (s.evictions ?? 0) + (s.errors['backendError'] ?? 0), 'every flow opened is live, evicted or ended by its backend');
  t.ok(await until(() => stats().backends[`127.0.0.1:${deadLater}`]?.healthy === false), 'the second dead backend was ejected too');
  t.same(Object.keys(s.errors), ['backendError'], 'no other error');
  for (const p of live) t.equal(s.backends[`127.0.0.1:${p}`]?.healthy, true, `live backend ${p} stayed healthy`);

  await proxy.close();
  t.same(proxy.stats().frontends, {}, 'closed');
  for (const e of echoes) e.close();
  t.ok(await until(() => openDescriptors() <= fdsBefore + clients.length + plan.flood), 'every flow socket was closed');
}

const seed = process.env['BEACON_FUZZ_SEED'] ? Number(process.env['BEACON_FUZZ_SEED']) : Date.now() % 2 ** 31;
t.test(`UDP, seed ${seed}: floods, maximum datagrams and dead backends end their own flows only`, (t) => round(t, seed));

// Last: every subtest and teardown above has run; a socket or timer left would keep the file alive.
t.test('nothing is left to keep the process alive', async (t) => {
  await new Promise((r) => setTimeout(r, 50)); // let the last close callbacks run
  const left = process.getActiveResourcesInfo().filter((r) => /TCP|UDP|Timeout|Immediate/.test(r));
  t.same(left, [], 'no socket, listener or timer (tap\'s own pipes aside)');
});
