/**
 * Leader election on a coordination.k8s.io/v1 Lease, the decision half (client-go's
 * leaderelection, in pure form). The shell reads the Lease, asks `decide`, and writes
 * the returned spec with the Lease's resourceVersion, so two candidates racing for one
 * expired Lease cannot both win: the API server refuses the second write (409).
 *
 * Expiry is judged by *our* clock from when we last saw the record change, never by the
 * times written in it, so clock skew between nodes cannot make two leaders (client-go
 * does the same: observedTime).
 */

export interface LeaseSpec {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** Microsecond timestamps as ISO strings, as the API writes them. */
  readonly acquireTime: string;
  readonly renewTime: string;
  readonly leaseTransitions: number;
}

export interface Observation {
  /** The record as last read, compared to detect change. */
  readonly record: string;
  /** Our monotonic time (ms) when `record` was first seen. */
  readonly at: number;
}

export type LeaseDecision =
  | { readonly action: 'create' | 'renew' | 'acquire'; readonly spec: LeaseSpec }
  | { readonly action: 'wait'; readonly holder: string; readonly expiresInMs: number };

export interface DecideInput {
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  /** The Lease's spec as read, or undefined if there is none. */
  readonly current: Partial<LeaseSpec> | undefined;
  /** What we saw last time, to judge expiry on our own clock. */
  readonly observed: Observation | undefined;
  /** Our monotonic clock, ms. */
  readonly now: number;
  /** Wall-clock time for the timestamps written to the Lease. */
  readonly wallTime: Date;
}

export function observe(current: Partial<LeaseSpec> | undefined, previous: Observation | undefined, now: number): Observation {
  const record = JSON.stringify([current?.holderIdentity ?? '', current?.renewTime ?? '', current?.leaseTransitions ?? 0]);
  return previous?.record === record ? previous : { record, at: now };
}

export function decide(input: DecideInput): LeaseDecision {
  const stamp = microTime(input.wallTime);
  const { current, identity, leaseDurationSeconds } = input;
  if (current === undefined) {
    return { action: 'create', spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 } };
  }
  const holder = current.holderIdentity ?? '';
  const transitions = current.leaseTransitions ?? 0;
  if (holder === identity) {
    return {
      action: 'renew',
      spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: current.acquireTime ?? stamp, renewTime: stamp, leaseTransitions: transitions },
    };
  }
  const observed = observe(current, input.observed, input.now);
  const duration = (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
  const expiresInMs = observed.at + duration - input.now;
  // An empty holder is a Lease released on graceful shutdown: free at once.
  if (holder !== '' && expiresInMs > 0) return { action: 'wait', holder, expiresInMs };
  return {
    action: 'acquire',
    spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: transitions + 1 },
  };
}

/** The spec a leader writes on graceful shutdown so a successor need not wait out the lease. */
export function releasedSpec(current: LeaseSpec, wallTime: Date): LeaseSpec {
  // client-go writes an empty holder and a 1 s duration on release.
  return { ...current, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(wallTime) };
}

/** RFC 3339 with microseconds: the MicroTime format of coordination.k8s.io/v1. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
