import t from 'tap';
import { decide, microTime, observe, releasedSpec, type LeaseSpec, type Observation } from '../../../lib/election/lease.js';

const wall = new Date('2026-11-22T10:00:00.123Z');
const held = (holder: string, renew = '2026-11-22T09:59:59.000000Z', transitions = 3): LeaseSpec => ({
  holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: '2026-11-22T09:00:00.000000Z', renewTime: renew, leaseTransitions: transitions,
});

t.test('decisions on a Lease', async (t) => {
  const rows: { desc: string; current: LeaseSpec | undefined; observedAt?: number; now: number; expect: string; transitions?: number }[] = [
    { desc: 'no Lease: create it', current: undefined, now: 0, expect: 'create', transitions: 0 },
    { desc: 'ours: renew, transitions unchanged', current: held('me'), now: 0, expect: 'renew', transitions: 3 },
    { desc: 'another holder seen just now: wait', current: held('other'), observedAt: 1000, now: 1000, expect: 'wait' },
    { desc: 'another holder, unchanged for less than the duration: wait', current: held('other'), observedAt: 1000, now: 15_999, expect: 'wait' },
    { desc: 'another holder, unchanged for the whole duration: acquire', current: held('other'), observedAt: 1000, now: 16_000, expect: 'acquire', transitions: 4 },
    { desc: 'released (empty holder): acquire at once', current: held(''), observedAt: 1000, now: 1000, expect: 'acquire', transitions: 4 },
  ];
  for (const row of rows) {
    const observed: Observation | undefined = row.observedAt === undefined ? undefined : observe(row.current, undefined, row.observedAt);
    const d = decide({ identity: 'me', leaseDurationSeconds: 15, current: row.current, observed, now: row.now, wallTime: wall });
    t.equal(d.action, row.expect, row.desc);
    if (d.action !== 'wait') {
      t.equal(d.spec.holderIdentity, 'me', `${row.desc}: holder`);
      t.equal(d.spec.renewTime, '2026-11-22T10:00:00.123000Z', `${row.desc}: renew time in MicroTime`);
      t.equal(d.spec.leaseTransitions, row.transitions, `${row.desc}: transitions`);
    } else {
      t.equal(d.holder, 'other', `${row.desc}: holder reported`);
    }
  }
});

t.test('expiry follows our clock from when the record last changed, not the times in it', async (t) => {
  let observed = observe(held('other', 'A'), undefined, 0);
  observed = observe(held('other', 'A'), observed, 10_000);
  t.equal(observed.at, 0, 'an unchanged record keeps its first sighting');
  observed = observe(held('other', 'B'), observed, 12_000);
  t.equal(observed.at, 12_000, 'a renewal resets the clock');
  const d = decide({ identity: 'me', leaseDurationSeconds: 15, current: held('other', 'B'), observed, now: 20_000, wallTime: wall });
  t.same(d, { action: 'wait', holder: 'other', expiresInMs: 7_000 });
  // A holder whose clock is an hour behind writes old renewTimes; we still wait.
  const skewed = held('other', '2026-11-22T09:00:00.000000Z');
  const o2 = observe(skewed, undefined, 50_000);
  t.equal(decide({ identity: 'me', leaseDurationSeconds: 15, current: skewed, observed: o2, now: 50_001, wallTime: wall }).action, 'wait');
});

t.test('two candidates evaluating one expired Lease both ask to acquire; the API server picks one', async (t) => {
  const current = held('dead');
  const observed = observe(current, undefined, 0);
  const a = decide({ identity: 'a', leaseDurationSeconds: 15, current, observed, now: 15_000, wallTime: wall });
  const b = decide({ identity: 'b', leaseDurationSeconds: 15, current, observed, now: 15_000, wallTime: wall });
  t.equal(a.action, 'acquire');
  t.equal(b.action, 'acquire', 'the resourceVersion precondition, not this function, makes exactly one win');
});

t.test('release empties the holder and shortens the duration', async (t) => {
  const r = releasedSpec(held('me'), wall);
  t.equal(r.holderIdentity, '');
  t.equal(r.leaseDurationSeconds, 1);
  t.equal(r.leaseTransitions, 3);
  t.equal(microTime(new Date('2026-01-02T03:04:05.006Z')), '2026-01-02T03:04:05.006000Z');
});
