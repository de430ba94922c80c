// Peers that misbehave on purpose, for the proxy's hostile-peer tests, and a way to see
// how many bytes sit in the kernel's socket queues. Loopback only.
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';

/**
 * What a client asks of a command backend in its first line, `<cmd> <token> <n>\n`:
 * - `echo`: echoes the rest with backpressure (pipe), half-close answered by end();
 * - `rst`: writes n bytes, then resets the connection (SO_LINGER 0);
 * - `stall`: never reads again (a half-open, stalled peer);
 * - `half`: writes n bytes and half-closes, then keeps reading; what arrives is kept under `token`;
 * - `flood`: writes as fast as the client takes it, until `floods.get(token).stop()`.
 * No line at all: the backend says nothing (an idle client meets an idle backend).
 */
export type BackendCommand = 'echo' | 'rst' | 'stall' | 'half' | 'flood';

export interface CommandBackend {
  readonly port: number;
  /** Connections this backend holds now. */
  readonly open: number;
  /** Connections it accepted in all. */
  readonly accepted: number;
  /** `half` connections: what the client sent after the command, and whether its FIN came. */
  readonly received: Map<string, { bytes: Buffer[]; ended: boolean }>;
  /** Stalled connections' sockets (never read), to measure or release them. */
  readonly stalled: Map<string, Socket>;
  /** `flood` connections: bytes the kernel took so far, their digest, and how to stop (then end()). */
  readonly floods: Map<string, Flood>;
  /** Stops accepting at once; open connections go on (a backend going away under the proxy). */
  stopListening(): void;
  /** Destroys every connection and stops listening; safe to call twice. */
  close(): Promise<void>;
}

/** `n` bytes of a pattern that depends on `seed`, so a reordering or a lost chunk shows. */
export function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = (seed | 0) || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}

export interface Flood {
  readonly socket: Socket;
  /** Bytes whose write completed (handed to the kernel). */
  accepted: number;
  /** Resolves with the sha256 of everything written, once the last write completed and end() was called. */
  stop(): Promise<string>;
}

/**
 * The chunk a flood repeats. Small, because a write's callback comes only once all of it
 * is in the kernel, so counting completed writes misses at most the one partly taken. Not
 * tiny: under coverage, 4 KiB writes made a stalled row take seconds.
 */
export const FLOOD_CHUNK = pattern(16 * 1024, 99);

export async function commandBackend(): Promise<CommandBackend> {
  const sockets = new Set<Socket>();
  const received = new Map<string, { bytes: Buffer[]; ended: boolean }>();
  const stalled = new Map<string, Socket>();
  const floods = new Map<string, Flood>();
  let accepted = 0;
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined); // resets are the point here
    // allowHalfOpen: the peer's FIN is answered with ours once we have nothing more to say.
    s.on('end', () => { if (!s.writableEnded) s.end(); });
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) { if (head.length > 256) s.destroy(); return; }
      s.off('data', onData);
      const [cmd, token = '', n = '0'] = head.subarray(0, nl).toString().split(' ');
      const rest = head.subarray(nl + 1);
      run(s, cmd as BackendCommand, token, Number(n), rest);
    };
    s.on('data', onData);
  });
  const run = (s: Socket, cmd: BackendCommand, token: string, n: number, rest: Buffer) => {
    if (cmd === 'echo') {
      s.pause();
      if (rest.length) s.write(rest);
      s.pipe(s); // end() follows the client's FIN
    } else if (cmd === 'rst') {
      s.write(pattern(n, n), () => s.resetAndDestroy());
    } else if (cmd === 'stall') {
      s.pause();
      stalled.set(token, s);
    } else if (cmd === 'half') {
      const got = { bytes: rest.length ? [rest] : [], ended: false };
      received.set(token, got);
      s.on('data', (d: Buffer) => got.bytes.push(d));
      s.on('end', () => { got.ended = true; });
      s.end(pattern(n, n));
    } else if (cmd === 'flood') {
      const hash = createHash('sha256');
      let stopped = false;
      const f: Flood = {
        socket: s, accepted: 0,
        stop: () => new Promise((resolve) => { stopped = true; s.end(() => resolve(hash.digest('hex'))); }),
      };
      floods.set(token, f);
      const pump = () => {
        while (!stopped && !s.destroyed) {
          hash.update(FLOOD_CHUNK);
          if (!s.write(FLOOD_CHUNK, (err) => { if (!err) f.accepted += FLOOD_CHUNK.length; })) return void s.once('drain', pump);
        }
      };
      pump();
    } else {
      s.destroy();
    }
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  // close() stops accepting at once; its 'close' event waits for open connections to end.
  const closed = once(server, 'close');
  const stopListening = () => { if (server.listening) server.close(); };
  return {
    port, received, stalled, floods,
    get open() { return sockets.size; },
    get accepted() { return accepted; },
    stopListening,
    close: async () => {
      for (const s of sockets) s.destroy();
      stopListening();
      await closed;
    },
  };
}

/** One TCP socket's kernel queues (/proc/net/tcp): bytes not yet sent or acked, and not yet read. */
export interface KernelQueues { readonly tx: number; readonly rx: number }

/**
 * Kernel queues of the loopback TCP sockets bound to `localPort` and connected to
 * `remotePort`, summed (Linux /proc/net/tcp; ports are hex, queues `tx:rx` in hex).
 */
export function kernelQueues(pairs: readonly (readonly [number, number])[]): number {
  const want = new Set(pairs.map(([l, r]) => `${l}:${r}`));
  let sum = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = parseInt(f[1]!.split(':')[1]!, 16);
    const remote = parseInt(f[2]!.split(':')[1]!, 16);
    if (!want.has(`${local}:${remote}`)) continue;
    const [tx, rx] = f[4]!.split(':').map((h) => parseInt(h, 16));
    sum += tx! + rx!;
  }
  return sum;
}

/** Open descriptors of this process (leak checks). */
export function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}
