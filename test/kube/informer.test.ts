// The informer's recovery logic, driven through its ListWatchSource seam. Talking to a
// real API server is covered by the integration tests; here a scripted source makes
// failures happen on cue (a dead watch, a 410, a refused list).
import t from 'tap';
import { Informer, type KubeObject, type ListWatchSource, type WatchEventType } from '../../kube/informer.js';
import { FakeScheduler } from '../helpers/fake-scheduler.js';

type Obj = KubeObject & { metadata: { name: string; namespace: string; resourceVersion: string } };
const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });
const tick = () => new Promise((r) => setImmediate(r));

class ScriptedSource implements ListWatchSource<Obj> {
  items: Obj[] = [];
  rv = '1';
  listCalls = 0;
  failLists = 0;
  watches: { rv: string; onEvent: (t: WatchEventType, o: Obj) => void; onDone: (e: unknown) => void; aborted: boolean }[] = [];
  async list() {
    this.listCalls++;
    if (this.failLists > 0) { this.failLists--; throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }); }
    return { items: [...this.items], resourceVersion: this.rv };
  }
  async watch(rv: string, _timeout: number, onEvent: (t: WatchEventType, o: Obj) => void, onDone: (e: unknown) => void) {
    const w = { rv, onEvent, onDone, aborted: false };
    this.watches.push(w);
    return { abort: () => { w.aborted = true; } };
  }
  get last() { return this.watches[this.watches.length - 1]!; }
}

function setup(source: ScriptedSource) {
  const s = new FakeScheduler();
  const events: string[] = [];
  const errors: number[] = [];
  const inf = new Informer<Obj>(source, (e, o) => events.push(`${e} ${o.metadata.name}@${o.metadata.resourceVersion}`), {
    scheduler: s, watchTimeoutSeconds: 60, watchdogGraceMs: 10_000, backoffBaseMs: 100, backoffMaxMs: 1_000,
    onError: (_e, ms) => errors.push(ms),
  });
  return { s, events, errors, inf };
}

t.test('lists, then watches from the list resourceVersion and applies events', async (t) => {
  const src = new ScriptedSource();
  src.items = [obj('a', '5')];
  src.rv = '7';
  const { inf, events } = setup(src);
  inf.start();
  await inf.waitForSync();
  await tick();
  t.same(events, ['add a@5']);
  t.equal(src.last.rv, '7');
  src.last.onEvent('MODIFIED', obj('a', '8'));
  src.last.onEvent('ADDED', obj('b', '9'));
  src.last.onEvent('BOOKMARK', obj('', '10'));
  src.last.onEvent('DELETED', obj('a', '11'));
  t.same(events, ['add a@5', 'update a@8', 'add b@9', 'delete a@11']);
  t.same(inf.list().map((o) => o.metadata.name), ['b']);
  src.last.onDone(null);
  await tick();
  t.equal(src.watches.length, 2, 'a server-side timeout re-watches');
  t.equal(src.last.rv, '11', '...from the last resourceVersion seen (bookmarks count)');
  t.equal(src.listCalls, 1, 'without relisting');
  inf.close();
});

t.test('errors back off, capped, and recovery resumes for ever', async (t) => {
  const src = new ScriptedSource();
  const { inf, s, errors } = setup(src);
  src.failLists = 5;
  inf.start();
  for (let i = 0; i < 5; i++) { await tick(); s.advance(errors[errors.length - 1] ?? 0); }
  await inf.waitForSync();
  t.same(errors, [100, 200, 400, 800, 1000], 'exponential, capped at the maximum');
  t.equal(src.listCalls, 6);
  inf.close();
});

t.test('a silent watch is aborted by the watchdog and the cache is relisted', async (t) => {
  const src = new ScriptedSource();
  src.items = [obj('a', '1')];
  const { inf, s, events, errors } = setup(src);
  inf.start();
  await inf.waitForSync();
  await tick();
  const dead = src.last;
  // While the connection was dead, 'a' was deleted and 'c' created.
  src.items = [obj('c', '3')];
  src.rv = '3';
  s.advance(69_999);
  t.notOk(dead.aborted, 'not before timeout plus grace');
  s.advance(1);
  t.ok(dead.aborted, 'aborted after timeout plus grace');
  t.equal(errors.length, 1);
  s.advance(errors[0]!);
  await tick(); await tick();
  t.same(events, ['add a@1', 'delete a@1', 'add c@3'], 'the relist diffs against the cache');
  dead.onEvent('ADDED', obj('zombie', '9'));
  t.notOk(inf.get('ns/zombie'), 'events from an abandoned watch are ignored');
  inf.close();
});

t.test('410 Gone relists; close is idempotent and leaves no timer', async (t) => {
  const src = new ScriptedSource();
  const { inf, s } = setup(src);
  inf.start();
  await inf.waitForSync();
  await tick();
  src.last.onEvent('ERROR', { code: 410 } as unknown as Obj);
  src.last.onDone(null);
  await tick(); await tick();
  t.equal(src.listCalls, 2, 'expired resourceVersion: relisted');
  src.last.onDone(Object.assign(new Error('Gone'), { statusCode: 410 }));
  await tick(); await tick();
  t.equal(src.listCalls, 3, 'a 410 status on the request: relisted too');
  inf.close();
  inf.close();
  t.equal(s.timers.size, 0, 'no timer left');
  t.ok(src.last.aborted, 'the watch is aborted');
});
