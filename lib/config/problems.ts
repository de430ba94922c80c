/**
 * Configuration problems: every one names the document, the field path and the reason,
 * and validation collects them all before answering, so one round of edits fixes a file.
 */
import { BeaconError } from '../errors.js';

export interface ConfigProblem {
  /** `IPAddressPool/default`, or `document 3` when the document has no usable name. */
  readonly document: string;
  /** `spec.addresses[1]`; empty for the document as a whole. */
  readonly path: string;
  readonly reason: string;
}

export function formatProblem(source: string, p: ConfigProblem): string {
  return `${source}: ${p.document}${p.path ? ` ${p.path}` : ''}: ${p.reason}`;
}

/** For callers that want to throw: `problems` keeps each one for Events and logs. */
export class ConfigError extends BeaconError {
  readonly problems: readonly ConfigProblem[];

  constructor(source: string, problems: readonly ConfigProblem[], options?: { cause?: unknown }) {
    super('BEACON_INVALID_CONFIG', `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  ${formatProblem(source, p)}`).join('\n')}`, options);
    this.problems = problems;
  }
}
