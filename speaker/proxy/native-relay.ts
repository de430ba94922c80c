/**
 * The native relay (native/*.c, built by `npm run build` into dist/native/): epoll threads
 * that move bytes in C. Two ways in:
 * - `relay()`, the Relay interface: takes a pair Node connected (descriptors duplicated,
 *   Node's sockets destroyed), so an established connection keeps no stream objects. Falls
 *   back to the pipe relay for a connection it cannot take (bytes already buffered in Node,
 *   no descriptor, descriptors exhausted): it still works, just slower.
 * - `listen()`/`connect()`/`reject()`: the threads accept and connect themselves and ask
 *   JavaScript only for the decisions (native-frontend.ts), so no Node socket exists at all.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { formatIP } from '../../lib/ip/address.js';
import { PipeRelay, type Relay, type RelayEnd, type RelayEndReason, type RelaySpec } from './relay.js';

/** The addon's exports (native/relay.c). */
export interface RelayAddon {
  create(workers: number, onReports: (batch: Float64Array) => void): object;
  listen(relay: object, listenerId: number, ip: string, port: number, keepAliveS: number): number;
  unlisten(relay: object, listenerId: number): void;
  connect(relay: object, id: number, ip: string, port: number, timeoutMs: number, idleMs: number, keepAliveS: number, header?: Buffer): void;
  reject(relay: object, id: number): void;
  add(relay: object, clientFd: number, upstreamFd: number, idleMs: number, header?: Buffer): number;
  cut(relay: object, id: number): void;
  close(relay: object): void;
}

/** Report kinds and width (native/relay.h EV_*). */
const EV_END = 0;
const EV_ACCEPTED = 1;
const EV_CONNECTED = 2;
const EV_CONNECT_FAILED = 3;
const REPORT_WIDTH = 8;

/** Told of clients the threads accepted on a listener; answers with connect() or reject(). */
export type AcceptHandler = (id: number, clientIp: string, clientPort: number) => void;

/** One connect attempt's outcome. `connected` returns what to call when the connection ends. */
export interface ConnectHandler {
  connected(connectMs: number): (end: RelayEnd) => void;
  failed(errno: number): void;
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
  #nextListener = 1;
  #closed = false;
  readonly #open = new Map<number, (end: RelayEnd) => void>();
  readonly #connecting = new Map<number, ConnectHandler>();
  readonly #listeners = new Map<number, AcceptHandler>();
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
    let id: number;
    try {
      id = this.addon.add(this.#started(), clientFd, upstreamFd, spec.idleTimeoutMs, spec.header);
    } catch {
      return this.#fallBack(client, upstream, spec, onEnd); // EMFILE: the duplicates did not fit
    }
    this.#open.set(id, onEnd);
    // The relay holds duplicates: closing Node's descriptors leaves the connections up.
    client.destroy();
    upstream.destroy();
    return () => this.cut(id);
  }

  /** Connections the native side holds now. */
  get size(): number {
    return this.#open.size;
  }

  #started(): object {
    this.#handle ??= this.addon.create(this.threads, (batch) => this.#reports(batch));
    return this.#handle;
  }

  /**
   * Listens on ip:port in the threads; `onAccept` hears of every client. Returns the id for
   * unlisten() and the bound port. Throws an Error whose `code` is the errno name (EADDRINUSE).
   */
  listen(ip: string, port: number, keepAliveMs: number, onAccept: AcceptHandler): { id: number; port: number } {
    if (this.#closed) throw Object.assign(new Error('relay is closed'), { code: 'BEACON_RELAY_CLOSED' });
    const id = this.#nextListener++;
    const bound = this.addon.listen(this.#started(), id, ip, port, Math.ceil(keepAliveMs / 1000));
    this.#listeners.set(id, onAccept);
    return { id, port: bound };
  }

  unlisten(id: number): void {
    this.#listeners.delete(id);
    if (this.#handle && !this.#closed) this.addon.unlisten(this.#handle, id);
  }

  /** Connects accepted client `id` to ip:port; exactly one of `handler`'s calls follows. */
  connect(id: number, ip: string, port: number, options: { timeoutMs: number; idleTimeoutMs: number; keepAliveMs: number; header?: Buffer | undefined }, handler: ConnectHandler): void {
    if (this.#closed || !this.#handle) { handler.failed(0); return; }
    this.#connecting.set(id, handler);
    this.addon.connect(this.#handle, id, ip, port, options.timeoutMs, options.idleTimeoutMs, Math.ceil(options.keepAliveMs / 1000), options.header);
  }

  /** Closes accepted client `id` without connecting it. */
  reject(id: number): void {
    this.#connecting.delete(id);
    if (this.#handle && !this.#closed) this.addon.reject(this.#handle, id);
  }

  /**
   * Ends connection `id` whatever its state: relayed (its end is reported), connecting (the
   * attempt fails) or accepted. Ids are never reused, so a late cut touches nothing else.
   */
  cut(id: number): void {
    if (this.#handle && !this.#closed) this.addon.cut(this.#handle, id);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handle) this.addon.close(this.#handle);
    const left = [...this.#open.values()];
    this.#open.clear();
    this.#connecting.clear();
    this.#listeners.clear();
    // Their byte counts stayed in the threads: what is known is that they were cut.
    for (const onEnd of left) onEnd({ bytesIn: 0, bytesOut: 0, reason: 'cut' });
    this.#fallback.close();
  }

  #fallBack(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void {
    this.fallbacks++;
    return this.#fallback.relay(client, upstream, spec, onEnd);
  }

  /** Reports from the threads, REPORT_WIDTH numbers each (native/addon.c). */
  #reports(batch: Float64Array): void {
    for (let i = 0; i + REPORT_WIDTH <= batch.length; i += REPORT_WIDTH) {
      const kind = batch[i]!;
      const id = batch[i + 1]!;
      if (kind === EV_END) {
        const onEnd = this.#open.get(id);
        if (!onEnd) continue;
        this.#open.delete(id);
        onEnd({ bytesIn: batch[i + 2]!, bytesOut: batch[i + 3]!, reason: REASONS[batch[i + 4]!] ?? 'reset' });
      } else if (kind === EV_ACCEPTED) {
        const onAccept = this.#listeners.get(batch[i + 2]!);
        const port = batch[i + 3]!;
        const clientIp = port >= 65536 ? ipv6(batch, i + 4) : ipv4(batch[i + 4]!);
        if (onAccept) onAccept(id, clientIp, port % 65536);
        else this.reject(id); // its listener is gone
      } else {
        const handler = this.#connecting.get(id);
        if (!handler) continue;
        this.#connecting.delete(id);
        if (kind === EV_CONNECTED) this.#open.set(id, handler.connected(batch[i + 2]!));
        else if (kind === EV_CONNECT_FAILED) handler.failed(batch[i + 2]!);
      }
    }
  }
}

function ipv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function ipv6(batch: Float64Array, at: number): string {
  let value = 0n;
  for (let k = 0; k < 4; k++) value = (value << 32n) | BigInt(batch[at + k]!);
  return formatIP({ family: 6, value });
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
