/**
 * Beacon's error classes. Every error a caller may act on has a stable `code`
 * (documented in README.md, "Error codes"), and carries the error that caused
 * it, so a log line shows the whole chain. Expected outcomes (drop reasons,
 * allocation failures) are values, not exceptions: these classes are for
 * input we must refuse and for faults.
 */
export class BeaconError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Text that is not a valid IP address, CIDR or range (`BEACON_INVALID_IP`). */
export class InvalidAddressError extends BeaconError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BEACON_INVALID_IP', message, options);
  }
}
