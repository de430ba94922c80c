// Long random sequences of allocate / release / assign / configuration edits, checking
// after every step the invariants the controller relies on, and checking each fresh
// automatic allocation against a naive scan-from-the-start model of MetalLB's rule.
import t from 'tap';
import fc from 'fast-check';
import { Allocator } from '../../../lib/allocator/allocator.js';
import type { Config } from '../../../lib/config/model.js';
import { formatIP, ipKey, type IP } from '../../../lib/ip/address.js';
import { buggyCount, isBuggyIP, rangeSize } from '../../../lib/ip/range.js';
import { pool, req } from '../../helpers/alloc.js';

const CONFIGS: Config[] = [
  { pools: [pool('a', ['10.0.0.0/29']), pool('b', ['10.0.1.250-10.0.2.3', 'fd00::/125'], { avoidBuggyIPs: true })], l2Advertisements: [] },
  { pools: [pool('a', ['10.0.0.0/30']), pool('b', ['fd00::/126'], { avoidBuggyIPs: true })], l2Advertisements: [] },
  { pools: [pool('a', ['10.0.0.0/28', '10.0.1.252/30']), pool('c', ['fd00::/124'])], l2Advertisements: [] },
];

const NAMES = ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11'];
const PORTS = ['TCP/53', 'UDP/53', 'TCP/80', 'TCP/443'];
const SHARE = ['', '', 'k1', 'k2'];

type Op =
  | { kind: 'allocate'; name: string; ports: string[]; share: string; backend: string; family: 4 | 6 }
  | { kind: 'release'; name: string }
  | { kind: 'assign'; name: string; pick: number; ports: string[]; share: string }
  | { kind: 'config'; index: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('allocate' as const), name: fc.constantFrom(...NAMES), ports: fc.subarray(PORTS, { minLength: 1, maxLength: 2 }), share: fc.constantFrom(...SHARE), backend: fc.constantFrom('', '', 'app=x'), family: fc.constantFrom(4 as const, 4 as const, 6 as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), name: fc.constantFrom(...NAMES) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('assign' as const), name: fc.constantFrom(...NAMES), pick: fc.nat(40), ports: fc.subarray(PORTS, { minLength: 1, maxLength: 2 }), share: fc.constantFrom(...SHARE) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('config' as const), index: fc.nat(CONFIGS.length - 1) }) },
);

interface Held { ips: IP[]; ports: string[]; share: string; backend: string }

/** Every address of the (small) test pools, in allocation order, with its pool. */
function addresses(config: Config): { ip: IP; pool: string }[] {
  const out: { ip: IP; pool: string }[] = [];
  for (const p of [...config.pools].sort((x, y) => x.name.localeCompare(y.name))) {
    for (const r of p.ranges) {
      for (let v = r.first; v <= r.last; v++) {
        const ip = { family: r.family, value: v };
        if (!(p.avoidBuggyIPs && isBuggyIP(ip))) out.push({ ip, pool: p.name });
      }
    }
  }
  return out;
}

function mayUse(model: Map<string, Held>, key: string, ip: IP, want: Omit<Held, 'ips'>): boolean {
  for (const [other, h] of model) {
    if (other === key || !h.ips.some((x) => ipKey(x) === ipKey(ip))) continue;
    if (h.share === '' || want.share !== h.share || want.backend !== h.backend) return false;
    if (h.ports.some((p) => want.ports.includes(p))) return false;
  }
  return true;
}

t.test('random operation sequences keep every invariant', async (t) => {
  let steps = 0;
  fc.assert(
    fc.property(fc.nat(CONFIGS.length - 1), fc.array(opArb, { minLength: 50, maxLength: 200 }), (start, ops) => {
      const a = new Allocator();
      let config = CONFIGS[start]!;
      a.setConfig(config);
      const model = new Map<string, Held>();
      for (const op of ops) {
        steps++;
        const key = `default/${'name' in op ? op.name : ''}`;
        if (op.kind === 'allocate') {
          const want = { ports: op.ports, share: op.share, backend: op.backend };
          const fresh = !model.has(key);
          const r = a.allocate(req(op.name, { ports: op.ports, share: op.share, backend: op.backend, families: [op.family] }));
          if (fresh) {
            // Naive model: the first address, pools by name, ranges and values in order, this Service may use.
            const expected = addresses(config).find((c) => c.ip.family === op.family && mayUse(model, key, c.ip, want));
            if ((r.ok ? formatIP(r.ips[0]!) : 'none') !== (expected ? formatIP(expected.ip) : 'none')) {
              throw new Error(`allocate ${key}: got ${r.ok ? formatIP(r.ips[0]!) : r.reason}, naive model says ${expected ? formatIP(expected.ip) : 'none'}`);
            }
          }
          model.delete(key);
          if (r.ok) model.set(key, { ips: [...r.ips], ...want });
        } else if (op.kind === 'release') {
          if (a.release(key) !== model.delete(key)) throw new Error(`release ${key} disagrees with the model`);
        } else if (op.kind === 'assign') {
          const all = addresses(config);
          const target = all[op.pick % all.length]!;
          const r = a.assign(req(op.name, { ports: op.ports, share: op.share, families: [target.ip.family] }), [target.ip]);
          if (r.ok) model.set(key, { ips: [target.ip], ports: op.ports, share: op.share, backend: '' });
          else if (a.ipsOf(key) === undefined) model.delete(key);
        } else {
          config = CONFIGS[op.index]!;
          for (const k of a.setConfig(config).released) model.delete(k);
        }
        checkInvariants(a, config, model);
      }
    }),
    { numRuns: 300, seed: 0x6beac0 },
  );
  t.ok(steps > 10_000, `ran ${steps} steps`);
});

function checkInvariants(a: Allocator, config: Config, model: Map<string, Held>): void {
  const byIP = new Map<bigint, string[]>();
  for (const [key, held] of model) {
    const ips = a.ipsOf(key);
    if (!ips || ips.map(formatIP).join() !== held.ips.map(formatIP).join()) throw new Error(`${key}: allocator has ${ips?.map(formatIP)}, model ${held.ips.map(formatIP)}`);
    for (const ip of ips) {
      const inPool = config.pools.some((p) => p.ranges.some((r) => r.family === ip.family && ip.value >= r.first && ip.value <= r.last) && !(p.avoidBuggyIPs && isBuggyIP(ip)));
      if (!inPool) throw new Error(`${key} holds ${formatIP(ip)}, outside every pool`);
      byIP.set(ipKey(ip), [...(byIP.get(ipKey(ip)) ?? []), key]);
    }
  }
  for (const [k, holders] of byIP) {
    const ip = { family: (k >> 128n ? 6 : 4) as 4 | 6, value: k & ((1n << 128n) - 1n) };
    if (a.servicesOn(ip).join() !== [...holders].sort().join()) throw new Error(`servicesOn(${formatIP(ip)}) disagrees`);
    if (holders.length < 2) continue;
    const hs = holders.map((h) => model.get(h)!);
    const ports = hs.flatMap((h) => h.ports);
    if (hs.some((h) => h.share === '' || h.share !== hs[0]!.share || h.backend !== hs[0]!.backend) || new Set(ports).size !== ports.length) {
      throw new Error(`${formatIP(ip)} held by ${holders.join(', ')} against the sharing rules`);
    }
  }
  for (const p of config.pools) {
    const c = a.counters(p.name)!;
    for (const family of [4, 6] as const) {
      const size = p.ranges.filter((r) => r.family === family).reduce((n, r) => n + rangeSize(r) - (p.avoidBuggyIPs ? buggyCount(r) : 0n), 0n);
      const assigned = family === 4 ? c.assignedIPv4 : c.assignedIPv6;
      const available = family === 4 ? c.availableIPv4 : c.availableIPv6;
      if (assigned + available !== size) throw new Error(`pool ${p.name} IPv${family}: ${assigned} + ${available} != ${size}`);
      const distinct = [...byIP.keys()].filter((k) => (k >> 128n ? 6 : 4) === family && p.ranges.some((r) => r.family === family && (k & ((1n << 128n) - 1n)) >= r.first && (k & ((1n << 128n) - 1n)) <= r.last)).length;
      if (BigInt(distinct) !== assigned) throw new Error(`pool ${p.name} IPv${family}: counter ${assigned}, model ${distinct}`);
    }
  }
}
