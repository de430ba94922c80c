import t from 'tap';
import { BackendPool, poolOptions, CONNECT_BUCKETS_MS, PASSIVE_EJECTION_MS, backendId, type BackendAddress } from '../../../lib/balancer/backend-pool.js';
import { DEFAULT_HEALTH } from '../../../lib/health/health.js';

const addr = (port: number, state: 'ready' | 'terminating' = 'ready'): BackendAddress => ({ ip: '10.0.0.1', port, state });

t.test('backendId brackets IPv6', async (t) => {
  const rows = [
    { desc: 'IPv4', b: { ip: '10.0.0.1', port: 80 }, want: '10.0.0.1:80' },
    { desc: 'IPv6', b: { ip: 'fd00::1', port: 443 }, want: '[fd00::1]:443' },
  ];
  for (const row of rows) t.equal(backendId(row.b), row.want, row.desc);
});

t.test('pool scenario: each row builds on the last', async (t) => {
  const transitions: string[] = [];
  const pool = new BackendPool({ balancer: { mode: 'roundRobin', affinityTimeoutMs: 0 }, health: DEFAULT_HEALTH, activeChecks: true }, (b, tr) => transitions.push(`${b} ${tr}`));
  const a = '10.0.0.1:1'; const b = '10.0.0.1:2';
  const pick = () => { const p = pool.pick('c', 0); return 'id' in p ? p.id : p.none; };
  type Row = { desc: string; act: () => void; pick: string; transitions: string[]; usable: string[] };
  const input = [addr(1), addr(2)];
  const frozen = JSON.stringify(input);
  const rows: Row[] = [
    { desc: 'active checks: no evidence, nobody healthy', act: () => pool.update(input), pick: 'noHealthyBackend', transitions: [], usable: [] },
    { desc: 'a passes its first check', act: () => pool.checkResult(a, true), pick: a, transitions: [`${a} up`], usable: [a] },
    { desc: 'b too', act: () => pool.checkResult(b, true), pick: b, transitions: [`${a} up`, `${b} up`], usable: [a, b] },
    { desc: 'traffic on a', act: () => { pool.opened(a, 4); pool.opened(a, 6); pool.closed(a, 10, 20); }, pick: a, transitions: [`${a} up`, `${b} up`], usable: [a, b] },
    { desc: 'a refused a connection: ejected', act: () => pool.connectFailed(a, 0), pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
    { desc: 'an unknown id is ignored everywhere', act: () => { pool.opened('x'); pool.closed('x', 1, 1); pool.connectFailed('x', 0); pool.checkResult('x', true); }, pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
    { desc: 'active checks: a refusal long ago does not readmit a (its checks will)', act: () => void pool.pick('c', 10 * PASSIVE_EJECTION_MS), pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
    { desc: 'b turns terminating: keeps its counters, takes nothing new', act: () => pool.update([addr(1), addr(2, 'terminating')]), pick: 'noHealthyBackend', transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [] },
    { desc: 'a removed and re-added starts again without evidence', act: () => { pool.update([addr(2)]); pool.update([addr(1), addr(2)]); }, pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
  ];
  for (const row of rows) {
    row.act();
    t.equal(pick(), row.pick, `${row.desc}: pick`);
    t.same(transitions, row.transitions, `${row.desc}: transitions`);
    t.same(pool.usable().map((u) => u.id), row.usable, `${row.desc}: usable for a new connection, in round-robin order`);
  }
  t.equal(JSON.stringify(input), frozen, 'input not mutated');
  const s = pool.stats();
  t.same(s[a], { state: 'ready', healthy: false, active: 0, total: 0, bytesIn: 0, bytesOut: 0, errors: {}, connectMsSum: 0, connectCount: 0, connectBuckets: CONNECT_BUCKETS_MS.map(() => 0) }, 'a re-added backend starts from zero');
  t.equal(s[b]!.state, 'ready');
  t.equal(pool.isHealthy(b), true);
  t.equal(pool.isHealthy('nope'), false);
  t.ok(pool.has(a));
  t.same(pool.addresses().map((x) => x.id).sort(), [a, b]);
});

t.test('counters: connect latency, bytes, errors by reason', async (t) => {
  const pool = new BackendPool({ balancer: { mode: 'roundRobin', affinityTimeoutMs: 1000 }, health: DEFAULT_HEALTH, activeChecks: false });
  pool.update([addr(1)]);
  const id = '10.0.0.1:1';
  pool.opened(id, 2);
  pool.opened(id, 4);
  pool.opened(id, 9000); // past the top bound: counted, in no bucket but +Inf
  pool.opened(id);
  pool.closed(id, 100, 200, 'reset');
  pool.closed(id, 1, 2);
  pool.closed(id, 0, 0);
  pool.closed(id, 0, 0);
  pool.closed(id, 0, 0); // one too many: active never goes negative
  const s = pool.stats()[id]!;
  const buckets = CONNECT_BUCKETS_MS.map((bound) => (bound === 2.5 || bound === 5 ? 1 : 0));
  t.same(s, { state: 'ready', healthy: true, active: 0, total: 4, bytesIn: 101, bytesOut: 202, errors: { reset: 1 }, connectMsSum: 9006, connectCount: 3, connectBuckets: buckets },
    '2 ms lands under 2.5, 4 ms under 5');
  s.errors['reset'] = 99;
  t.equal(pool.stats()[id]!.errors['reset'], 1, 'stats() hands out copies');
  t.same(pool.pick('c', 0), { id, address: addr(1) });
  pool.expireAffinity(5000);
  t.same(pool.pick('c', 5000), { id, address: addr(1) }, 'still picks after the affinity expired');
});

t.test('without active checks a passive ejection runs out: each row builds on the last', async (t) => {
  // One refused datagram or connection (a backend restarting) must not eject the only
  // backend for good: nothing else would ever bring it back.
  for (const ejectOnConnectFailure of [true, false]) {
    const transitions: string[] = [];
    const pool = new BackendPool({ balancer: { mode: 'roundRobin', affinityTimeoutMs: 0 }, health: { ...DEFAULT_HEALTH, ejectOnConnectFailure }, activeChecks: false }, (b, tr) => transitions.push(tr));
    pool.update([addr(1)]);
    const a = '10.0.0.1:1';
    const refusals = ejectOnConnectFailure ? 1 : DEFAULT_HEALTH.fall;
    const refuse = (now: number) => { for (let i = 0; i < refusals; i++) pool.connectFailed(a, now); };
    const pick = (now: number) => { const p = pool.pick('c', now); return 'id' in p ? p.id : p.none; };
    type Row = { desc: string; act?: () => void; now: number; pick: string; transitions: string[] };
    const t0 = 1000;
    const rows: Row[] = [
      { desc: 'healthy on kubelet readiness', now: t0, pick: a, transitions: [] },
      { desc: 'refused: ejected', act: () => refuse(t0), now: t0, pick: 'noHealthyBackend', transitions: ['down'] },
      { desc: 'still out just before the ejection runs out', now: t0 + PASSIVE_EJECTION_MS - 1, pick: 'noHealthyBackend', transitions: ['down'] },
      { desc: 'back once it runs out', now: t0 + PASSIVE_EJECTION_MS, pick: a, transitions: ['down', 'up'] },
      { desc: 'refused again: out again, for another full period', act: () => refuse(t0 + 2 * PASSIVE_EJECTION_MS), now: t0 + 3 * PASSIVE_EJECTION_MS - 1, pick: 'noHealthyBackend', transitions: ['down', 'up', 'down'] },
      { desc: 'and back again', now: t0 + 3 * PASSIVE_EJECTION_MS, pick: a, transitions: ['down', 'up', 'down', 'up'] },
      { desc: 'removed while ejected, re-added: healthy at once', act: () => { refuse(t0 + 4 * PASSIVE_EJECTION_MS); pool.update([]); pool.update([addr(1)]); }, now: t0 + 4 * PASSIVE_EJECTION_MS, pick: a, transitions: ['down', 'up', 'down', 'up', 'down'] },
      { desc: 'a later refusal still ejects and runs out (the ejected count stayed right)', act: () => refuse(t0 + 5 * PASSIVE_EJECTION_MS), now: t0 + 6 * PASSIVE_EJECTION_MS, pick: a, transitions: ['down', 'up', 'down', 'up', 'down', 'down', 'up'] },
    ];
    for (const row of rows) {
      row.act?.();
      const desc = `ejectOnConnectFailure ${ejectOnConnectFailure}: ${row.desc}`;
      t.equal(pick(row.now), row.pick, `${desc}: pick`);
      t.same(transitions, row.transitions, `${desc}: transitions`);
    }
  }
});

t.test('readmitDue says how long the next ejection has left, for an owner that does not pick', async (t) => {
  const pool = new BackendPool({ balancer: { mode: 'roundRobin', affinityTimeoutMs: 0 }, health: DEFAULT_HEALTH, activeChecks: false, passiveEjectionMs: 100 });
  pool.update([addr(1), addr(2)]);
  const rows: { desc: string; act?: () => void; now: number; left: number | undefined; usable: string[] }[] = [
    { desc: 'nothing ejected', now: 0, left: undefined, usable: ['10.0.0.1:1', '10.0.0.1:2'] },
    { desc: 'a ejected at 0', act: () => pool.connectFailed('10.0.0.1:1', 0), now: 10, left: 90, usable: ['10.0.0.1:2'] },
    { desc: 'b ejected at 50: a is still the next', act: () => pool.connectFailed('10.0.0.1:2', 50), now: 60, left: 40, usable: [] },
    { desc: 'a back at 100, b next', now: 100, left: 50, usable: ['10.0.0.1:1'] },
    { desc: 'b back at 150, none left', now: 150, left: undefined, usable: ['10.0.0.1:1', '10.0.0.1:2'] },
  ];
  for (const row of rows) {
    row.act?.();
    t.equal(pool.readmitDue(row.now), row.left, `${row.desc}: ms left`);
    t.same(pool.usable().map((u) => u.id), row.usable, `${row.desc}: usable`);
  }
});

t.test("poolOptions: a frontend's options as its pool's", async (t) => {
  const base = { balance: 'leastConnections' as const, affinityTimeoutMs: 5, health: DEFAULT_HEALTH, activeChecks: true };
  const rows = [
    { desc: 'no ejection length: the pool keeps its default', in: base, out: { balancer: { mode: 'leastConnections', affinityTimeoutMs: 5 }, health: DEFAULT_HEALTH, activeChecks: true } },
    { desc: 'an ejection length is passed on', in: { ...base, passiveEjectionMs: 7 }, out: { balancer: { mode: 'leastConnections', affinityTimeoutMs: 5 }, health: DEFAULT_HEALTH, activeChecks: true, passiveEjectionMs: 7 } },
  ];
  for (const row of rows) t.same(poolOptions(row.in), row.out, row.desc);
});
