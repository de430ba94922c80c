// The controller against a real kube-apiserver and etcd, running with exactly its
// ServiceAccount's RBAC. Scenarios share one cluster and build on each other, in order.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, deletePool, eventsFor, ingressOf, lbService, startCluster, startController, until, waitIngress, type Cluster, type RunningController } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'beacon-ctl-'));
let c: Cluster;
let ctl: RunningController;

t.before(async () => {
  c = await startCluster(dir);
  await createPool(c, 'general', ['10.10.0.0/30']);
  await createPool(c, 'manual', ['10.20.0.0/30'], { autoAssign: false });
  await createPool(c, 'v6', ['fd00:10::/126']);
  await createPool(c, 'team', ['10.30.0.0/31'], { serviceAllocation: { namespaces: ['team'], priority: 1 } });
  for (const ns of ['team', 'other']) await c.core.createNamespace({ body: { metadata: { name: ns } } });
  ctl = startController(c, 'ctl-a');
});

t.teardown(async () => {
  if (process.env['BEACON_TEST_LOGS']) (await import('node:fs')).writeFileSync(process.env['BEACON_TEST_LOGS'], ctl?.logs() ?? '');
  await ctl?.stop('SIGKILL');
  await c?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const create = (svc: ReturnType<typeof lbService>) => c.core.createNamespacedService({ namespace: svc.metadata!.namespace!, body: svc });

t.test('a pending Service gets the lowest address, status, annotation and Event', async (t) => {
  const started = Date.now();
  await create(lbService('web'));
  t.equal(await waitIngress(c.core, 'web', '10.10.0.0', 'default', 20_000), '10.10.0.0');
  t.comment(`assigned ${Date.now() - started} ms after creation (includes the controller's start)`);
  const svc = await c.core.readNamespacedService({ name: 'web', namespace: 'default' });
  t.equal(svc.status?.loadBalancer?.ingress?.[0]?.ipMode, 'Proxy', 'ipMode Proxy: our proxy serves it');
  t.equal(svc.metadata?.annotations?.['beacon-lb.io/ip-allocated-from-pool'], 'general');
  const events = await until('IPAllocated event', async () => (await eventsFor(c.core, 'web')).find((e) => e.reason === 'IPAllocated'));
  t.match(events.message, /10\.10\.0\.0.*general/);
});

t.test('requested IPs, pool annotations and autoAssign', async (t) => {
  await create(lbService('pinned-ip', { annotations: { 'metallb.io/loadBalancerIPs': '10.10.0.3' } }));
  await create(lbService('manual', { annotations: { 'metallb.universe.tf/address-pool': 'manual' } }));
  await create(lbService('vip', { annotations: { 'beacon-lb.io/proxy': 'false' } }));
  await create(lbService('fourth'));
  t.equal(await waitIngress(c.core, 'pinned-ip', '10.10.0.3'), '10.10.0.3', 'the requested address');
  t.equal(await waitIngress(c.core, 'manual', '10.20.0.0'), '10.20.0.0', 'the annotated pool, although autoAssign is false');
  t.equal(await waitIngress(c.core, 'vip', '10.10.0.1'), '10.10.0.1', 'the next free address of the general pool');
  const vip = await c.core.readNamespacedServiceStatus({ name: 'vip', namespace: 'default' });
  t.equal(vip.status?.loadBalancer?.ingress?.[0]?.ipMode, 'VIP', 'opted out of our proxy: ipMode VIP');
  t.equal(await waitIngress(c.core, 'fourth', '10.10.0.2'), '10.10.0.2', 'the last general address');
});

t.test('another class is left alone; a namespace pin wins', async (t) => {
  await create(lbService('theirs', { cls: 'example.com/other' }));
  await create(lbService('unclassed', { cls: null }));
  await create(lbService('team-svc', { ns: 'team' }));
  t.equal(await waitIngress(c.core, 'team-svc', '10.30.0.0', 'team'), '10.30.0.0', 'the team pool, by namespace');
  await new Promise((r) => setTimeout(r, 1000));
  t.same(await ingressOf(c.core, 'theirs'), [], 'another loadBalancerClass gets nothing');
  t.same(await ingressOf(c.core, 'unclassed'), [], 'no class gets nothing unless configured');
});

t.test('dual stack, service-label pinning, priority', async (t) => {
  await createPool(c, 'dual', ['10.70.0.0/32', 'fd00:70::/127'], { autoAssign: false });
  await create(lbService('both', { annotations: { 'beacon-lb.io/address-pool': 'dual' }, ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }));
  t.equal(await waitIngress(c.core, 'both', '10.70.0.0,fd00:70::'), '10.70.0.0,fd00:70::', 'RequireDualStack: one address of each family');
  await create(lbService('prefer6', { annotations: { 'beacon-lb.io/address-pool': 'dual' }, ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv6', 'IPv4'] }));
  t.equal(await waitIngress(c.core, 'prefer6', 'fd00:70::1'), 'fd00:70::1', 'PreferDualStack takes the family left');
  await create(lbService('need-both', { annotations: { 'beacon-lb.io/address-pool': 'dual' }, ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] }));
  const failed = await until('RequireDualStack refusal', async () => (await eventsFor(c.core, 'need-both')).find((e) => e.reason === 'AllocationFailed'));
  t.match(failed.message, /poolExhausted/);

  await createPool(c, 'gold-low', ['10.80.0.0/32'], { serviceAllocation: { priority: 20, serviceSelectors: [{ matchLabels: { tier: 'gold' } }] } });
  await createPool(c, 'gold-high', ['10.81.0.0/32'], { serviceAllocation: { priority: 10, serviceSelectors: [{ matchLabels: { tier: 'gold' } }] } });
  const gold = (name: string) => { const s = lbService(name, { ns: 'other' }); s.metadata!.labels = { tier: 'gold' }; return s; };
  await create(gold('gold-1'));
  t.equal(await waitIngress(c.core, 'gold-1', '10.81.0.0', 'other'), '10.81.0.0', 'the labelled Service takes the higher-priority pool');
  await create(gold('gold-2'));
  t.equal(await waitIngress(c.core, 'gold-2', '10.80.0.0', 'other'), '10.80.0.0', 'then the next priority');
});

t.test('/metrics and /readyz', async (t) => {
  const port = await until('status server port', async () => /"listen":"127\.0\.0\.1:(\d+)"/.exec(ctl.logs())?.[1]);
  t.equal(await (await fetch(`http://127.0.0.1:${port}/readyz`)).text(), 'ok');
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^beacon_controller_leader 1$/m);
  t.match(metrics, /^beacon_controller_config_stale 0$/m);
  t.match(metrics, /^beacon_controller_pool_addresses_in_use\{pool="dual",family="ipv6"\} 2$/m);
  t.match(metrics, /^beacon_controller_reconcile_duration_seconds_count\{result="ok"\} \d+$/m);
});

t.test('exhaustion, then a freed address goes to the pending Service', async (t) => {
  await create(lbService('waiting'));
  const failed = await until('AllocationFailed event', async () => (await eventsFor(c.core, 'waiting')).find((e) => e.reason === 'AllocationFailed'));
  t.match(failed.message, /poolExhausted/);
  t.same(await ingressOf(c.core, 'waiting'), [], 'still pending');
  // web turns ClusterIP: its address is freed and handed to the pending Service.
  await c.core.patchNamespacedService({ name: 'web', namespace: 'default', body: [{ op: 'replace', path: '/spec/type', value: 'ClusterIP' }, { op: 'remove', path: '/spec/loadBalancerClass' }] });
  t.equal(await waitIngress(c.core, 'waiting', '10.10.0.0'), '10.10.0.0', 'the pending Service gets the freed address');
  t.same(await waitIngress(c.core, 'web', ''), '', 'the ClusterIP Service has no ingress any more');
  await until('ClearAssignment event', async () => (await eventsFor(c.core, 'web')).find((e) => e.reason === 'ClearAssignment'));
});

t.test('sharing: allowed with one key and distinct ports, refused on a port clash', async (t) => {
  await createPool(c, 'dns', ['10.40.0.0/31']);
  const share = { 'metallb.io/allow-shared-ip': 'dns', 'beacon-lb.io/address-pool': 'dns' };
  await create(lbService('dns-udp', { annotations: share, ports: [{ port: 53, protocol: 'UDP' }] }));
  await create(lbService('dns-tcp', { annotations: share, ports: [{ port: 53, protocol: 'TCP' }] }));
  const a = await waitIngress(c.core, 'dns-udp', '*');
  t.equal(await waitIngress(c.core, 'dns-tcp', a), a, 'TCP/53 and UDP/53 share one address');
  await create(lbService('dns-udp2', { annotations: { ...share, 'metallb.io/loadBalancerIPs': a }, ports: [{ port: 53, protocol: 'UDP' }] }));
  const failed = await until('refusal', async () => (await eventsFor(c.core, 'dns-udp2')).find((e) => e.reason === 'AllocationFailed'));
  t.match(failed.message, /ipUnavailable.*port UDP\/53 is already used/);
});

t.test('pool counters are written to IPAddressPool status', async (t) => {
  const status = await until('general pool status', async () => {
    const p = await c.custom.getNamespacedCustomObjectStatus({ group: 'beacon-lb.io', version: 'v1beta1', namespace: 'beacon-system', plural: 'ipaddresspools', name: 'general' }) as { status?: Record<string, number> };
    return p.status?.['assignedIPv4'] === 4 ? p.status : false;
  });
  t.same(status, { assignedIPv4: 4, assignedIPv6: 0, availableIPv4: 0, availableIPv6: 0 }, 'the /30 is full');
  const v6 = await c.custom.getNamespacedCustomObjectStatus({ group: 'beacon-lb.io', version: 'v1beta1', namespace: 'beacon-system', plural: 'ipaddresspools', name: 'v6' }) as { status?: Record<string, number> };
  t.same(v6.status, { assignedIPv4: 0, assignedIPv6: 0, availableIPv4: 0, availableIPv6: 4 });
});

t.test('an invalid configuration keeps the last valid one; fixed, it applies', async (t) => {
  await createPool(c, 'bad', ['10.10.0.2/31']); // overlaps general
  await until('config refused', async () => /configuration refused/.test(ctl.logs()));
  await create(lbService('after-bad', { annotations: { 'beacon-lb.io/address-pool': 'manual' } }));
  t.equal(await waitIngress(c.core, 'after-bad', '10.20.0.1'), '10.20.0.1', 'allocation goes on under the last valid configuration');
  await deletePool(c, 'bad');
  await createPool(c, 'extra', ['10.50.0.0/32']);
  await create(lbService('after-fix', { annotations: { 'beacon-lb.io/address-pool': 'extra' } }));
  t.equal(await waitIngress(c.core, 'after-fix', '10.50.0.0'), '10.50.0.0', 'the fixed configuration applies');
});

t.test('deleting a pool reallocates its Services', async (t) => {
  await deletePool(c, 'team');
  // The lowest free address of the general pools, by name: dns's second address.
  t.equal(await waitIngress(c.core, 'team-svc', '10.40.0.1', 'team'), '10.40.0.1', 'moved out of the deleted pool');
  const events = await until('a second IPAllocated', async () => {
    const e = (await eventsFor(c.core, 'team-svc', 'team')).filter((x) => x.reason === 'IPAllocated');
    return e.length >= 2 ? e : false;
  });
  t.match(events.map((e) => e.message).join('\n'), /10\.40\.0\.1/);
  await createPool(c, 'team2', ['10.31.0.0/32'], { serviceAllocation: { namespaces: ['team'] } });
  await create(lbService('team-svc2', { ns: 'team' }));
  t.equal(await waitIngress(c.core, 'team-svc2', '10.31.0.0', 'team'), '10.31.0.0', 'a new pinned pool serves new Services');
  t.same(await ingressOf(c.core, 'team-svc', 'team'), ['10.40.0.1'], 'a Service with a valid address is not moved');
});

t.test('the ConfigMap transport merges with the CRDs; a bad ConfigMap is refused with an Event', async (t) => {
  const cm = (yaml: string) => ({ metadata: { name: 'beacon-config', namespace: 'beacon-system' }, data: { 'config.yaml': yaml } });
  await c.core.createNamespacedConfigMap({ namespace: 'beacon-system', body: cm('apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: from-cm}\nspec:\n  addresses: [10.90.0.0/32]\n  autoAssign: false\n') });
  await create(lbService('cm-svc', { annotations: { 'metallb.io/address-pool': 'from-cm' } }));
  t.equal(await waitIngress(c.core, 'cm-svc', '10.90.0.0'), '10.90.0.0', 'a metallb.io pool from the ConfigMap serves a Service');
  // Overlapping a CRD pool: cross-transport validation refuses it.
  await c.core.replaceNamespacedConfigMap({ name: 'beacon-config', namespace: 'beacon-system', body: cm('apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: from-cm}\nspec:\n  addresses: [10.20.0.0/32]\n') });
  const warning = await until('InvalidConfig Event', async () => (await eventsFor(c.core, 'beacon-config', 'beacon-system')).find((e) => e.reason === 'InvalidConfig'));
  t.match(warning.message, /IPAddressPool\/(manual|from-cm) spec\.addresses\[0\]: .*overlaps IPAddressPool\/(from-cm|manual)/, 'the Event names both pools');
  t.same(await ingressOf(c.core, 'cm-svc'), ['10.90.0.0'], 'the last valid configuration stays: nothing moved');
  await c.core.deleteNamespacedConfigMap({ name: 'beacon-config', namespace: 'beacon-system' });
  t.equal(await waitIngress(c.core, 'cm-svc', ''), '', 'its pool gone with the ConfigMap, the Service is pending again');
});

t.test('a controller restart moves no IP', async (t) => {
  const before = await allIngress();
  t.equal(await ctl.stop(), 0, 'clean exit');
  ctl = startController(c, 'ctl-b');
  await create(lbService('after-restart', { annotations: { 'beacon-lb.io/address-pool': 'manual' } }));
  t.equal(await waitIngress(c.core, 'after-restart', '10.20.0.2', 'default', 20_000), '10.20.0.2', 'a new Service gets the next free address, not a held one');
  t.same(await allIngress(), { ...before, 'default/after-restart': '10.20.0.2' }, 'every other address is where it was');
});

t.test('kube-apiserver stopped and restarted under the controller', async (t) => {
  await c.plane.stopAPIServer();
  await new Promise((r) => setTimeout(r, 2000));
  await c.plane.startAPIServer();
  await create(lbService('after-outage', { annotations: { 'beacon-lb.io/address-pool': 'manual' } }));
  t.equal(await waitIngress(c.core, 'after-outage', '10.20.0.3', 'default', 60_000), '10.20.0.3', 'the controller recovered by itself');
});

t.test('two replicas: kill -9 of the leader during churn leaves no duplicate and no stuck Service', async (t) => {
  await createPool(c, 'churn', ['10.60.0.0/27']);
  const standby = startController(c, 'ctl-c');
  await until('standby ready', async () => /caches synced/.test(standby.logs()), 20_000);
  const names = Array.from({ length: 24 }, (_, i) => `churn-${i}`);
  const creating = (async () => {
    for (const name of names) {
      await create(lbService(name, { annotations: { 'beacon-lb.io/address-pool': 'churn' } }));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const killedAt = Date.now();
  await ctl.stop('SIGKILL');
  await creating;
  const ips = await until('every churn Service assigned', async () => {
    const got = await Promise.all(names.map((n) => ingressOf(c.core, n)));
    return got.every((g) => g.length === 1) ? got.map((g) => g[0]!) : false;
  }, 30_000);
  t.comment(`all assigned ${Date.now() - killedAt} ms after the kill (lease 3 s)`);
  t.equal(new Set(ips).size, names.length, 'no address given twice');
  t.ok(ips.every((ip) => ip.startsWith('10.60.0.')), 'all from the churn pool');
  t.match(standby.logs(), /started leading/, 'the standby took over');
  ctl = standby;
});

t.test('SIGTERM: the controller releases its Lease and exits 0', async (t) => {
  t.equal(await ctl.stop('SIGTERM'), 0, 'exit code 0');
  const lease = await c.kc.makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api).readNamespacedLease({ name: 'beacon-controller', namespace: 'beacon-system' });
  t.equal(lease.spec?.holderIdentity ?? '', '', 'the Lease is released for the next replica');
});

async function allIngress(): Promise<Record<string, string>> {
  const list = await c.core.listServiceForAllNamespaces();
  const out: Record<string, string> = {};
  for (const s of list.items) {
    const ips = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');
    if (ips) out[`${s.metadata?.namespace}/${s.metadata?.name}`] = ips;
  }
  return out;
}

