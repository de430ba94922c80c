/**
 * IP addresses as (family, BigInt) pairs, with strict parsing.
 *
 * Pools decide which addresses a cluster hands out, so a typo must be an error,
 * never a different address: `010.0.0.1` is 10.0.0.1 to one parser and 8.0.0.1
 * to another (inet_aton reads octal), so leading zeros, hex and octal octets,
 * short forms (`10.1`) and IPv6 zone ids are all refused.
 */
import { InvalidAddressError } from '../errors.js';

export type Family = 4 | 6;

export interface IP {
  readonly family: Family;
  /** The address as an unsigned integer: 32 bits for IPv4, 128 for IPv6. */
  readonly value: bigint;
}

export const BITS: Record<Family, number> = { 4: 32, 6: 128 };
export const MAX: Record<Family, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses a dotted quad; returns undefined if `text` is not one. */
function parseV4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!DECIMAL_OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return BigInt(value);
}

/** Parses RFC 4291 §2.2 text (with `::` and a trailing dotted quad); undefined if invalid. */
function parseV6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): bigint[] | undefined => {
    if (part === '') return [];
    const out: bigint[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        // RFC 4291 §2.2 form 3: the low 32 bits written as an IPv4 address.
        const v4 = parseV4(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
        continue;
      }
      if (!HEX_GROUP.test(piece)) return undefined;
      out.push(BigInt(parseInt(piece, 16)));
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<bigint>(halves.length === 2 ? missing : 0).fill(0n), ...tail];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | g;
  return value;
}

/** Parses an IPv4 or IPv6 address, or returns undefined. */
export function tryParseIP(text: string): IP | undefined {
  if (text.includes(':')) {
    if (text.includes('%')) return undefined;
    const value = parseV6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** Parses an IPv4 or IPv6 address; throws InvalidAddressError naming the reason. */
export function parseIP(text: string): IP {
  const ip = tryParseIP(text);
  if (ip !== undefined) return ip;
  throw new InvalidAddressError(`"${text}" is not an IP address: ${whyInvalid(text)}`);
}

function whyInvalid(text: string): string {
  if (text.trim() !== text) return 'surrounding whitespace';
  if (text.includes('%')) return 'zone ids are not allowed in pool addresses';
  if (text.includes(':')) return 'not a valid IPv6 address (RFC 4291 §2.2)';
  const parts = text.split('.');
  if (parts.length !== 4) return `IPv4 needs 4 dotted decimal octets, found ${parts.length}`;
  for (const part of parts) {
    if (/^0[0-9]+$/.test(part)) return `octet "${part}" has a leading zero (octal in some parsers)`;
    if (/^0x/i.test(part)) return `octet "${part}" is hexadecimal`;
    if (!/^[0-9]+$/.test(part)) return `octet "${part}" is not a decimal number`;
    if (Number(part) > 255) return `octet "${part}" is over 255`;
  }
  return 'invalid IPv4 address';
}

/** Formats an address: dotted quad, or RFC 5952 canonical IPv6 text. */
export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((ip.value >> shift) & 0xffffn));
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function ipEquals(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Orders IPv4 before IPv6, then by value. */
export function compareIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/**
 * A number unique per address across both families, for Map keys: IPv6
 * addresses get bit 128 set so ::a.b.c.d never collides with a.b.c.d.
 */
export function ipKey(ip: IP): bigint {
  return ip.family === 4 ? ip.value : ip.value | (1n << 128n);
}

export function ipFromKey(key: bigint): IP {
  return key >> 128n ? { family: 6, value: key & MAX[6] } : { family: 4, value: key };
}
