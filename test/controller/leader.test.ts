// The election loop's decisions over time, against a Lease store with the API server's
// optimistic concurrency (a write with a stale resourceVersion gets 409). Real-server
// behaviour is covered by the integration scenarios; this drives the timing precisely.
import t from 'tap';
import { LeaderElector } from '../../controller/leader.js';
import type { ControllerAPI } from '../../kube/client.js';
import type { LeaseSpec } from '../../lib/election/lease.js';
import { FakeScheduler } from '../helpers/fake-scheduler.js';

class LeaseStore {
  lease: { spec: LeaseSpec; resourceVersion: string } | undefined;
  #rv = 0;
  down = false;
  api(): ControllerAPI {
    const fail = () => { if (this.down) throw Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }); };
    return {
      readLease: async () => { fail(); return this.lease ? { spec: { ...this.lease.spec }, resourceVersion: this.lease.resourceVersion } : undefined; },
      createLease: async (_ns, _n, spec) => { fail(); if (this.lease) throw Object.assign(new Error('exists'), { statusCode: 409 }); this.lease = { spec, resourceVersion: String(++this.#rv) }; },
      replaceLease: async (_ns, _n, spec, rv) => { fail(); if (this.lease?.resourceVersion !== rv) throw Object.assign(new Error('conflict'), { statusCode: 409 }); this.lease = { spec, resourceVersion: String(++this.#rv) }; },
      patchServiceStatus: async () => undefined,
      patchServiceAnnotations: async () => undefined,
      createEvent: async () => undefined,
      patchPoolStatus: async () => undefined,
    };
  }
}

const tick = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };

function elector(store: LeaseStore, s: FakeScheduler, identity: string, log: string[]) {
  return new LeaderElector(store.api(), {
    namespace: 'ns', name: 'lease', identity, leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5,
    scheduler: s, now: () => s.now,
    onStartedLeading: () => log.push(`${identity} leads`),
    onStoppedLeading: () => log.push(`${identity} stops`),
  });
}

async function advance(s: FakeScheduler, ms: number) {
  for (let done = 0; done < ms; done += 100) { s.advance(100); await tick(); }
}

t.test('one leader; takeover after the lease expires; release hands over at once', async (t) => {
  const store = new LeaseStore();
  const s = new FakeScheduler();
  const log: string[] = [];
  const a = elector(store, s, 'a', log);
  const b = elector(store, s, 'b', log);
  a.start(); await tick();
  b.start(); await tick();
  await advance(s, 2000);
  t.same(log, ['a leads'], 'a created the Lease; b waits while a renews');
  t.ok(a.isLeader && !b.isLeader);

  // a's API calls start failing (its node lost the network): it must step down at the
  // renew deadline, before b may take over at the lease duration.
  store.down = true; // both lose the API for a moment
  await advance(s, 2600);
  t.same(log, ['a leads', 'a stops'], 'a stepped down after the renew deadline');
  store.down = false;
  await advance(s, 3600);
  t.equal(log.filter((l) => l.endsWith('leads')).length, 2, 'someone leads again once the API is back');
  t.ok(a.isLeader !== b.isLeader, 'exactly one leader');

  const leader = a.isLeader ? a : b;
  const other = a.isLeader ? b : a;
  await leader.close();
  t.equal(store.lease?.spec.holderIdentity, '', 'close() released the Lease');
  await advance(s, 600);
  t.ok(other.isLeader, 'the other took over within one retry period, not a lease duration');
  await other.close();
  await other.close();
  t.equal(s.timers.size, 0, 'no timer left');
});
