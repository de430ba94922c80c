/**
 * The relay: what moves bytes between a client and its backend once the frontend has
 * decided everything else (accept, source ranges, balancing, connect, PROXY header). Two
 * implementations behind this one interface (issue 4: "a native splice path behind the
 * same interface"): `PipeRelay` here, Node streams with pipe(); and `NativeRelay`
 * (native-relay.ts), epoll threads in C that take the sockets' descriptors and leave no
 * JavaScript object per connection behind.
 */
import type { Socket } from 'node:net';

/** Why a relayed connection ended; doubles as a metric label. */
export type RelayEndReason = 'done' | 'reset' | 'idleTimeout' | 'cut';

export interface RelayEnd {
  /** Client to backend bytes, without the PROXY header. */
  readonly bytesIn: number;
  /** Backend to client bytes. */
  readonly bytesOut: number;
  readonly reason: RelayEndReason;
}

export interface RelaySpec {
  /** Both directions quiet this long ends the connection (HAProxy's timeout client/server); 0: never. */
  readonly idleTimeoutMs: number;
  /** Sent to the backend before any client byte (PROXY protocol). */
  readonly header?: Buffer | undefined;
}

export interface Relay {
  readonly kind: 'native' | 'pipe';
  /**
   * Relays until both directions have ended (half-close crosses), a socket fails, the idle
   * timeout passes or `cut()` is called; then `onEnd` runs once. The relay owns both
   * sockets from here on. The client must not have been read yet (pauseOnConnect).
   */
  relay(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void;
  /** Ends every connection still relayed (each `onEnd` with `cut`). Idempotent. */
  close(): void;
}

export class PipeRelay implements Relay {
  readonly kind = 'pipe';
  readonly #cuts = new Set<() => void>();

  relay(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void {
    if (spec.header) upstream.write(spec.header);
    // pipe() carries backpressure (a slow reader pauses the other side) and half-close
    // (end() follows a FIN, because both sockets allow half-open).
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    let done = false;
    const finish = (reason: RelayEndReason) => {
      if (done) return;
      done = true;
      this.#cuts.delete(cut);
      client.destroy();
      upstream.destroy();
      onEnd({ bytesIn: client.bytesRead, bytesOut: client.bytesWritten, reason });
    };
    const cut = () => finish('cut');
    this.#cuts.add(cut);
    if (spec.idleTimeoutMs > 0) {
      const idle = () => finish('idleTimeout');
      client.setTimeout(spec.idleTimeoutMs, idle);
      upstream.setTimeout(spec.idleTimeoutMs, idle);
    }
    upstream.on('error', () => finish('reset'));
    client.on('error', () => finish('reset'));
    let closes = 0;
    const closed = () => { if (++closes === 2) finish('done'); };
    client.once('close', closed);
    upstream.once('close', closed);
    return cut;
  }

  close(): void {
    for (const cut of [...this.#cuts]) cut();
  }
}
