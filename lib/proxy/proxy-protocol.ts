/**
 * The PROXY protocol (HAProxy, "The PROXY protocol", versions 1 and 2): a header the proxy
 * sends first on each connection to a backend, so the backend learns the client's address
 * without `externalTrafficPolicy: Local` (MetalLB #797, #2475; k3s #7798). Pure encoders
 * and a decoder; the proxy writes the bytes, backends (and our tests) read them.
 */
import { tryParseIP } from '../ip/address.js';

const isIPv4 = (address: string) => tryParseIP(address)?.family === 4;

export interface ProxiedConnection {
  readonly protocol: 'TCP' | 'UDP';
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
}

/** Spec §2.2: the v2 signature, chosen to never appear at the start of a v1 or HTTP stream. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as IPv4. */
function unmap(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/**
 * Spec §2.1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (at most 107 bytes). v1 has no
 * UDP and no mixed families: those get "PROXY UNKNOWN\r\n", which tells the backend to use
 * the connection's own addresses.
 */
export function encodeV1(c: ProxiedConnection): Buffer {
  const src = unmap(c.sourceAddress);
  const dst = unmap(c.destinationAddress);
  const v4 = isIPv4(src) && isIPv4(dst);
  const v6 = !isIPv4(src) && !isIPv4(dst);
  if (c.protocol !== 'TCP' || (!v4 && !v6)) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${c.sourcePort} ${c.destinationPort}\r\n`, 'latin1');
}

/**
 * Spec §2.2: signature, version 2 + command PROXY (0x21), family and transport
 * (0x11 TCP over IPv4, 0x12 UDP over IPv4, 0x21 TCP over IPv6, 0x22 UDP over IPv6), the
 * length of the addresses that follow (12 or 36 bytes, network order), then source and
 * destination addresses and ports. Mixed families are sent as IPv6 (IPv4-mapped).
 */
export function encodeV2(c: ProxiedConnection): Buffer {
  let src = unmap(c.sourceAddress);
  let dst = unmap(c.destinationAddress);
  const v4 = isIPv4(src) && isIPv4(dst);
  if (!v4) {
    if (isIPv4(src)) src = `::ffff:${src}`;
    if (isIPv4(dst)) dst = `::ffff:${dst}`;
  }
  const addrLen = v4 ? 12 : 36;
  const out = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21;
  out[13] = (v4 ? 0x10 : 0x20) | (c.protocol === 'TCP' ? 0x01 : 0x02);
  out.writeUInt16BE(addrLen, 14);
  if (v4) {
    writeV4(out, 16, src);
    writeV4(out, 20, dst);
    out.writeUInt16BE(c.sourcePort, 24);
    out.writeUInt16BE(c.destinationPort, 26);
  } else {
    writeV6(out, 16, src);
    writeV6(out, 32, dst);
    out.writeUInt16BE(c.sourcePort, 48);
    out.writeUInt16BE(c.destinationPort, 50);
  }
  return out;
}

function writeV4(buf: Buffer, at: number, address: string): void {
  buf.writeUInt32BE(Number(tryParseIP(address)?.value ?? 0n), at);
}

/** 16 bytes, network order, from lib/ip's 128-bit value (no hand-expanded "::"). */
function writeV6(buf: Buffer, at: number, address: string): void {
  const value = tryParseIP(address)?.value ?? 0n;
  for (let i = 0; i < 4; i++) buf.writeUInt32BE(Number((value >> BigInt(96 - 32 * i)) & 0xffffffffn), at + 4 * i);
}

export type DecodeResult =
  | { readonly kind: 'header'; readonly connection: ProxiedConnection | undefined; readonly length: number }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: 'notProxyProtocol' | 'badVersion' | 'badFamily' | 'badLength' | 'malformedV1' };

/**
 * Reads a header at the start of `buf`: the connection (undefined for UNKNOWN/LOCAL), and
 * how many bytes it took; `incomplete` asks for more bytes. Never throws.
 */
export function decode(buf: Buffer): DecodeResult {
  if (buf.length >= 1 && buf[0] === 0x0d) {
    if (buf.length < 16) return V2_SIGNATURE.subarray(0, buf.length).equals(buf) ? { kind: 'incomplete' } : { kind: 'invalid', reason: 'notProxyProtocol' };
    if (!buf.subarray(0, 12).equals(V2_SIGNATURE)) return { kind: 'invalid', reason: 'notProxyProtocol' };
    const verCmd = buf[12]!;
    if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'badVersion' };
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return { kind: 'incomplete' };
    if ((verCmd & 0x0f) === 0) return { kind: 'header', connection: undefined, length: 16 + len }; // LOCAL
    const fam = buf[13]!;
    const protocol = (fam & 0x0f) === 1 ? 'TCP' : (fam & 0x0f) === 2 ? 'UDP' : undefined;
    if (protocol === undefined || (fam >> 4 !== 1 && fam >> 4 !== 2)) return { kind: 'invalid', reason: 'badFamily' };
    if (fam >> 4 === 1) {
      if (len < 12) return { kind: 'invalid', reason: 'badLength' };
      return { kind: 'header', length: 16 + len, connection: { protocol, sourceAddress: [...buf.subarray(16, 20)].join('.'), destinationAddress: [...buf.subarray(20, 24)].join('.'), sourcePort: buf.readUInt16BE(24), destinationPort: buf.readUInt16BE(26) } };
    }
    if (len < 36) return { kind: 'invalid', reason: 'badLength' };
    const v6 = (at: number) => Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(at + 2 * i).toString(16)).join(':');
    return { kind: 'header', length: 16 + len, connection: { protocol, sourceAddress: v6(16), destinationAddress: v6(32), sourcePort: buf.readUInt16BE(48), destinationPort: buf.readUInt16BE(50) } };
  }
  const prefix = 'PROXY ';
  const head = buf.subarray(0, Math.min(buf.length, prefix.length)).toString('latin1');
  if (!prefix.startsWith(head)) return { kind: 'invalid', reason: 'notProxyProtocol' };
  const end = buf.indexOf('\r\n');
  if (end < 0) return buf.length >= 107 ? { kind: 'invalid', reason: 'malformedV1' } : { kind: 'incomplete' };
  const parts = buf.subarray(0, end).toString('latin1').split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'header', connection: undefined, length: end + 2 };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return { kind: 'invalid', reason: 'malformedV1' };
  const [sp, dp] = [Number(parts[4]), Number(parts[5])];
  if (!Number.isInteger(sp) || !Number.isInteger(dp) || sp > 65535 || dp > 65535 || sp < 0 || dp < 0) return { kind: 'invalid', reason: 'malformedV1' };
  return { kind: 'header', length: end + 2, connection: { protocol: 'TCP', sourceAddress: parts[2]!, destinationAddress: parts[3]!, sourcePort: sp, destinationPort: dp } };
}
