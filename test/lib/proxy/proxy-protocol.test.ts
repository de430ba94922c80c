import t from 'tap';
import fc from 'fast-check';
import { decode, encodeV1, encodeV2, V2_SIGNATURE, type ProxiedConnection } from '../../../lib/proxy/proxy-protocol.js';

const conn = (src: string, dst: string, protocol: 'TCP' | 'UDP' = 'TCP'): ProxiedConnection => ({ protocol, sourceAddress: src, sourcePort: 51234, destinationAddress: dst, destinationPort: 443 });

t.test('v1 headers (spec §2.1)', async (t) => {
  const rows: { desc: string; c: ProxiedConnection; expect: string }[] = [
    { desc: 'TCP over IPv4', c: conn('192.0.2.10', '198.51.100.1'), expect: 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n' },
    { desc: 'TCP over IPv6', c: conn('2001:db8::10', '2001:db8::1'), expect: 'PROXY TCP6 2001:db8::10 2001:db8::1 51234 443\r\n' },
    { desc: 'an IPv4-mapped client is IPv4', c: conn('::ffff:192.0.2.10', '198.51.100.1'), expect: 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n' },
    { desc: 'mixed families: UNKNOWN', c: conn('192.0.2.10', '2001:db8::1'), expect: 'PROXY UNKNOWN\r\n' },
    { desc: 'UDP has no v1 form: UNKNOWN', c: conn('192.0.2.10', '198.51.100.1', 'UDP'), expect: 'PROXY UNKNOWN\r\n' },
  ];
  for (const row of rows) {
    const b = encodeV1(row.c);
    t.equal(b.toString('latin1'), row.expect, row.desc);
    t.ok(b.length <= 107, `${row.desc}: within the 107-byte limit`);
  }
});

t.test('v2 headers (spec §2.2), byte by byte', async (t) => {
  const v4 = encodeV2(conn('192.0.2.10', '198.51.100.1'));
  t.same([...v4.subarray(0, 12)], [...V2_SIGNATURE], 'signature');
  t.equal(v4[12], 0x21, 'version 2, command PROXY');
  t.equal(v4[13], 0x11, 'AF_INET, STREAM');
  t.equal(v4.readUInt16BE(14), 12, 'address block length');
  t.same([...v4.subarray(16, 28)], [192, 0, 2, 10, 198, 51, 100, 1, 0xc8, 0x22, 0x01, 0xbb], 'addresses then ports, network order');
  t.equal(v4.length, 28);
  const udp6 = encodeV2(conn('2001:db8::10', '::1', 'UDP'));
  t.equal(udp6[13], 0x22, 'AF_INET6, DGRAM');
  t.equal(udp6.readUInt16BE(14), 36);
  t.equal(udp6.subarray(16, 32).toString('hex'), '20010db8000000000000000000000010');
  t.equal(udp6.subarray(32, 48).toString('hex'), '00000000000000000000000000000001');
  const mixed = encodeV2(conn('192.0.2.10', '2001:db8::1'));
  t.equal(mixed.subarray(16, 32).toString('hex'), '00000000000000000000ffffc000020a', 'mixed families: IPv4 sent as IPv4-mapped IPv6');
});

t.test('decoding: every encoded header reads back; bad input is a value, never a throw', async (t) => {
  const rows: { desc: string; buf: Buffer; expect: string }[] = [
    { desc: 'v1 split mid-line', buf: Buffer.from('PROXY TCP4 1.2.3.4'), expect: 'incomplete' },
    { desc: 'v2 signature only', buf: V2_SIGNATURE, expect: 'incomplete' },
    { desc: 'HTTP is not PROXY', buf: Buffer.from('GET / HTTP/1.1\r\n'), expect: 'invalid:notProxyProtocol' },
    { desc: 'v1 with a bad port', buf: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n'), expect: 'invalid:malformedV1' },
    { desc: 'v1 with no end within 107 bytes', buf: Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`), expect: 'invalid:malformedV1' },
    { desc: 'v2 version 3', buf: Buffer.concat([V2_SIGNATURE, Buffer.from([0x31, 0x11, 0, 12]), Buffer.alloc(12)]), expect: 'invalid:badVersion' },
    { desc: 'v2 unknown family', buf: Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x31, 0, 12]), Buffer.alloc(12)]), expect: 'invalid:badFamily' },
    { desc: 'v2 too short for IPv6', buf: Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x21, 0, 12]), Buffer.alloc(12)]), expect: 'invalid:badLength' },
    { desc: 'v2 LOCAL: no addresses', buf: Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]), expect: 'header:local' },
  ];
  for (const row of rows) {
    const r = decode(row.buf);
    const got = r.kind === 'invalid' ? `invalid:${r.reason}` : r.kind === 'header' ? `header:${r.connection ? 'proxied' : 'local'}` : r.kind;
    t.equal(got, row.expect, row.desc);
  }
  const c = conn('192.0.2.10', '198.51.100.1');
  for (const [name, enc] of [['v1', encodeV1], ['v2', encodeV2]] as const) {
    const bytes = Buffer.concat([enc(c), Buffer.from('payload')]);
    const r = decode(bytes);
    t.same(r, { kind: 'header', length: bytes.length - 7, connection: c }, `${name} round trip, payload left after the header`);
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (a) => typeof decode(Buffer.from(a)).kind === 'string'), { numRuns: 2000, seed: 7 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (a) => typeof decode(Buffer.concat([V2_SIGNATURE, Buffer.from(a)])).kind === 'string'), { numRuns: 2000, seed: 8 });
});
