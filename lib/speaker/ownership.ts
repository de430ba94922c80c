/**
 * Which Service IPs this node serves, until the L2 election decides it: the addresses the
 * node already has. Linux answers for all of 127.0.0.0/8 on `lo` (a route of type local
 * covers the whole block), so a loopback IP is always ours; any other one is ours when an
 * interface carries it. Pure: the shell passes the interface addresses it read.
 */
import { formatIP, tryParseIP } from '../ip/address.js';
import { parseCIDR, rangeContains } from '../ip/range.js';

const LOOPBACK_V4 = parseCIDR('127.0.0.0/8');

export function localOwnership(interfaceAddresses: readonly string[]): (ip: string) => boolean {
  const local = new Set<string>();
  for (const a of interfaceAddresses) {
    // A link-local IPv6 address may come with a zone (fe80::1%eth0); Service IPs never do.
    const ip = tryParseIP(a.split('%')[0]!);
    if (ip) local.add(formatIP(ip));
  }
  return (text) => {
    const ip = tryParseIP(text);
    if (!ip) return false;
    return (ip.family === 4 && rangeContains(LOOPBACK_V4, ip)) || local.has(formatIP(ip));
  };
}
