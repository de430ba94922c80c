import t from 'tap';
import { WorkQueue } from '../../../lib/controller/workqueue.js';
import { FakeScheduler } from '../../helpers/fake-scheduler.js';

t.test('keys coalesce and are never processed twice at once', async (t) => {
  const q = new WorkQueue(new FakeScheduler());
  q.add('ns/a');
  q.add('ns/b');
  q.add('ns/a');
  t.equal(q.length, 2, 'a repeated add is coalesced');
  const first = await q.get();
  t.equal(first, 'ns/a', 'FIFO');
  q.add('ns/a');
  t.equal(q.length, 1, 'a key being processed is not queued again...');
  q.done('ns/a');
  t.equal(q.length, 2, '...until done(), when it comes back once');
  t.equal(await q.get(), 'ns/b');
  t.equal(await q.get(), 'ns/a');
  q.done('ns/b');
  q.done('ns/a');
  t.equal(q.length, 0);
});

t.test('a waiting worker gets a key as soon as it is added', async (t) => {
  const q = new WorkQueue(new FakeScheduler());
  const pending = q.get();
  q.add('ns/x');
  t.equal(await pending, 'ns/x');
  q.add('ns/x');
  t.equal(q.length, 0, 'handed out, so a new add waits for done()');
  q.done('ns/x');
  t.equal(q.length, 1);
});

t.test('failures back off exponentially, capped, and forget resets them', async (t) => {
  const s = new FakeScheduler();
  const q = new WorkQueue(s, { baseMs: 5, maxMs: 40 });
  const rows: { desc: string; expectDelay: number }[] = [
    { desc: 'first failure: base', expectDelay: 5 },
    { desc: 'second: doubled', expectDelay: 10 },
    { desc: 'third', expectDelay: 20 },
    { desc: 'fourth', expectDelay: 40 },
    { desc: 'fifth: capped', expectDelay: 40 },
  ];
  for (const row of rows) {
    const delay = q.addRateLimited('ns/f');
    t.equal(delay, row.expectDelay, row.desc);
    s.advance(delay - 1);
    t.equal(q.length, 0, `${row.desc}: not before the delay`);
    s.advance(1);
    t.equal(q.length, 1, `${row.desc}: back after the delay`);
    t.equal(await q.get(), 'ns/f');
    q.done('ns/f');
  }
  t.equal(q.failures('ns/f'), 5);
  q.forget('ns/f');
  t.equal(q.addRateLimited('ns/f'), 5, 'after forget, back to base');
});

t.test('close cancels delayed adds, wakes waiters and is idempotent', async (t) => {
  const s = new FakeScheduler();
  const q = new WorkQueue(s);
  q.addAfter('ns/later', 100);
  const waiting = q.get();
  q.close();
  q.close();
  t.equal(await waiting, undefined, 'a waiter is released');
  t.equal(s.timers.size, 0, 'no timer left behind');
  q.add('ns/y');
  t.equal(q.length, 0, 'nothing is queued after close');
  t.equal(await q.get(), undefined);
});

t.test('addAfter replaces an earlier pending add of the same key', async (t) => {
  const s = new FakeScheduler();
  const q = new WorkQueue(s);
  q.addAfter('ns/k', 100);
  q.addAfter('ns/k', 10);
  t.equal(s.timers.size, 1);
  s.advance(10);
  t.equal(q.length, 1);
  s.advance(100);
  t.equal(q.length, 1, 'the replaced timer does not fire');
  q.addAfter('ns/now', 0);
  t.equal(q.length, 2, 'a zero delay adds at once');
});
