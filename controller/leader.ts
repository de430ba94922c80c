/**
 * Leader election on a coordination.k8s.io Lease: the loop around lib/election/lease.ts.
 * The leader renews every retry period; a standby polls and takes over once the Lease
 * has gone unrenewed for its duration (judged on its own clock); a leader that cannot
 * renew within the renew deadline steps down before anyone else can take over, so two
 * replicas never write at once. close() releases the Lease so a successor starts at once.
 */
import { decide, observe, releasedSpec, type LeaseSpec, type Observation } from '../lib/election/lease.js';
import type { Scheduler } from '../lib/controller/workqueue.js';
import type { ControllerAPI } from '../kube/client.js';

export interface LeaderOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  /** client-go's defaults are 15/10/2 s. */
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
  readonly scheduler: Scheduler;
  readonly now: () => number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  readonly onError?: (err: unknown) => void;
}

export class LeaderElector {
  #leader = false;
  #lastRenew = 0;
  #observed: Observation | undefined;
  #timer: unknown;
  #closed = false;
  #running: Promise<void> | undefined;

  constructor(
    private readonly api: ControllerAPI,
    private readonly opts: LeaderOptions,
  ) {}

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (this.#closed || this.#running) return;
    this.#running = this.#tick();
  }

  /** Stops the loop; a leader releases the Lease. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.opts.scheduler.clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
    if (!this.#leader) return;
    this.#leader = false; // stepping down on purpose: not a lost Lease
    const held = await this.api.readLease(this.opts.namespace, this.opts.name).catch(() => undefined);
    if (held?.spec.holderIdentity === this.opts.identity) {
      await this.api.replaceLease(this.opts.namespace, this.opts.name, releasedSpec(held.spec as LeaseSpec, new Date()), held.resourceVersion).catch((err) => this.opts.onError?.(err));
    }
  }

  async #tick(): Promise<void> {
    let nextMs = this.opts.retryPeriodSeconds * 1000;
    try {
      const current = await this.api.readLease(this.opts.namespace, this.opts.name);
      const now = this.opts.now();
      this.#observed = observe(current?.spec, this.#observed, now);
      const d = decide({
        identity: this.opts.identity,
        leaseDurationSeconds: this.opts.leaseDurationSeconds,
        current: current?.spec,
        observed: this.#observed,
        now,
        wallTime: new Date(),
      });
      if (d.action === 'wait') {
        this.#setLeader(false);
        nextMs = Math.max(10, Math.min(nextMs, d.expiresInMs));
      } else {
        if (d.action === 'create') await this.api.createLease(this.opts.namespace, this.opts.name, d.spec);
        else await this.api.replaceLease(this.opts.namespace, this.opts.name, d.spec, current!.resourceVersion);
        this.#lastRenew = this.opts.now();
        this.#setLeader(true);
      }
    } catch (err) {
      // A conflict means someone else wrote first; anything else is the API being away.
      this.opts.onError?.(err);
      if (this.#leader && this.opts.now() - this.#lastRenew > this.opts.renewDeadlineSeconds * 1000) this.#setLeader(false);
    }
    if (!this.#closed) this.#timer = this.opts.scheduler.setTimeout(() => { this.#running = this.#tick(); }, nextMs);
  }

  #setLeader(leader: boolean): void {
    if (leader === this.#leader) return;
    this.#leader = leader;
    if (leader) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }
}
