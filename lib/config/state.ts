/**
 * The running configuration: an invalid one never replaces the last valid one (MetalLB
 * keeps its last good config and reports it stale). Every component holds one of these.
 */
import { EMPTY_CONFIG, type Config } from './model.js';
import { configEquals, type ConfigResult } from './parse.js';
import type { ConfigProblem } from './problems.js';

export class ConfigState {
  #current: Config = EMPTY_CONFIG;
  #problems: readonly ConfigProblem[] = [];
  #loaded = false;

  get current(): Config {
    return this.#current;
  }

  /** True when the latest configuration offered was refused (the metric `config_stale`). */
  get stale(): boolean {
    return this.#problems.length > 0;
  }

  /** True once any valid configuration has been applied. */
  get loaded(): boolean {
    return this.#loaded;
  }

  get problems(): readonly ConfigProblem[] {
    return this.#problems;
  }

  /** `changed`: the running configuration differs from before (reallocate, re-announce). */
  apply(result: ConfigResult): { accepted: boolean; changed: boolean; stale: boolean } {
    if (!result.ok) {
      this.#problems = result.problems;
      return { accepted: false, changed: false, stale: true };
    }
    const changed = !configEquals(this.#current, result.config);
    this.#current = result.config;
    this.#problems = [];
    this.#loaded = true;
    return { accepted: true, changed, stale: false };
  }
}
