// Opens `count` TCP connections to 127.0.0.1:port, at most 200 connecting at once; on each
// sends one byte and waits for the echo, proving a backend connection exists behind it.
// Prints {"held":n,"failed":m} and then holds them idle until killed. argv: port count timeoutMs
import { connect } from 'node:net';

const [port, count, timeoutMs] = process.argv.slice(2).map(Number);
const CONCURRENCY = 200; // a burst bigger than the listen backlogs would measure SYN retries, not memory
const held = [];
let failed = 0;
let next = 0;
const deadline = Date.now() + timeoutMs;

function one() {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const fail = () => { failed++; s.destroy(); resolve(); };
    s.setTimeout(Math.max(1, deadline - Date.now()), fail);
    s.once('error', fail);
    s.once('connect', () => s.write('x'));
    s.once('data', () => { s.setTimeout(0); s.removeListener('error', fail); s.on('error', () => undefined); held.push(s); resolve(); });
  });
}
async function worker() {
  while (next < count && Date.now() < deadline) { next++; await one(); }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
process.stdout.write(JSON.stringify({ held: held.length, failed }) + '\n');
setInterval(() => undefined, 60_000); // hold until killed
