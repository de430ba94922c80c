/**
 * The addresses in use in one pool range, answering "lowest free address" in O(log n)
 * however full the range is, without ever materialising it (an IPv6 /64 has 2^64).
 *
 * Addresses are kept as offsets from the range's first address: plain numbers (small
 * integers V8 stores unboxed, so no allocation per lookup) for every offset below 2^53,
 * which the lowest-first walk never passes; a requested address further into a huge
 * IPv6 range keeps a BigInt offset.
 *
 * `frontier` is the lowest offset never examined: everything at or above it not in `uses`
 * is free. Offsets released below the frontier go on a min-heap. The lowest free offset
 * is the smaller of the heap's top and the frontier. Both are cleaned lazily: the frontier
 * steps over used (and, with avoidBuggyIPs, buggy) offsets, each once; heap entries taken
 * since by a specific request are dropped when they surface.
 */
import type { Family, IP } from '../ip/address.js';
import { isBuggyValue, rangeSize, type IPRange } from '../ip/range.js';
import { MinHeap } from './min-heap.js';

export type Offset = number | bigint;

export class RangeIndex<T> {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  readonly uses = new Map<Offset, T>();
  /** Offsets past this are beyond the range (or beyond 2^53, never reached by the walk). */
  readonly #end: number;
  /** The first address's low byte, to spot IPv4 .0/.255 from a numeric offset. */
  readonly #firstLow: number;
  #frontier = 0;
  readonly #released = new MinHeap();

  constructor(
    range: IPRange,
    private readonly avoidBuggy: boolean,
  ) {
    this.family = range.family;
    this.first = range.first;
    this.last = range.last;
    const size = rangeSize(range);
    this.#end = size > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(size);
    this.#firstLow = Number(range.first & 255n);
  }

  /** The offset of `value` if it is a usable address of this range. */
  offsetOf(value: bigint): Offset | undefined {
    if (value < this.first || value > this.last) return undefined;
    if (this.avoidBuggy && isBuggyValue(this.family, value)) return undefined;
    const off = value - this.first;
    return off < BigInt(Number.MAX_SAFE_INTEGER) ? Number(off) : off;
  }

  ipAt(offset: Offset): IP {
    return { family: this.family, value: this.first + BigInt(offset) };
  }

  lowestFree(): number | undefined {
    while (this.#frontier < this.#end && (this.uses.has(this.#frontier) || this.#buggy(this.#frontier))) this.#frontier++;
    let top = this.#released.peek();
    while (top !== undefined && this.uses.has(top)) {
      this.#released.pop();
      top = this.#released.peek();
    }
    if (top !== undefined) return top;
    return this.#frontier < this.#end ? this.#frontier : undefined;
  }

  set(offset: Offset, use: T): void {
    this.uses.set(offset, use);
  }

  delete(offset: Offset): void {
    this.uses.delete(offset);
    if (typeof offset === 'number' && offset < this.#frontier) this.#released.push(offset);
  }

  #buggy(offset: number): boolean {
    if (!this.avoidBuggy || this.family !== 4) return false;
    const low = (this.#firstLow + offset) & 255;
    return low === 0 || low === 255;
  }
}
