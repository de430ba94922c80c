/**
 * A list+watch cache that does not die. @kubernetes/client-node's informer stops for
 * good on any error but 410, and its watch has no timeout, so a silently dead
 * connection never fires (STYLE.md). This one:
 *  - asks the server to end each watch after `watchTimeoutSeconds` (it then re-watches
 *    from the last resourceVersion: cheap, and proves the connection alive);
 *  - runs a watchdog that aborts a watch silent for longer than that plus a grace;
 *  - on an error waits a capped exponential backoff and tries again, for ever;
 *  - relists when the server says the resourceVersion expired (410 Gone).
 * Events go to one handler as (type, object); the cache answers get/list.
 */
import type { Scheduler } from '../lib/controller/workqueue.js';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** The two calls an informer needs; kube/client.ts (KubeAPI.source) makes them from a KubeConfig. */
export interface ListWatchSource<T extends KubeObject> {
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  watch(
    resourceVersion: string,
    timeoutSeconds: number,
    onEvent: (type: WatchEventType, obj: T) => void,
    onDone: (err: unknown) => void,
  ): Promise<{ abort(): void }>;
}

export type InformerEvent = 'add' | 'update' | 'delete';

/** Node's timers as a Scheduler: what informers, work queues and electors run on outside tests. */
export const realScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface InformerOptions {
  readonly scheduler: Scheduler;
  /** The server ends each watch after this (Kubernetes' own default is 5–10 min). */
  readonly watchTimeoutSeconds?: number;
  /** Extra silence the watchdog allows past the server's timeout before aborting. */
  readonly watchdogGraceMs?: number;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  readonly onError?: (err: unknown, retryInMs: number) => void;
  /**
   * Keeps only what the consumer reads: managedFields and the rest of a Service are most
   * of its size, and a cache of thousands of them is most of the process's memory.
   */
  readonly transform?: (obj: never) => unknown;
}

export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : `${obj.metadata?.name}`;
}

export class Informer<T extends KubeObject> {
  readonly #cache = new Map<string, T>();
  #resourceVersion = '';
  #request: { abort(): void } | undefined;
  #generation = 0;
  #failures = 0;
  #retryTimer: unknown;
  #watchdog: unknown;
  #closed = false;
  #started = false;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  readonly #opts: Required<Omit<InformerOptions, 'onError' | 'transform'>> & Pick<InformerOptions, 'onError'>;
  readonly #transform: (obj: T) => T;

  constructor(
    private readonly source: ListWatchSource<T>,
    private readonly handler: (event: InformerEvent, obj: T, old: T | undefined) => void,
    options: InformerOptions,
  ) {
    this.#opts = { watchTimeoutSeconds: 60, watchdogGraceMs: 15_000, backoffBaseMs: 200, backoffMaxMs: 30_000, ...options };
    this.#transform = (options.transform as ((obj: T) => T) | undefined) ?? ((obj) => obj);
  }

  get(key: string): T | undefined {
    return this.#cache.get(key);
  }

  list(): T[] {
    return [...this.#cache.values()];
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first list has filled the cache. */
  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    void this.#relist();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#request?.abort();
    this.#request = undefined;
    this.#opts.scheduler.clearTimeout(this.#retryTimer);
    this.#opts.scheduler.clearTimeout(this.#watchdog);
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  async #relist(): Promise<void> {
    const gen = ++this.#generation;
    let listed: { items: T[]; resourceVersion: string };
    try {
      listed = await this.source.list();
    } catch (err) {
      return this.#fail(gen, err);
    }
    if (gen !== this.#generation) return;
    const fresh = new Map(listed.items.map((o) => [objectKey(o), this.#transform(o)]));
    for (const [key, old] of this.#cache) {
      if (!fresh.has(key)) {
        this.#cache.delete(key);
        this.handler('delete', old, old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.#cache.get(key);
      this.#cache.set(key, obj);
      if (old === undefined) this.handler('add', obj, undefined);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.handler('update', obj, old);
    }
    this.#resourceVersion = listed.resourceVersion;
    if (!this.#synced) {
      this.#synced = true;
      for (const w of this.#syncWaiters.splice(0)) w();
    }
    await this.#watch(gen);
  }

  async #watch(gen: number): Promise<void> {
    this.#armWatchdog(gen);
    try {
      const request = await this.source.watch(
        this.#resourceVersion,
        this.#opts.watchTimeoutSeconds,
        (type, obj) => this.#onEvent(gen, type, obj),
        (err) => this.#onDone(gen, err),
      );
      if (gen !== this.#generation) request.abort();
      else this.#request = request;
    } catch (err) {
      this.#fail(gen, err);
    }
  }

  #onEvent(gen: number, type: WatchEventType, raw: T): void {
    if (gen !== this.#generation) return;
    const obj = type === 'ERROR' || type === 'BOOKMARK' ? raw : this.#transform(raw);
    this.#armWatchdog(gen);
    this.#failures = 0;
    if (type === 'ERROR') {
      // A Status object; 410 Gone: our resourceVersion is too old, relist when the watch ends.
      if ((raw as { code?: number }).code === 410) this.#resourceVersion = '';
      return;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.#resourceVersion = rv;
    if (type === 'BOOKMARK') return;
    const key = objectKey(obj);
    const old = this.#cache.get(key);
    if (type === 'DELETED') {
      this.#cache.delete(key);
      this.handler('delete', obj, old);
    } else {
      this.#cache.set(key, obj);
      this.handler(old === undefined ? 'add' : 'update', obj, old);
    }
  }

  #onDone(gen: number, err: unknown): void {
    if (gen !== this.#generation || this.#closed) return;
    this.#request = undefined;
    const code = (err as { statusCode?: number; code?: number } | null)?.statusCode ?? (err as { code?: number } | null)?.code;
    if (err && code !== 410) return this.#fail(gen, err);
    if (code === 410) this.#resourceVersion = '';
    // A normal end (server timeout): watch again at once, or relist if we lost our place.
    if (this.#resourceVersion === '') void this.#relist();
    else {
      this.#generation++;
      void this.#watch(this.#generation);
    }
  }

  #fail(gen: number, err: unknown): void {
    if (gen !== this.#generation || this.#closed) return;
    this.#generation++;
    this.#request?.abort();
    this.#request = undefined;
    this.#opts.scheduler.clearTimeout(this.#watchdog);
    this.#failures++;
    const delay = Math.min(this.#opts.backoffMaxMs, this.#opts.backoffBaseMs * 2 ** Math.min(this.#failures - 1, 20));
    this.#opts.onError?.(err, delay);
    this.#retryTimer = this.#opts.scheduler.setTimeout(() => void this.#relist(), delay);
  }

  #armWatchdog(gen: number): void {
    this.#opts.scheduler.clearTimeout(this.#watchdog);
    this.#watchdog = this.#opts.scheduler.setTimeout(() => {
      this.#fail(gen, new Error(`watch silent for ${this.#opts.watchTimeoutSeconds}s plus ${this.#opts.watchdogGraceMs}ms grace`));
    }, this.#opts.watchTimeoutSeconds * 1000 + this.#opts.watchdogGraceMs);
  }
}
