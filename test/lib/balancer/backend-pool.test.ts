import t from 'tap';
import { BackendPool, CONNECT_BUCKETS_MS, backendId, type BackendAddress } from '../../../lib/balancer/backend-pool.js';
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
    { desc: 'a refused a connection: ejected', act: () => pool.connectFailed(a), pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
    { desc: 'an unknown id is ignored everywhere', act: () => { pool.opened('x'); pool.closed('x', 1, 1); pool.connectFailed('x'); pool.checkResult('x', true); }, pick: b, transitions: [`${a} up`, `${b} up`, `${a} down`], usable: [b] },
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
