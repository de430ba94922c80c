/**
 * Address ranges: a CIDR (`10.0.0.0/24`) or an inclusive `first-last` span,
 * the two forms MetalLB accepts in `IPAddressPool.spec.addresses`. Ranges are
 * two BigInts, so an IPv6 /64 costs as much as a /32: nothing is materialised.
 */
import { InvalidAddressError } from '../errors.js';
import { BITS, formatIP, parseIP, type Family, type IP } from './address.js';

export interface IPRange {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
  /** The text this range was parsed from, trimmed, for messages. */
  readonly text: string;
}

const PREFIX_LENGTH = /^(?:0|[1-9][0-9]{0,2})$/;

/** Parses `addr/len`, refusing host bits below the prefix (a typo more often than not). */
export function parseCIDR(text: string): IPRange {
  const slash = text.indexOf('/');
  if (slash < 0) throw new InvalidAddressError(`"${text}" is not a CIDR: no "/"`);
  const ip = parseIP(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  const bits = BITS[ip.family];
  if (!PREFIX_LENGTH.test(lenText) || Number(lenText) > bits) {
    throw new InvalidAddressError(`"${text}" has an invalid prefix length "${lenText}" (0 to ${bits} for IPv${ip.family})`);
  }
  const hostBits = BigInt(bits - Number(lenText));
  const hostMask = (1n << hostBits) - 1n;
  if ((ip.value & hostMask) !== 0n) {
    const network = formatIP({ family: ip.family, value: ip.value & ~hostMask });
    throw new InvalidAddressError(`"${text}" has host bits set; the network is ${network}/${lenText}`);
  }
  return { family: ip.family, first: ip.value, last: ip.value | hostMask, text };
}

/** Parses `first-last` (spaces around either side allowed, as MetalLB does). */
export function parseSpan(text: string): IPRange {
  const parts = text.split('-');
  if (parts.length !== 2) throw new InvalidAddressError(`"${text}" is not a range: expected exactly one "-"`);
  const first = parseIP(parts[0]!.trim());
  const last = parseIP(parts[1]!.trim());
  if (first.family !== last.family) {
    throw new InvalidAddressError(`"${text}" mixes IPv${first.family} and IPv${last.family}`);
  }
  if (first.value > last.value) {
    throw new InvalidAddressError(`"${text}" starts after it ends`);
  }
  return { family: first.family, first: first.value, last: last.value, text };
}

/** Parses a pool entry: a CIDR, a span, or (as a /32 or /128) a single address. */
export function parseRange(input: string): IPRange {
  const text = input.trim();
  if (text.includes('-')) return parseSpan(text);
  if (text.includes('/')) return parseCIDR(text);
  const ip = parseIP(text);
  return { family: ip.family, first: ip.value, last: ip.value, text };
}

export function rangeSize(r: IPRange): bigint {
  return r.last - r.first + 1n;
}

export function rangeContains(r: IPRange, ip: IP): boolean {
  return r.family === ip.family && ip.value >= r.first && ip.value <= r.last;
}

export function rangesOverlap(a: IPRange, b: IPRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

export function formatRange(r: IPRange): string {
  return `${formatIP({ family: r.family, value: r.first })}-${formatIP({ family: r.family, value: r.last })}`;
}

/**
 * IPv4 addresses ending in .0 or .255 confuse the smurf protection of some CPE
 * firmware (MetalLB's `avoidBuggyIPs`); IPv6 addresses never do.
 */
export function isBuggyIP(ip: IP): boolean {
  return isBuggyValue(ip.family, ip.value);
}

export function isBuggyValue(family: Family, value: bigint): boolean {
  if (family !== 4) return false;
  const low = value & 255n;
  return low === 0n || low === 255n;
}

/** Addresses in `r` that `avoidBuggyIPs` excludes, counted without iterating. */
export function buggyCount(r: IPRange): bigint {
  if (r.family !== 4) return 0n;
  // Count values v in [first, last] with v mod 256 in {0, 255}.
  const upTo = (n: bigint): bigint => {
    // how many v in [0, n] with v % 256 === 0 or 255 (n >= -1)
    if (n < 0n) return 0n;
    const blocks = n / 256n;
    const rem = n % 256n;
    return blocks * 2n + 1n + (rem === 255n ? 1n : 0n);
  };
  return upTo(r.last) - upTo(r.first - 1n);
}
