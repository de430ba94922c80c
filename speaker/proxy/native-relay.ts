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
  create(workers: number, onReports: (batch: Float64Array, length: number) => void): object;
  listen(relay: object, listenerId: number, ip: string, port: number, keepAliveS: number): number;
  unlisten(relay: object, listenerId: number): void;
  connect(relay: object, id: number, tag: number, ip: string, port: number, timeoutMs: number, idleMs: number, keepAliveS: number, header?: Buffer): void;
  reject(relay: object, id: number): void;
  add(relay: object, clientFd: number, upstreamFd: number, idleMs: number, header?: Buffer): number;
  cut(relay: object, id: number): void;
  cutTag(relay: object, listenerId: number, tag: number): void;
  routes(relay: object, listenerId: number, gen: number, backends: (string | number)[], timeoutMs: number, idleMs: number, keepAliveS: number, maxOpen: number): void;
  udpListen(relay: object, listenerId: number, ip: string, port: number, idleMs: number, maxFlows: number): number;
  udpUnlisten(relay: object, listenerId: number): void;
  udpConnect(relay: object, flowId: number, listenerId: number, tag: number, ip: string, port: number): void;
  udpReject(relay: object, flowId: number): void;
  udpCounters(relay: object, listenerId: number): [bytesIn: number, bytesOut: number, flows: number, evictions: number, dropped: number, refused: number];
  close(relay: object): void;
}

/** Report kinds and width (native/relay.h EV_*). */
const EV_END = 0;
const EV_ACCEPTED = 1;
const EV_CONNECTED = 2;
const EV_CONNECT_FAILED = 3;
const EV_FLOW = 4;
const EV_FLOW_END = 5;
const EV_ROUTES = 6;
const EV_REFUSED = 7;
const REPORT_WIDTH = 8;
/** An accept report's port word: port, + IPV6_FLAG for IPv6, + PICKED_UNIT x (tag + 1) when its route connects it (native/pump.c emit_peer). */
const IPV6_FLAG = 65536;
const PICKED_UNIT = 131072;

/**
 * What a listener's owner hears about its connections. Every report names the connection
 * by id and by the tag its connect() was given (the owner's backend slot), so the owner
 * keeps no object, closure or map entry per established connection (issue 4: RSS per idle
 * connection).
 */
export interface ListenerEvents {
  /**
   * A client was accepted. `routed`: the tag of the route backend the threads are already
   * connecting it to (connected() or connectFailed() follows), or -1: answer with connect()
   * or reject().
   */
  accepted(id: number, clientIp: string, clientPort: number, routed: number): void;
  /** One relay thread took the listener's route `gen` (routes()); every thread does, in order. */
  routesTaken(gen: number): void;
  /** The threads closed a client because the route's maxOpen connections were open. */
  refused(): void;
  /** The upstream connected; the threads relay from here on. */
  connected(id: number, tag: number, connectMs: number): void;
  /** The upstream could not be reached (errno; ECANCELED after a cut): connect() elsewhere or reject(). */
  connectFailed(id: number, tag: number, errno: number): void;
  /** A relayed connection ended. */
  ended(tag: number, bytesIn: number, bytesOut: number, reason: RelayEndReason): void;
}

/** Why a UDP flow ended (native/relay.h R_*): idle, evicted, refused (ICMP unreachable) or cut. */
export type FlowEndReason = 'idle' | 'evicted' | 'refused' | 'cut' | 'reset' | 'noResources';
const FLOW_REASONS: Record<number, FlowEndReason> = { 2: 'idle', 3: 'cut', 4: 'evicted', 5: 'refused', 6: 'noResources' };

/** What a UDP frontend hears about its flows (the same tagging as ListenerEvents). */
export interface FlowEvents {
  /** A new client address; answer with udpConnect() or udpReject(). */
  flow(id: number, clientIp: string, clientPort: number): void;
  /** A flow udpConnect() was called for ended. */
  flowEnded(tag: number, bytesIn: number, bytesOut: number, reason: FlowEndReason): void;
}

export interface UdpCounters {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly flows: number;
  readonly evictions: number;
  /** Datagrams dropped while their new flow waited for a decision. */
  readonly dropped: number;
  /** Datagrams dropped because their client was refused within the last second (native/udp.h REFUSED_MS). */
  readonly refused: number;
}

/** cutTag()'s tag for every connection of a listener. */
export const ALL_TAGS = -1;
/** cutTag()'s tag that forgets a UDP frontend's refused clients (native/udp.h REFUSED_MS). */
export const REFUSED_CLIENTS = -2;

/** Indexed by the reason code the addon reports. */
const REASONS: readonly RelayEndReason[] = ['done', 'reset', 'idleTimeout', 'cut'];

/** From dist/speaker/proxy/ (compiled) and from speaker/proxy/ (sources under the test loader). */
const ADDON_PATHS = ['../../native/beacon_relay.node', '../../dist/native/beacon_relay.node'];

export class RelayLoadError extends Error {
  readonly code = 'BEACON_RELAY_UNAVAILABLE';
}

export class RelayClosedError extends Error {
  readonly code = 'BEACON_RELAY_CLOSED';
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
  /** Pairs taken over by relay() (the handoff path): what to call at their end. */
  readonly #open = new Map<number, (end: RelayEnd) => void>();
  readonly #listeners = new Map<number, ListenerEvents>();
  readonly #udpListeners = new Map<number, FlowEvents>();
  readonly #fallback = new PipeRelay();
  /** Connections the native side could not take and the pipe relay carries instead. */
  fallbacks = 0;

  /** No I/O: the threads start with the first connection. */
  constructor(private readonly addon: RelayAddon, private readonly threadCount: number) {}

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

  /** Relay threads: each acknowledges every routes() call. */
  get threads(): number {
    return this.threadCount;
  }

  /** Connections the native side holds now. */
  get size(): number {
    return this.#open.size;
  }

  #started(): object {
    this.#handle ??= this.addon.create(this.threadCount, (batch, length) => this.#reports(batch, length));
    return this.#handle;
  }

  /**
   * Listens on ip:port in the threads; `events` hears of every client and its connection.
   * Returns the id for unlisten(), cutTag() and detach(), and the bound port. Throws an
   * Error whose `code` is the errno name (EADDRINUSE).
   */
  listen(ip: string, port: number, keepAliveMs: number, events: ListenerEvents): { id: number; port: number } {
    if (this.#closed) throw new RelayClosedError('relay is closed');
    const id = this.#nextListener++;
    const bound = this.addon.listen(this.#started(), id, ip, port, Math.ceil(keepAliveMs / 1000));
    this.#listeners.set(id, events);
    return { id, port: bound };
  }

  /** Stops accepting; the listener's connections go on and are still reported. */
  unlisten(id: number): void {
    if (this.#handle && !this.#closed) this.addon.unlisten(this.#handle, id);
  }

  /** Forgets a listener once its owner is done with it (after unlisten() and its last end). */
  detach(id: number): void {
    this.#listeners.delete(id);
  }

  /**
   * Connects accepted client `id` to ip:port; its listener hears connected() or
   * connectFailed() with `tag`. False: the relay is closed and nothing will be heard.
   */
  connect(id: number, tag: number, ip: string, port: number, options: { timeoutMs: number; idleTimeoutMs: number; keepAliveMs: number; header?: Buffer | undefined }): boolean {
    if (this.#closed || !this.#handle) return false;
    this.addon.connect(this.#handle, id, tag, ip, port, options.timeoutMs, options.idleTimeoutMs, Math.ceil(options.keepAliveMs / 1000), options.header);
    return true;
  }

  /**
   * Listener `listenerId`'s route, version `gen`: the threads connect each new client to the
   * next of `backends` in turn (its report says which), and close one over `maxOpen` open
   * connections (refused()). With no backends there is no route: they ask as before.
   * Each thread acknowledges it (routesTaken). False: the relay is closed.
   */
  routes(listenerId: number, gen: number, backends: readonly { tag: number; ip: string; port: number }[], options: { timeoutMs: number; idleTimeoutMs: number; keepAliveMs: number; maxOpen: number }): boolean {
    if (this.#closed || !this.#handle) return false;
    const flat: (string | number)[] = [];
    for (const b of backends) flat.push(b.tag, b.ip, b.port);
    this.addon.routes(this.#handle, listenerId, gen, flat, options.timeoutMs, options.idleTimeoutMs, Math.ceil(options.keepAliveMs / 1000), options.maxOpen);
    return true;
  }

  /** Closes accepted client `id` without connecting it. */
  reject(id: number): void {
    if (this.#handle && !this.#closed) this.addon.reject(this.#handle, id);
  }

  /**
   * A UDP frontend on ip:port in the threads: a SO_REUSEPORT socket per thread, each with
   * its share of `maxFlows` (native/addon-udp.c).
   * Returns its id and bound port; throws an Error whose `code` is the errno name.
   */
  udpListen(ip: string, port: number, idleMs: number, maxFlows: number, events: FlowEvents): { id: number; port: number } {
    if (this.#closed) throw new RelayClosedError('relay is closed');
    const id = this.#nextListener++;
    const bound = this.addon.udpListen(this.#started(), id, ip, port, idleMs, maxFlows);
    this.#udpListeners.set(id, events);
    return { id, port: bound };
  }

  /** Closes the UDP frontend; each of its flows is reported ended (cut). */
  udpUnlisten(id: number): void {
    if (this.#handle && !this.#closed) this.addon.udpUnlisten(this.#handle, id);
  }

  /** Forgets a UDP frontend once its owner is done with it. */
  udpDetach(id: number): void {
    this.#udpListeners.delete(id);
  }

  /** Pins flow `flowId` to ip:port; its end is reported with `tag`. False: the relay is closed. */
  udpConnect(flowId: number, listenerId: number, tag: number, ip: string, port: number): boolean {
    if (this.#closed || !this.#handle) return false;
    this.addon.udpConnect(this.#handle, flowId, listenerId, tag, ip, port);
    return true;
  }

  udpReject(flowId: number): void {
    if (this.#handle && !this.#closed) this.addon.udpReject(this.#handle, flowId);
  }

  /** The frontend's live counters (zeros once the relay is closed). */
  udpCounters(listenerId: number): UdpCounters {
    if (!this.#handle || this.#closed) return { bytesIn: 0, bytesOut: 0, flows: 0, evictions: 0, dropped: 0, refused: 0 };
    const [bytesIn, bytesOut, flows, evictions, dropped, refused] = this.addon.udpCounters(this.#handle, listenerId);
    return { bytesIn, bytesOut, flows, evictions, dropped, refused };
  }

  /** Cuts listener `listenerId`'s relayed and connecting connections with `tag` (ALL_TAGS: all). */
  cutTag(listenerId: number, tag: number): void {
    if (this.#handle && !this.#closed) this.addon.cutTag(this.#handle, listenerId, tag);
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
    this.#listeners.clear();
    this.#udpListeners.clear();
    // Their byte counts stayed in the threads: what is known is that they were cut.
    for (const onEnd of left) onEnd({ bytesIn: 0, bytesOut: 0, reason: 'cut' });
    this.#fallback.close();
  }

  #fallBack(client: Socket, upstream: Socket, spec: RelaySpec, onEnd: (end: RelayEnd) => void): () => void {
    this.fallbacks++;
    return this.#fallback.relay(client, upstream, spec, onEnd);
  }

  /** Reports from the threads in batch[0..length), REPORT_WIDTH numbers each (native/addon.c; the array is reused). */
  #reports(batch: Float64Array, length: number): void {
    for (let i = 0; i + REPORT_WIDTH <= length; i += REPORT_WIDTH) {
      const kind = batch[i]!;
      const id = batch[i + 1]!;
      if (kind === EV_ACCEPTED) {
        const events = this.#listeners.get(batch[i + 2]!);
        const word = batch[i + 3]!;
        const picked = Math.floor(word / PICKED_UNIT);
        const port = word - picked * PICKED_UNIT;
        if (!events) { this.cut(id); continue; } // its listener is gone (cut: its route may be connecting it)
        const clientIp = port >= IPV6_FLAG ? ipv6(batch, i + 4) : ipv4(batch[i + 4]!);
        events.accepted(id, clientIp, port % IPV6_FLAG, picked - 1);
        continue;
      }
      if (kind === EV_ROUTES) { // [gen, listener]
        this.#listeners.get(batch[i + 2]!)?.routesTaken(id);
        continue;
      }
      if (kind === EV_REFUSED) { // [0, listener]
        this.#listeners.get(batch[i + 2]!)?.refused();
        continue;
      }
      if (kind === EV_FLOW) {
        const events = this.#udpListeners.get(batch[i + 2]!);
        const port = batch[i + 3]!;
        if (!events) { this.udpReject(id); continue; }
        events.flow(id, port >= 65536 ? ipv6(batch, i + 4) : ipv4(batch[i + 4]!), port % 65536);
        continue;
      }
      if (kind === EV_FLOW_END) { // [id, in, out, reason, listener, tag]
        this.#udpListeners.get(batch[i + 5]!)?.flowEnded(batch[i + 6]!, batch[i + 2]!, batch[i + 3]!, FLOW_REASONS[batch[i + 4]!] ?? 'reset');
        continue;
      }
      // END [id, in, out, reason, listener, tag]; CONNECTED/FAILED [id, ms|errno, listener, tag]
      const listenerId = batch[i + (kind === EV_END ? 5 : 3)]!;
      const tag = batch[i + (kind === EV_END ? 6 : 4)]!;
      if (listenerId === 0) { // a pair relay() took over
        const onEnd = this.#open.get(id);
        if (kind !== EV_END || !onEnd) continue;
        this.#open.delete(id);
        onEnd({ bytesIn: batch[i + 2]!, bytesOut: batch[i + 3]!, reason: REASONS[batch[i + 4]!] ?? 'reset' });
        continue;
      }
      const events = this.#listeners.get(listenerId);
      if (!events) continue;
      if (kind === EV_END) events.ended(tag, batch[i + 2]!, batch[i + 3]!, REASONS[batch[i + 4]!] ?? 'reset');
      else if (kind === EV_CONNECTED) events.connected(id, tag, batch[i + 2]!);
      else if (kind === EV_CONNECT_FAILED) events.connectFailed(id, tag, batch[i + 2]!);
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
