// npm run bench -- allocator
// Phases from issue 2: 65,536 Services into an IPv4 /16; 100,000 into an IPv6 /64; a
// rebuild from 65,536 existing assignments; 10,000 random release + re-allocate. Then the
// cost of one allocation at 1k, 8k and 65k Services held, ours against a scan-from-start
// reference (MetalLB's method) in the same run: ours must stay flat while it grows.
import { availableParallelism, loadavg } from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Allocator } from '../dist/lib/allocator/allocator.js';
import { parseRange } from '../dist/lib/ip/range.js';
import { ReferenceAllocator } from './allocator/reference.mjs';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const pool = (name, cidr) => ({ name, labels: {}, ranges: [parseRange(cidr)], autoAssign: true, avoidBuggyIPs: false, serviceAllocation: undefined });
const request = (i, family = 4) => ({
  key: `ns/svc-${i}`, namespace: 'ns', labels: {}, namespaceLabels: {}, ports: [{ protocol: 'TCP', port: 80 }],
  sharingKey: '', backendKey: '', families: [family], familyPolicy: 'SingleStack', requestedIPs: [], pool: undefined,
});
const requests = (n, family) => Array.from({ length: n }, (_, i) => request(i, family));
const heapUsed = () => { gc(); gc(); return process.memoryUsage().heapUsed; };

/** Runs fn over items, returns ops/s; asserts every result is ok so a broken run cannot look fast. */
function timed(items, fn) {
  const t0 = process.hrtime.bigint();
  for (const item of items) {
    const r = fn(item);
    if (r === false || (r && r.ok === false)) throw new Error(`operation failed: ${JSON.stringify(r)}`);
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return items.length / (ns / 1e9);
}

/** Deterministic shuffle (mulberry32), so every run churns the same Services. */
function shuffled(n, seed = 42) {
  const idx = Array.from({ length: n }, (_, i) => i);
  let s = seed;
  const rand = () => { s = (s + 0x6d2b79f5) | 0; let x = Math.imul(s ^ (s >>> 15), 1 | s); x ^= x + Math.imul(x ^ (x >>> 7), 61 | x); return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32; };
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [idx[i], idx[j]] = [idx[j], idx[i]]; }
  return idx;
}

async function phases(emit) {
  const config4 = { pools: [pool('v4', '10.0.0.0/16')], l2Advertisements: [] };
  const FLOOR = 200_000;
  const reqs4 = requests(65_536, 4);

  // Numbers from a shared 2-core box mean little if other work is running: say so.
  emit('load_average_1m', +loadavg()[0].toFixed(2), 'runnable', { cores: availableParallelism() });

  // Warm-up: one throwaway fill of each family, so phase 1 does not pay for the JIT.
  for (const [cidr, family] of [['10.0.0.0/16', 4], ['fd00::/64', 6]]) {
    const w = new Allocator();
    w.setConfig({ pools: [pool('warm', cidr)], l2Advertisements: [] });
    for (const r of requests(20_000, family)) w.allocate(r);
    for (let i = 0; i < 5_000; i++) { w.release(`ns/svc-${i * 3}`); w.allocate(request(i * 3, family)); }
  }

  // Phase 1: fill an IPv4 /16, heap measured around it.
  const base = heapUsed();
  const a = new Allocator();
  a.setConfig(config4);
  emit('fill_ipv4_16', Math.round(timed(reqs4, (r) => a.allocate(r))), 'ops/s', { services: 65_536, floor: FLOOR });
  const heap = heapUsed() - base;
  emit('heap_at_65536', +(heap / 2 ** 20).toFixed(1), 'MB', { ceiling: 64 });
  if (a.allocate(request(70_000)).ok) throw new Error('the /16 should be full');

  // Phase 2: 100,000 Services into an IPv6 /64.
  // In a function of its own, so its 100,000 allocations are garbage for phases 3 and 4.
  const fillIPv6 = () => {
    const b = new Allocator();
    b.setConfig({ pools: [pool('v6', 'fd00::/64')], l2Advertisements: [] });
    return timed(requests(100_000, 6), (r) => b.allocate(r));
  };
  emit('fill_ipv6_64', Math.round(fillIPv6()), 'ops/s', { services: 100_000, floor: FLOOR });
  heapUsed();

  // Phase 3: a restarted controller claims 65,536 existing assignments.
  const existing = reqs4.map((r) => [r, a.ipsOf(r.key)]);
  const c = new Allocator();
  c.setConfig(config4);
  emit('rebuild_65536', Math.round(timed(existing, ([r, ips]) => c.assign(r, ips))), 'ops/s', { services: 65_536, floor: FLOOR });

  // Phase 4: 10,000 random Services released and allocated again; a release and an
  // allocation are one op each, and pairs/s is printed too.
  const churn = shuffled(65_536).slice(0, 10_000).map((i) => reqs4[i]);
  const pairs = timed(churn, (r) => c.release(r.key) && c.allocate(r));
  emit('churn_10000', Math.round(2 * pairs), 'ops/s', { pairsPerSecond: Math.round(pairs), floor: FLOOR });

  // Drop the phases' allocators (over 200k allocations): a large live heap would put
  // major collections inside the short timings below and hide what one operation costs.
  return reqs4;
}

async function costs(emit, reqs4) {
  const config4 = { pools: [pool('v4', '10.0.0.0/16')], l2Advertisements: [] };
  heapUsed();
  // Cost per operation at a given fill, ours and the reference's, in the same run. One
  // operation is a release plus an allocation of the same Service.
  for (const held of [1_000, 8_000, 65_000]) {
    const ours = new Allocator();
    ours.setConfig(config4);
    const ref = new ReferenceAllocator(0x0a000000, 0x0a00ffff);
    for (let i = 0; i < held; i++) { ours.allocate(reqs4[i]); ref.allocate(reqs4[i].key); }
    // Each probe frees a random held address and allocates again, so both allocators must
    // find a hole below the top: the common case after churn, the worst for the scan.
    // Warm up first, and collect before each timing, so neither pays for JIT or garbage.
    const order = shuffled(held, held);
    const probeOf = (from, n) => Array.from({ length: n }, (_, i) => reqs4[order[(from + i) % held]]);
    const oursOp = (r) => ours.release(r.key) && ours.allocate(r);
    const refOp = (r) => ref.release(r.key) && ref.allocate(r.key) !== undefined;
    timed(probeOf(0, 500), oursOp);
    timed(probeOf(0, 50), refOp);
    heapUsed();
    const oursRate = timed(probeOf(500, 20_000), oursOp);
    heapUsed();
    const refRate = timed(probeOf(500, held >= 65_000 ? 200 : 2000), refOp);
    const oursNs = 1e9 / oursRate;
    const refNs = 1e9 / refRate;
    emit(`cost_at_${held}`, Math.round(oursNs), 'ns/op', { op: 'release+allocate', reference: Math.round(refNs), speedup: +(refNs / oursNs).toFixed(1) });
  }
}

export async function run(emit) {
  const reqs4 = await phases(emit);
  await costs(emit, reqs4);
}
