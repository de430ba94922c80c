/**
 * The native relay (native/relay.c, built by `npm run build` into dist/native/): epoll
 * threads that take a connected pair's descriptors and move the bytes in C. The JavaScript
 * sockets are destroyed right after the hand-over (the relay holds duplicates), so an
 * established connection keeps no Node stream objects and costs no JavaScript per chunk.
 * Falls back to the pipe relay for a connection it cannot take (bytes already buffered in
 * Node, no descriptor, descriptors exhausted): that connection still works, just slower.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { PipeRelay, type Relay, type RelayEnd, type RelayEndReason, type RelaySpec } from './relay.js';

/** The addon's exports (native/relay.c). */
export interface RelayAddon {
  create(workers: number, onEnded: (batch: Float64Array) => void): object;
  add(relay: object, id: number, clientFd: number, upstreamFd: number, idleMs: number, header?: Buffer): void;
  cut(relay: object, id: number): void;
  close(relay: object): void;
}

/** Indexed by the reason code the addon reports. */
const REASONS: readonly RelayEndReason[] = ['done', 'reset', 'idleTimeout', 'cut'];

/** From dist/speaker/proxy/ (compiled) and from speaker/proxy/ (sources under the test loader). */
const ADDON_PATHS = ['../../native/beacon_relay.node', '../../dist/native/beacon_relay.node'];

export class RelayLoadError extends Error {
  readonly code = 'BEACON_RELAY_UNAVAILABLE';
}

/** Loads the addon, or says why not (not built, wrong platform). */
export function loadRelayAddon(): RelayAddon | RelayLoadError {
  const path = ADDON_PATHS.map((p) => fileURLToPath(new URL(p, import.meta.url))).find((p) => existsSync(p));
  if (!path) return new RelayLoadError('native relay not built (npm run build makes dist/native/beacon_relay.node)');
  try {
    return createRequire(import.meta.url)(path) as RelayAddon;
  } catch (cause) {
    return new RelayLoadError(`native relay at ${path} does not load: ${(cause as Error).message}`, { cause });
  }
}

/** The descriptor behind a connected net.Socket (libuv's TCP handle exposes it on Unix). */
function descriptor(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export class NativeRelay implements Relay {
  readonly kind = 'native';
  #handle: object | undefined;
  #nextId = 1;
  #closed = false;
  readonly #open = new Map<number, (end: RelayEnd) => void>();
  readonly #fallback = new PipeRelay();
  /** Connections the native side could not take and the pipe relay carries instead. */
  fallbacks = 0;

  /** No I/O: the threads start with the first connection. */
  constructor(private readonly addon: RelayAddon, private readonly threads: number) {}

  relay(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void {
    const clientFd = descriptor(client);
    const upstreamFd = descriptor(upstream);
    if (this.#closed || clientFd === undefined || upstreamFd === undefined
      || client.readableLength > 0 || upstream.readableLength > 0 || upstream.writableLength > 0) {
      return this.#fallBack(client, upstream, spec, onEnd);
    }
    this.#handle ??= this.addon.create(this.threads, (batch) => this.#ended(batch));
    const id = this.#nextId++;
    try {
      this.addon.add(this.#handle, id, clientFd, upstreamFd, spec.idleTimeoutMs, spec.header);
    } catch {
      return this.#fallBack(client, upstream, spec, onEnd); // EMFILE: the duplicates did not fit
    }
    this.#open.set(id, onEnd);
    // The relay holds duplicates: closing Node's descriptors leaves the connections up.
    client.destroy();
    upstream.destroy();
    return () => { if (this.#open.has(id) && this.#handle) this.addon.cut(this.#handle, id); };
  }

  /** Connections the native side holds now. */
  get size(): number {
    return this.#open.size;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handle) this.addon.close(this.#handle);
    const left = [...this.#open.values()];
    this.#open.clear();
    // Their byte counts stayed in the threads: what is known is that they were cut.
    for (const onEnd of left) onEnd({ bytesIn: 0, bytesOut: 0, reason: 'cut' });
    this.#fallback.close();
  }

  #fallBack(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void {
    this.fallbacks++;
    return this.#fallback.relay(client, upstream, spec, onEnd);
  }

  /** Ends reported by the threads: [id, bytesIn, bytesOut, reason] per connection. */
  #ended(batch: Float64Array): void {
    for (let i = 0; i + 3 < batch.length; i += 4) {
      const id = batch[i]!;
      const onEnd = this.#open.get(id);
      if (!onEnd) continue;
      this.#open.delete(id);
      onEnd({ bytesIn: batch[i + 1]!, bytesOut: batch[i + 2]!, reason: REASONS[batch[i + 3]!] ?? 'reset' });
    }
  }
}

/**
 * The relay a proxy should use: native when the addon loads and `prefer` allows it, else
 * pipe(). `why` says why not native, for the startup log.
 */
export function createRelay(prefer: 'native' | 'pipe', threads: number): { relay: Relay; why?: string } {
  if (prefer === 'pipe') return { relay: new PipeRelay(), why: 'pipe relay chosen' };
  const addon = loadRelayAddon();
  if (addon instanceof RelayLoadError) return { relay: new PipeRelay(), why: addon.message };
  return { relay: new NativeRelay(addon, threads) };
}
