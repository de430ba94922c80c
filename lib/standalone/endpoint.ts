/**
 * `host:port` endpoint text, as standalone files list backends. IPv6 hosts are
 * bracketed (`[::1]:9000`, RFC 3986 §3.2.2), so the last colon is never ambiguous.
 */
import { formatIP, tryParseIP, type IP } from '../ip/address.js';

export interface Endpoint {
  readonly ip: IP;
  readonly port: number;
}

export type EndpointParse = { readonly ok: true; readonly endpoint: Endpoint } | { readonly ok: false; readonly reason: string };

const PORT = /^(?:[1-9][0-9]{0,4})$/;

export function parseEndpoint(text: string): EndpointParse {
  let host: string;
  let port: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return { ok: false, reason: `"${text}": expected [ipv6]:port` };
    host = text.slice(1, close);
    port = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: `"${text}": expected host:port` };
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(':')) return { ok: false, reason: `"${text}": bracket IPv6 hosts, as [${host}]:${port}` };
  }
  const ip = tryParseIP(host);
  if (ip === undefined) return { ok: false, reason: `"${text}": "${host}" is not an IP address` };
  if (!PORT.test(port) || Number(port) > 65535) return { ok: false, reason: `"${text}": port must be 1 to 65535` };
  return { ok: true, endpoint: { ip, port: Number(port) } };
}

export function formatEndpoint(e: Endpoint): string {
  return e.ip.family === 6 ? `[${formatIP(e.ip)}]:${e.port}` : `${formatIP(e.ip)}:${e.port}`;
}
