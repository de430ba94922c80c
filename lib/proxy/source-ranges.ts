/**
 * `spec.loadBalancerSourceRanges`: which clients may connect. Empty means everyone, as in
 * Kubernetes. A dual-stack socket reports IPv4 clients as IPv4-mapped IPv6
 * (`::ffff:192.0.2.1`); those are judged as the IPv4 address they are.
 */
import { tryParseIP } from '../ip/address.js';
import { parseCIDR, rangeContains, type IPRange } from '../ip/range.js';

export type SourceRanges = { readonly ok: true; readonly allows: (client: string) => boolean } | { readonly ok: false; readonly problems: readonly string[] };

const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** What no ranges allow: everyone. One function, so a frontend can tell it apart from a real list. */
export const ALLOW_EVERY_CLIENT = (_client: string): boolean => true;

export function parseSourceRanges(cidrs: readonly string[]): SourceRanges {
  const ranges: IPRange[] = [];
  const problems: string[] = [];
  cidrs.forEach((text, i) => {
    try {
      ranges.push(parseCIDR(text.trim()));
    } catch (err) {
      problems.push(`spec.loadBalancerSourceRanges[${i}]: ${(err as Error).message}`);
    }
  });
  if (problems.length > 0) return { ok: false, problems };
  if (ranges.length === 0) return { ok: true, allows: ALLOW_EVERY_CLIENT };
  return {
    ok: true,
    allows: (client) => {
      const ip = tryParseIP(MAPPED.exec(client)?.[1] ?? client);
      return ip !== undefined && ranges.some((r) => rangeContains(r, ip));
    },
  };
}
