/**
 * Which backend takes a new connection, for one Service. Pure: the proxy tells it what
 * exists (update), what is healthy (setHealthy) and what opened and closed; it answers
 * pick(). Time comes in as an argument, for ClientIP affinity.
 *
 * Rules (issue 4): `ready` backends take new connections; `terminating` ones get none but
 * keep what they have; a backend is only picked while healthy.
 */

export type BalanceMode = 'roundRobin' | 'leastConnections';

export interface BackendSpec {
  /** `ip:port`, unique within the Service. */
  readonly id: string;
  readonly state: 'ready' | 'terminating';
}

export interface BalancerOptions {
  readonly mode: BalanceMode;
  /** ClientIP affinity (spec.sessionAffinity), in ms; 0 turns it off. Kubernetes' default is 10800 s. */
  readonly affinityTimeoutMs: number;
}

export type Pick = { readonly backend: string } | { readonly none: 'noBackend' | 'noHealthyBackend' };

interface BackendState {
  state: 'ready' | 'terminating';
  healthy: boolean;
  active: number;
}

export class Balancer {
  readonly #backends = new Map<string, BackendState>();
  #order: string[] = [];
  #next = 0;
  readonly #affinity = new Map<string, { backend: string; until: number }>();

  constructor(private readonly options: BalancerOptions) {}

  /**
   * Installs the backend set. Backends that stay keep their counters and health; new
   * ones start as `healthyByDefault` says (false when active checks must prove them).
   */
  update(backends: readonly BackendSpec[], healthyByDefault: boolean): void {
    const ids = new Set(backends.map((b) => b.id));
    for (const id of this.#backends.keys()) if (!ids.has(id)) this.#backends.delete(id);
    for (const b of backends) {
      const cur = this.#backends.get(b.id);
      if (cur) cur.state = b.state;
      else this.#backends.set(b.id, { state: b.state, healthy: healthyByDefault, active: 0 });
    }
    this.#order = [...ids].sort();
    this.#next %= Math.max(1, this.#order.length);
  }

  setHealthy(id: string, healthy: boolean): void {
    const b = this.#backends.get(id);
    if (b) b.healthy = healthy;
  }

  isHealthy(id: string): boolean {
    return this.#backends.get(id)?.healthy ?? false;
  }

  /** The backend for a new connection from `client`, never one in `exclude` (already failed). */
  pick(client: string, now: number, exclude?: ReadonlySet<string>): Pick {
    if (this.#backends.size === 0) return { none: 'noBackend' };
    const usable = (id: string) => {
      const b = this.#backends.get(id);
      return b !== undefined && b.state === 'ready' && b.healthy && !exclude?.has(id);
    };
    if (this.options.affinityTimeoutMs > 0) {
      const sticky = this.#affinity.get(client);
      if (sticky && sticky.until > now && usable(sticky.backend)) {
        sticky.until = now + this.options.affinityTimeoutMs;
        return { backend: sticky.backend };
      }
    }
    const chosen = this.options.mode === 'leastConnections' ? this.#least(usable) : this.#roundRobin(usable);
    if (chosen === undefined) return { none: 'noHealthyBackend' };
    if (this.options.affinityTimeoutMs > 0) this.#affinity.set(client, { backend: chosen, until: now + this.options.affinityTimeoutMs });
    return { backend: chosen };
  }

  /** The backends a new connection may go to now (ready and healthy), in round-robin order. */
  usable(): string[] {
    return this.#order.filter((id) => {
      const b = this.#backends.get(id)!;
      return b.state === 'ready' && b.healthy;
    });
  }

  opened(id: string): void {
    const b = this.#backends.get(id);
    if (b) b.active++;
  }

  closed(id: string): void {
    const b = this.#backends.get(id);
    if (b && b.active > 0) b.active--;
  }

  active(id: string): number {
    return this.#backends.get(id)?.active ?? 0;
  }

  /** Drops expired affinity entries; the proxy calls it now and then, so the map stays bounded by live clients. */
  expireAffinity(now: number): number {
    let n = 0;
    for (const [client, a] of this.#affinity) if (a.until <= now) { this.#affinity.delete(client); n++; }
    return n;
  }

  #roundRobin(usable: (id: string) => boolean): string | undefined {
    for (let i = 0; i < this.#order.length; i++) {
      const id = this.#order[(this.#next + i) % this.#order.length]!;
      if (usable(id)) {
        this.#next = (this.#next + i + 1) % this.#order.length;
        return id;
      }
    }
    return undefined;
  }

  /** Fewest active connections; ties go round-robin so equal backends share the load. */
  #least(usable: (id: string) => boolean): string | undefined {
    let best: string | undefined;
    let bestActive = Infinity;
    for (let i = 0; i < this.#order.length; i++) {
      const id = this.#order[(this.#next + i) % this.#order.length]!;
      const active = this.#backends.get(id)!.active;
      if (usable(id) && active < bestActive) { best = id; bestActive = active; }
    }
    if (best !== undefined) this.#next = (this.#order.indexOf(best) + 1) % this.#order.length;
    return best;
  }
}
