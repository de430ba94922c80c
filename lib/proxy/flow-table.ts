/**
 * UDP has no connections, so the proxy invents "flows": one per client address, pinned to
 * the backend picked for its first datagram, forgotten after an idle time. The table is
 * bounded: a flood of spoofed sources must not grow memory without limit, so when full the
 * least recently active flow is evicted (and counted). Pure: time comes in as `now` (ms);
 * the I/O side owns the sockets and closes what `touch`/`expire` hand back.
 *
 * A Map keeps insertion order; deleting and re-inserting on activity makes that order the
 * LRU order, so the oldest flow is always the first key (O(1) eviction, no heap).
 */

export interface FlowTableOptions {
  readonly maxFlows: number;
  readonly idleTimeoutMs: number;
}

interface Entry<V> {
  value: V;
  last: number;
}

export class FlowTable<V> {
  readonly #flows = new Map<string, Entry<V>>();
  evictions = 0;
  expirations = 0;

  constructor(private readonly options: FlowTableOptions) {}

  get size(): number {
    return this.#flows.size;
  }

  /** The live flow for `key`, refreshed as most recent; undefined when absent or idle too long. */
  get(key: string, now: number): V | undefined {
    const e = this.#flows.get(key);
    if (!e) return undefined;
    if (now - e.last >= this.options.idleTimeoutMs) return undefined;
    this.#flows.delete(key);
    e.last = now;
    this.#flows.set(key, e);
    return e.value;
  }

  /**
   * Adds a flow; returns the values pushed out to make room (oldest first), and an idle
   * flow previously under the same key, so the caller can close their sockets.
   */
  add(key: string, value: V, now: number): V[] {
    const out: V[] = [];
    const old = this.#flows.get(key);
    if (old) { this.#flows.delete(key); out.push(old.value); }
    while (this.#flows.size >= this.options.maxFlows) {
      const oldest = this.#flows.keys().next();
      if (oldest.done) break;
      out.push(this.#flows.get(oldest.value)!.value);
      this.#flows.delete(oldest.value);
      this.evictions++;
    }
    this.#flows.set(key, { value, last: now });
    return out;
  }

  /** Removes one flow (its upstream failed); true when it was there. */
  delete(key: string): boolean {
    return this.#flows.delete(key);
  }

  /** Removes flows idle for the timeout; returns them for closing. Stops at the first live one (LRU order). */
  expire(now: number): V[] {
    const out: V[] = [];
    for (const [key, e] of this.#flows) {
      if (now - e.last < this.options.idleTimeoutMs) break;
      this.#flows.delete(key);
      out.push(e.value);
      this.expirations++;
    }
    return out;
  }

  /** Removes the flows `drop` says so of (their backend went away); returns them for closing. */
  removeIf(drop: (value: V) => boolean): V[] {
    const out: V[] = [];
    for (const [key, e] of this.#flows) if (drop(e.value)) { this.#flows.delete(key); out.push(e.value); }
    return out;
  }

  /** Empties the table, returning every flow (for close()). */
  clear(): V[] {
    const out = [...this.#flows.values()].map((e) => e.value);
    this.#flows.clear();
    return out;
  }
}
