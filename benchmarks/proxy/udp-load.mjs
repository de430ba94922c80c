// UDP load generator: `flows` sockets, each keeping at most `window` 64-byte datagrams in
// flight, for `seconds`; counts echoes. A flow that hears nothing for 100 ms is assumed to
// have lost its window and refills it (the losses are counted). Prints one JSON line.
// argv: port flows window seconds
import { createSocket } from 'node:dgram';

const [port, flows, window, seconds] = process.argv.slice(2).map(Number);
const PAYLOAD = Buffer.alloc(64, 0x61); // 64 bytes: a small DNS-like query
const WARMUP_MS = 500; // not counted: flow set-up in the proxy
const STALL_MS = 100;

let echoes = 0;
let sent = 0;
let refills = 0;
let counting = false;
const state = [];
for (let i = 0; i < flows; i++) {
  const s = createSocket({ type: 'udp4' });
  const f = { s, inFlight: 0, last: Date.now() };
  s.on('error', () => undefined);
  s.on('message', () => {
    f.inFlight = Math.max(0, f.inFlight - 1);
    f.last = Date.now();
    if (counting) echoes++;
    send(f);
  });
  await new Promise((resolve) => s.connect(port, '127.0.0.1', resolve));
  state.push(f);
}
function send(f) {
  while (f.inFlight < window) { f.inFlight++; sent++; f.s.send(PAYLOAD); }
}
for (const f of state) send(f);
const stall = setInterval(() => {
  const now = Date.now();
  for (const f of state) if (now - f.last > STALL_MS) { refills++; f.inFlight = 0; f.last = now; send(f); }
}, STALL_MS / 2);
await new Promise((r) => setTimeout(r, WARMUP_MS));
counting = true;
const t0 = performance.now();
const sent0 = sent;
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const elapsed = (performance.now() - t0) / 1000;
clearInterval(stall);
process.stdout.write(JSON.stringify({ echoesPerSecond: echoes / elapsed, sentPerSecond: (sent - sent0) / elapsed, refills, flows, window }) + '\n');
for (const f of state) f.s.close();
