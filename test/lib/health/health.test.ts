import t from 'tap';
import { BackendHealth, DEFAULT_HEALTH, type CheckResult } from '../../../lib/health/health.js';

t.test('rise and fall, step by step', async (t) => {
  const h = new BackendHealth({ rise: 2, fall: 3, ejectOnConnectFailure: false }, false);
  const rows: { desc: string; input: CheckResult | 'connectFailed'; transition: string | undefined; healthy: boolean }[] = [
    { desc: 'no evidence yet: unhealthy', input: 'fail', transition: undefined, healthy: false },
    { desc: 'still no evidence', input: 'fail', transition: undefined, healthy: false },
    { desc: 'the first pass is the evidence: up at once', input: 'pass', transition: 'up', healthy: true },
    { desc: 'one failure', input: 'fail', transition: undefined, healthy: true },
    { desc: 'two failures', input: 'fail', transition: undefined, healthy: true },
    { desc: 'a pass resets the count', input: 'pass', transition: undefined, healthy: true },
    { desc: 'failure 1', input: 'fail', transition: undefined, healthy: true },
    { desc: 'failure 2 (a refused connection counts as one)', input: 'connectFailed', transition: undefined, healthy: true },
    { desc: 'fall 3: down', input: 'fail', transition: 'down', healthy: false },
    { desc: 'down stays down on failures', input: 'fail', transition: undefined, healthy: false },
    { desc: 'once proven, one pass is not enough to recover', input: 'pass', transition: undefined, healthy: false },
    { desc: 'rise 2: up again', input: 'pass', transition: 'up', healthy: true },
  ];
  for (const row of rows) {
    const tr = row.input === 'connectFailed' ? h.connectFailed() : h.check(row.input);
    t.equal(tr, row.transition, `${row.desc}: transition`);
    t.equal(h.healthy, row.healthy, `${row.desc}: healthy`);
  }
});

t.test('passive ejection takes a backend out at the first refused connection', async (t) => {
  const h = new BackendHealth(DEFAULT_HEALTH, true);
  t.equal(h.connectFailed(), 'down');
  t.equal(h.healthy, false);
  t.equal(h.connectFailed(), undefined, 'already down');
  t.equal(h.check('pass'), undefined);
  t.equal(h.check('pass'), 'up', 'recovers when checks pass');
});

t.test('readmit: back without a check (its owner\'s passive ejection ran out)', async (t) => {
  const h = new BackendHealth(DEFAULT_HEALTH, true);
  t.equal(h.readmit(), undefined, 'healthy already');
  t.equal(h.connectFailed(), 'down');
  t.equal(h.readmit(), 'up');
  t.equal(h.healthy, true);
  t.equal(h.connectFailed(), 'down', 'the next refusal ejects it again');
});
