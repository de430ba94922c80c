// A native UDP frontend on a relay with several threads is one SO_REUSEPORT socket per
// thread (native/addon-udp.c), each with a share of maxFlows. Loopback only. The kernel
// spreads client addresses by hash, so which thread gets a client is not chosen here; a
// flow's id names its thread in the low 4 bits (relay.h MAX_WORKERS), which shows the spread.
import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createRelay, NativeRelay, type FlowEvents } from '../../../speaker/proxy/native-relay.js';

const THREADS = 2;
/** Below the client count, so the bound has work to do. */
const MAX_FLOWS = 4;
const CLIENTS = 20;
/** Flow ids carry their thread's index in the low 4 bits (native/worker.c new_id). */
const threadOf = (flowId: number) => flowId % 16;

function relay(t: Test, threads: number): NativeRelay {
  const { relay: r, why } = createRelay('native', threads);
  if (!(r instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
  t.teardown(() => r.close());
  return r;
}

async function socket(t: Test, port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  s.bind(port, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } }));
  return s;
}

/** Sends one datagram from `s` and resolves with the reply, or undefined after a second. */
function ask(s: Socket, port: number, payload: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { s.off('message', on); resolve(undefined); }, 1000);
    const on = (m: Buffer) => { clearTimeout(timer); resolve(m.toString()); };
    s.once('message', on);
    s.send(payload, port, '127.0.0.1');
  });
}

/** Whether a plain (non-reuseport) socket can bind 127.0.0.1:port now. */
async function free(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => resolve(true));
  });
  await new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } });
  return ok;
}

/** A frontend that connects every flow to `backend`; counts the flow ids and ends it hears. */
function listen(r: NativeRelay, backend: number, maxFlows: number) {
  const ids: number[] = [];
  const ended: string[] = [];
  let lid = 0;
  const events: FlowEvents = {
    flow: (id) => { ids.push(id); r.udpConnect(id, lid, 0, '127.0.0.1', backend); },
    flowEnded: (_tag, _in, _out, reason) => { ended.push(reason); },
  };
  const l = r.udpListen('127.0.0.1', 0, 60_000, maxFlows, events);
  lid = l.id;
  return { ...l, ids, ended };
}

t.test('maxFlows bounds the whole frontend, not each thread; clients spread over the threads', async (t) => {
  const r = relay(t, THREADS);
  const echo = await socket(t);
  echo.on('message', (m, from) => echo.send(m, from.port, from.address));
  const f = listen(r, echo.address().port, MAX_FLOWS);
  let most = 0;
  for (let i = 0; i < CLIENTS; i++) {
    const c = await socket(t);
    t.equal(await ask(c, f.port, `p${i}`), `p${i}`, `client ${i} is answered through the frontend`);
    most = Math.max(most, r.udpCounters(f.id).flows);
  }
  const c = r.udpCounters(f.id);
  t.ok(most <= MAX_FLOWS, `never more than ${MAX_FLOWS} flows live in total (at most ${most} seen)`);
  t.equal(c.flows + c.evictions, CLIENTS, 'every flow is live or was evicted');
  t.ok(c.evictions >= CLIENTS - MAX_FLOWS, `evictions counted (${c.evictions})`);
  const threads = new Set(f.ids.map(threadOf));
  // Each of 20 client ports lands on either socket by hash: all on one is a 2^-19 chance.
  t.same([...threads].sort(), [0, 1], 'the kernel spread the clients over both threads');
});

t.test('a maxFlows below the thread count still bounds the total (fewer sockets)', async (t) => {
  const r = relay(t, THREADS);
  const echo = await socket(t);
  echo.on('message', (m, from) => echo.send(m, from.port, from.address));
  const f = listen(r, echo.address().port, 1);
  for (let i = 0; i < 6; i++) {
    const c = await socket(t);
    t.equal(await ask(c, f.port, `q${i}`), `q${i}`);
    t.ok(r.udpCounters(f.id).flows <= 1, `at most one flow after client ${i}`);
  }
  t.equal(r.udpCounters(f.id).evictions, 5, 'each new client evicted the one before');
});

t.test('the port is held by every socket until udpUnlisten, which frees it', async (t) => {
  const r = relay(t, THREADS);
  const f = listen(r, 9, 16);
  t.notOk(await free(f.port), 'a plain bind to the frontend port fails while it listens');
  const clash = relay(t, THREADS);
  t.throws(() => clash.udpListen('127.0.0.1', f.port, 1000, 16, { flow: () => undefined, flowEnded: () => undefined }),
    { code: 'EADDRINUSE' }, 'so does another frontend on it, even with SO_REUSEPORT');
  r.udpUnlisten(f.id);
  const end = Date.now() + 3000;
  let ok = false;
  while (!(ok = await free(f.port)) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
  t.ok(ok, 'after udpUnlisten no socket of the frontend holds the port');
});
