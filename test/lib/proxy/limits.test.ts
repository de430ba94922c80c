import t from 'tap';
import { parseSourceRanges } from '../../../lib/proxy/source-ranges.js';
import { TokenBucket } from '../../../lib/proxy/rate-limit.js';

t.test('loadBalancerSourceRanges', async (t) => {
  const r = parseSourceRanges(['10.0.0.0/8', ' 2001:db8::/32 ']);
  if (!r.ok) return t.fail('valid ranges refused');
  const rows: { desc: string; client: string; allowed: boolean }[] = [
    { desc: 'inside the IPv4 range', client: '10.1.2.3', allowed: true },
    { desc: 'outside', client: '192.0.2.1', allowed: false },
    { desc: 'IPv4-mapped client judged as IPv4', client: '::ffff:10.9.9.9', allowed: true },
    { desc: 'IPv4-mapped outside', client: '::ffff:192.0.2.1', allowed: false },
    { desc: 'inside the IPv6 range', client: '2001:db8::42', allowed: true },
    { desc: 'not an address at all', client: '', allowed: false },
  ];
  for (const row of rows) t.equal(r.allows(row.client), row.allowed, row.desc);
  const open = parseSourceRanges([]);
  t.ok(open.ok && open.allows('203.0.113.9'), 'no ranges: everyone');
  const bad = parseSourceRanges(['10.0.0.1/8', 'nope']);
  t.same(bad.ok ? [] : bad.problems.map((p) => p.split(':')[0]), ['spec.loadBalancerSourceRanges[0]', 'spec.loadBalancerSourceRanges[1]'], 'every bad entry named');
});

t.test('token bucket: burst, then the rate', async (t) => {
  const b = new TokenBucket(10, 3, 0);
  t.same([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false], 'a burst of 3');
  t.equal(b.take(50), false, 'half a token after 50 ms');
  t.equal(b.take(100), true, 'one token per 100 ms at 10/s');
  t.equal(b.take(100), false);
  t.same([b.take(10_000), b.take(10_000), b.take(10_000), b.take(10_000)], [true, true, true, false], 'refills only up to the burst');
});
