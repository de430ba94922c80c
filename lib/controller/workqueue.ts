/**
 * A work queue keyed by `namespace/name`, with client-go's semantics: a key is queued at
 * most once however often it is added; a key being processed is not handed out again
 * until `done()`, and is re-queued then if it was added meanwhile; failed keys come back
 * after an exponential backoff. Reconciles read the current cache, so coalescing loses
 * nothing. Time is injected (a Scheduler), so tests drive it without real timers.
 */

export interface Scheduler {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface BackoffOptions {
  /** client-go's ItemExponentialFailureRateLimiter defaults are 5 ms and 1000 s. */
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5, maxMs: 1000_000 };

export class WorkQueue {
  readonly #queue: string[] = [];
  #head = 0;
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #delayed = new Map<string, unknown>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #closed = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
  ) {}

  get length(): number {
    return this.#queue.length - this.#head;
  }

  add(key: string): void {
    if (this.#closed || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
      return;
    }
    this.#queue.push(key);
  }

  /** Adds `key` after `ms`; a later call for the same key replaces an earlier, later-firing one. */
  addAfter(key: string, ms: number): void {
    if (this.#closed) return;
    if (ms <= 0) return this.add(key);
    const pending = this.#delayed.get(key);
    if (pending !== undefined) this.scheduler.clearTimeout(pending);
    this.#delayed.set(key, this.scheduler.setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms));
  }

  /** Re-adds a failed key after its backoff: base × 2^(failures−1), capped. */
  addRateLimited(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(failures - 1, 52));
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears a key's failure count after a successful reconcile. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key, or undefined once closed; waits while the queue is empty. */
  get(): Promise<string | undefined> {
    if (this.length > 0) return Promise.resolve(this.#take());
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys, cancels delayed adds, wakes every waiter with undefined. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of this.#delayed.values()) this.scheduler.clearTimeout(handle);
    this.#delayed.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  #take(): string {
    const key = this.#queue[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }
}
