/**
 * One backend's health, as HAProxy judges it: `rise` consecutive passed checks make it
 * healthy, `fall` consecutive failures make it unhealthy (HAProxy's defaults: rise 2,
 * fall 3, inter 2 s; "server" keyword options in its configuration manual). A refused or
 * timed-out connection from real traffic counts as a failed check (passive), and ejects
 * at once when `ejectOnConnectFailure` is set, so clients stop waiting on a dead backend
 * before the next active check. A backend that starts unhealthy (active checks configured,
 * no evidence yet) comes up at its first passed check rather than after `rise`: the rule
 * "no backend is healthy without evidence" (issue 4) asks for one proof, and waiting a
 * second interval would delay every new endpoint of a rollout by 2 s. Pure: the checker and the proxy feed it results; it
 * returns the transitions, as values for logs and metrics.
 */

export interface HealthOptions {
  readonly rise: number;
  readonly fall: number;
  readonly ejectOnConnectFailure: boolean;
}

export const DEFAULT_HEALTH: HealthOptions = { rise: 2, fall: 3, ejectOnConnectFailure: true };

export type CheckResult = 'pass' | 'fail';
export type Transition = 'up' | 'down' | undefined;

export class BackendHealth {
  #healthy: boolean;
  #passes = 0;
  #failures = 0;
  /** False until the first check has passed: that one pass is enough to come up. */
  #proven: boolean;

  /** `healthy` at start: false when active checks must prove a backend first. */
  constructor(
    private readonly options: HealthOptions,
    healthy: boolean,
  ) {
    this.#healthy = healthy;
    this.#proven = healthy;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  /** An active check's result. */
  check(result: CheckResult): Transition {
    if (result === 'pass') {
      this.#failures = 0;
      this.#passes++;
      if (!this.#healthy && (!this.#proven || this.#passes >= this.options.rise)) return this.#set(true);
      return undefined;
    }
    this.#passes = 0;
    this.#failures++;
    if (this.#healthy && this.#failures >= this.options.fall) return this.#set(false);
    return undefined;
  }

  /** Real traffic could not connect. */
  connectFailed(): Transition {
    if (this.options.ejectOnConnectFailure && this.#healthy) {
      this.#passes = 0;
      this.#failures = this.options.fall;
      return this.#set(false);
    }
    return this.check('fail');
  }

  /**
   * Back in rotation without a passed check: the owner's passive ejection ran out and no
   * active check exists to prove the backend (BackendPool). The next refusal ejects it again.
   */
  readmit(): Transition {
    return this.#healthy ? undefined : this.#set(true);
  }

  #set(healthy: boolean): Transition {
    this.#healthy = healthy;
    this.#proven = true;
    this.#passes = 0;
    this.#failures = 0;
    return healthy ? 'up' : 'down';
  }
}
