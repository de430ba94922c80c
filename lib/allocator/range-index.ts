/**
 * Which addresses of one pool range are in use, answering "lowest free address" in
 * O(log n) however full the range is, without ever materialising it (an IPv6 /64 has
 * 2^64 addresses).
 *
 * `frontier` is the lowest address never examined: everything at or above it that is not
 * in `used` is free. Released addresses below the frontier go on a min-heap. The lowest
 * free address is the smaller of the heap's top and the frontier. Both are cleaned up
 * lazily: the frontier steps over used (and, with avoidBuggyIPs, buggy) addresses, each
 * once; heap entries taken since by a specific request are discarded when they surface.
 */
import type { Family } from '../ip/address.js';
import { isBuggyValue, type IPRange } from '../ip/range.js';
import { BigIntMinHeap } from './min-heap.js';

export class RangeIndex {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  readonly used = new Set<bigint>();
  #frontier: bigint;
  readonly #released = new BigIntMinHeap();

  constructor(
    range: IPRange,
    private readonly avoidBuggy: boolean,
  ) {
    this.family = range.family;
    this.first = range.first;
    this.last = range.last;
    this.#frontier = range.first;
  }

  contains(value: bigint): boolean {
    return value >= this.first && value <= this.last && !(this.avoidBuggy && isBuggyValue(this.family, value));
  }

  lowestFree(): bigint | undefined {
    while (this.#frontier <= this.last && (this.used.has(this.#frontier) || (this.avoidBuggy && isBuggyValue(this.family, this.#frontier)))) {
      this.#frontier++;
    }
    let top = this.#released.peek();
    while (top !== undefined && this.used.has(top)) {
      this.#released.pop();
      top = this.#released.peek();
    }
    if (top !== undefined) return top;
    return this.#frontier <= this.last ? this.#frontier : undefined;
  }

  markUsed(value: bigint): void {
    this.used.add(value);
  }

  markFree(value: bigint): void {
    this.used.delete(value);
    if (value < this.#frontier) this.#released.push(value);
  }
}
