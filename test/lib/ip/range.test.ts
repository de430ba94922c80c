import t from 'tap';
import { parseIP } from '../../../lib/ip/address.js';
import { buggyCount, formatRange, isBuggyIP, parseRange, rangeContains, rangeSize, rangesOverlap } from '../../../lib/ip/range.js';

t.test('pool entries parse into inclusive ranges', async (t) => {
  const rows: { desc: string; in: string; range: string; size: bigint }[] = [
    { desc: 'IPv4 /24', in: '192.168.10.0/24', range: '192.168.10.0-192.168.10.255', size: 256n },
    { desc: 'IPv4 /32 is one address', in: '10.0.0.7/32', range: '10.0.0.7-10.0.0.7', size: 1n },
    { desc: 'IPv4 /0', in: '0.0.0.0/0', range: '0.0.0.0-255.255.255.255', size: 1n << 32n },
    { desc: 'span with spaces (MetalLB trims them)', in: '192.168.1.240 - 192.168.1.250', range: '192.168.1.240-192.168.1.250', size: 11n },
    { desc: 'span of one address', in: '10.0.0.1-10.0.0.1', range: '10.0.0.1-10.0.0.1', size: 1n },
    { desc: 'bare address', in: ' 10.0.0.9 ', range: '10.0.0.9-10.0.0.9', size: 1n },
    { desc: 'IPv6 /64 is never materialised', in: 'fd00:1::/64', range: 'fd00:1::-fd00:1::ffff:ffff:ffff:ffff', size: 1n << 64n },
    { desc: 'IPv6 /128', in: 'fd00::5/128', range: 'fd00::5-fd00::5', size: 1n },
    { desc: 'IPv6 span', in: 'fd00::10-fd00::1f', range: 'fd00::10-fd00::1f', size: 16n },
  ];
  for (const row of rows) {
    const r = parseRange(row.in);
    t.equal(formatRange(r), row.range, `${row.desc}: bounds`);
    t.equal(rangeSize(r), row.size, `${row.desc}: size`);
    t.equal(r.text, row.in.trim(), `${row.desc}: text kept for messages`);
  }
});

t.test('bad pool entries are refused with the reason', async (t) => {
  const rows: { desc: string; in: string; reason: RegExp }[] = [
    { desc: 'host bits set', in: '192.168.10.5/24', reason: /host bits set; the network is 192\.168\.10\.0\/24/ },
    { desc: 'prefix too long', in: '10.0.0.0/33', reason: /prefix length "33" \(0 to 32 for IPv4\)/ },
    { desc: 'prefix with leading zero', in: '10.0.0.0/024', reason: /prefix length "024"/ },
    { desc: 'empty prefix', in: '10.0.0.0/', reason: /prefix length ""/ },
    { desc: 'IPv6 prefix too long', in: 'fd00::/129', reason: /0 to 128 for IPv6/ },
    { desc: 'start after end', in: '10.0.0.9-10.0.0.1', reason: /starts after it ends/ },
    { desc: 'mixed families', in: '10.0.0.1-fd00::1', reason: /mixes IPv4 and IPv6/ },
    { desc: 'two dashes', in: '10.0.0.1-10.0.0.2-10.0.0.3', reason: /exactly one "-"/ },
    { desc: 'octal in a span', in: '10.0.0.1-10.0.0.010', reason: /leading zero/ },
    { desc: 'zone id', in: 'fe80::1%eth0/128', reason: /zone ids/ },
  ];
  for (const row of rows) t.throws(() => parseRange(row.in), { code: 'BEACON_INVALID_IP', message: row.reason }, row.desc);
});

t.test('containment and overlap respect families', async (t) => {
  const a = parseRange('10.0.0.0/24');
  const rows: { desc: string; other: string; overlap: boolean }[] = [
    { desc: 'inside', other: '10.0.0.128/25', overlap: true },
    { desc: 'touching the last address', other: '10.0.0.255-10.0.1.5', overlap: true },
    { desc: 'adjacent', other: '10.0.1.0/24', overlap: false },
    { desc: 'same numbers, other family', other: '::a00:0/120', overlap: false },
  ];
  for (const row of rows) {
    const b = parseRange(row.other);
    t.equal(rangesOverlap(a, b), row.overlap, row.desc);
    t.equal(rangesOverlap(b, a), row.overlap, `${row.desc} (symmetric)`);
  }
  t.ok(rangeContains(a, parseIP('10.0.0.255')));
  t.notOk(rangeContains(a, parseIP('10.0.1.0')));
  t.notOk(rangeContains(a, parseIP('::a00:1')), 'an IPv6 address is never in an IPv4 range');
});

t.test('buggy addresses are counted without iterating, and agree with a scan', async (t) => {
  const rows: { desc: string; in: string; expect: bigint }[] = [
    { desc: '/24 has .0 and .255', in: '10.0.0.0/24', expect: 2n },
    { desc: '/16 has two per /24', in: '10.0.0.0/16', expect: 512n },
    { desc: 'span inside a /24 touching neither end', in: '10.0.0.1-10.0.0.254', expect: 0n },
    { desc: 'span crossing a /24 boundary', in: '10.0.0.250-10.0.1.5', expect: 2n },
    { desc: 'single .255', in: '10.0.0.255/32', expect: 1n },
    { desc: 'IPv6 has none', in: 'fd00::/120', expect: 0n },
  ];
  for (const row of rows) {
    const r = parseRange(row.in);
    t.equal(buggyCount(r), row.expect, row.desc);
    if (rangeSize(r) <= 70000n) {
      let scanned = 0n;
      for (let v = r.first; v <= r.last; v++) if (isBuggyIP({ family: r.family, value: v })) scanned++;
      t.equal(scanned, row.expect, `${row.desc}: scan agrees`);
    }
  }
});
