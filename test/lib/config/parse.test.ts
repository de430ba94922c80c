import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseConfigYAML, parseConfigDocuments, ConfigError, formatProblem } from '../../../lib/config/index.js';
import { formatRange } from '../../../lib/ip/range.js';

const sample = (name: string) => readFileSync(new URL(`../../../config/samples/${name}`, import.meta.url), 'utf8');

t.test('the samples parse into the expected pools', async (t) => {
  const rows: { desc: string; file: string; pools: Record<string, string[]>; ads: string[]; autoAssign?: Record<string, boolean> }[] = [
    { desc: 'beacon-lb.io documents', file: 'beacon.yaml', pools: { production: ['192.168.10.0-192.168.10.255', '192.168.11.10-192.168.11.50', 'fd00:10::-fd00:10::ffff:ffff:ffff:ffff'], 'team-a': ['192.168.20.0-192.168.20.15'] }, ads: ['lan'] },
    { desc: 'metallb.io documents', file: 'metallb.yaml', pools: { 'first-pool': ['192.168.1.240-192.168.1.250'], reserved: ['192.168.1.200-192.168.1.203'] }, ads: ['example'], autoAssign: { 'first-pool': true, reserved: false } },
    { desc: 'the deploy sample', file: '../deploy/sample-config.yaml', pools: { default: ['192.168.1.240-192.168.1.250'] }, ads: ['default'] },
    { desc: 'legacy address-pools', file: 'legacy.yaml', pools: { default: ['192.168.1.240-192.168.1.250'], manual: ['192.168.2.0-192.168.2.7'] }, ads: ['legacy-layer2'], autoAssign: { default: true, manual: false } },
  ];
  for (const row of rows) {
    const r = parseConfigYAML(sample(row.file));
    if (!r.ok) { t.fail(`${row.desc}: ${JSON.stringify(r.problems)}`); continue; }
    t.same(Object.fromEntries(r.config.pools.map((p) => [p.name, p.ranges.map(formatRange)])), row.pools, `${row.desc}: pools`);
    t.same(r.config.l2Advertisements.map((a) => a.name), row.ads, `${row.desc}: advertisements`);
    for (const [name, value] of Object.entries(row.autoAssign ?? {})) {
      t.equal(r.config.pools.find((p) => p.name === name)?.autoAssign, value, `${row.desc}: ${name} autoAssign`);
    }
  }
});

t.test('fields decode with MetalLB defaults', async (t) => {
  const r = parseConfigYAML(sample('beacon.yaml'));
  if (!r.ok) return t.fail('sample invalid');
  const [production, teamA] = r.config.pools;
  t.equal(production?.avoidBuggyIPs, true);
  t.equal(production?.autoAssign, true, 'autoAssign defaults to true');
  t.same(production?.labels, { tier: 'prod' });
  t.equal(production?.serviceAllocation, undefined, 'no serviceAllocation: undefined');
  t.same(teamA?.serviceAllocation, {
    priority: 10, namespaces: ['team-a'], namespaceSelectors: [],
    serviceSelectors: [{ matchLabels: {}, matchExpressions: [{ key: 'exposure', operator: 'In', values: ['public'] }] }],
  });
  const ad = r.config.l2Advertisements[0]!;
  t.same(ad.interfaces, ['eth0']);
  t.same(ad.nodeSelectors, [{ matchLabels: { 'node-role.kubernetes.io/edge': 'true' }, matchExpressions: [] }]);
  t.same(ad.ipAddressPoolSelectors, [{ matchLabels: { tier: 'prod' }, matchExpressions: [] }]);
});

const pool = (name: string, spec: string, extra = '') => `apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: ${name}\n${extra}spec:\n${spec}`;
const ad = (name: string, spec: string) => `apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

t.test('each problem names the document, the field and the reason', async (t) => {
  const rows: { desc: string; yaml: string; problems: [string, string, RegExp][] }[] = [
    { desc: 'bad CIDR', yaml: pool('p', '  addresses: [10.0.0.0/33]'), problems: [['IPAddressPool/p', 'spec.addresses[0]', /invalid prefix length "33"/]] },
    { desc: 'host bits set', yaml: pool('p', '  addresses: [10.0.0.1/24]'), problems: [['IPAddressPool/p', 'spec.addresses[0]', /host bits set; the network is 10.0.0.0\/24/]] },
    { desc: 'start after end', yaml: pool('p', '  addresses: [10.0.0.9-10.0.0.1]'), problems: [['IPAddressPool/p', 'spec.addresses[0]', /starts after it ends/]] },
    { desc: 'octal address', yaml: pool('p', '  addresses: [010.0.0.1/32]'), problems: [['IPAddressPool/p', 'spec.addresses[0]', /leading zero/]] },
    { desc: 'no addresses', yaml: pool('p', '  addresses: []'), problems: [['IPAddressPool/p', 'spec.addresses', /at least one/]] },
    { desc: 'misspelt field', yaml: pool('p', '  adresses: [10.0.0.0/24]'), problems: [['IPAddressPool/p', 'spec.adresses', /unknown field/], ['IPAddressPool/p', 'spec.addresses', /at least one/]] },
    { desc: 'wrong type', yaml: pool('p', '  addresses: [10.0.0.0/24]\n  autoAssign: "yes"'), problems: [['IPAddressPool/p', 'spec.autoAssign', /must be true or false, found the string "yes"/]] },
    { desc: 'negative priority', yaml: pool('p', '  addresses: [10.0.0.0/24]\n  serviceAllocation:\n    priority: -1'), problems: [['IPAddressPool/p', 'spec.serviceAllocation.priority', /non-negative integer/]] },
    { desc: 'bad name', yaml: pool('Bad_Name', '  addresses: [10.0.0.0/24]'), problems: [['IPAddressPool/Bad_Name', 'metadata.name', /DNS-1123/]] },
    { desc: 'no name', yaml: 'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {}\nspec:\n  addresses: [10.0.0.0/24]', problems: [['document 1', 'metadata.name', /required/]] },
    { desc: 'unknown kind', yaml: 'apiVersion: beacon-lb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: x}', problems: [['document 1', 'kind', /"BGPPeer" is not one of IPAddressPool, L2Advertisement/]] },
    { desc: 'unknown apiVersion', yaml: pool('p', '  addresses: [10.0.0.0/24]').replace('beacon-lb.io/v1beta1', 'metallb.io/v1alpha1'), problems: [['document 1', 'apiVersion', /"metallb.io\/v1alpha1" is not one of/]] },
    { desc: 'overlap within a pool', yaml: pool('p', '  addresses: [10.0.0.0/24, 10.0.0.128-10.0.1.5]'), problems: [['IPAddressPool/p', 'spec.addresses[1]', /overlaps its own spec.addresses\[0\] \(10.0.0.0\/24\)/]] },
    { desc: 'overlap across documents', yaml: `${pool('a', '  addresses: [10.0.0.0/24]')}\n---\n${pool('b', '  addresses: [fd00::/64, 10.0.0.255/32]')}`, problems: [['IPAddressPool/b', 'spec.addresses[1]', /10.0.0.255\/32 \(10.0.0.255-10.0.0.255\) overlaps IPAddressPool\/a spec.addresses\[0\]/]] },
    { desc: 'duplicate pool names', yaml: `${pool('a', '  addresses: [10.0.0.0/24]')}\n---\n${pool('a', '  addresses: [10.0.1.0/24]')}`, problems: [['IPAddressPool/a', 'metadata.name', /duplicate IPAddressPool name/]] },
    { desc: 'unknown pool in an advertisement', yaml: `${pool('a', '  addresses: [10.0.0.0/24]')}\n---\n${ad('l2', '  ipAddressPools: [a, b]')}`, problems: [['L2Advertisement/l2', 'spec.ipAddressPools[1]', /no IPAddressPool named "b"/]] },
    { desc: 'selector operator', yaml: ad('l2', '  nodeSelectors:\n  - matchExpressions:\n    - {key: zone, operator: Near, values: [a]}'), problems: [['L2Advertisement/l2', 'spec.nodeSelectors[0].matchExpressions[0].operator', /"Near" is not one of In, NotIn, Exists, DoesNotExist/]] },
    { desc: 'In without values', yaml: ad('l2', '  nodeSelectors:\n  - matchExpressions:\n    - {key: zone, operator: In}'), problems: [['L2Advertisement/l2', 'spec.nodeSelectors[0].matchExpressions[0].values', /In needs at least one value/]] },
    { desc: 'Exists with values', yaml: ad('l2', '  serviceSelectors:\n  - matchExpressions:\n    - {key: zone, operator: Exists, values: [a]}'), problems: [['L2Advertisement/l2', 'spec.serviceSelectors[0].matchExpressions[0].values', /Exists takes no values/]] },
    { desc: 'unquoted boolean label value', yaml: ad('l2', '  nodeSelectors:\n  - matchLabels: {edge: true}'), problems: [['L2Advertisement/l2', 'spec.nodeSelectors[0].matchLabels[edge]', /must be a string/]] },
    { desc: 'bad label key', yaml: ad('l2', '  nodeSelectors:\n  - matchLabels: {"-bad": "x"}'), problems: [['L2Advertisement/l2', 'spec.nodeSelectors[0].matchLabels[-bad]', /label key/]] },
    { desc: 'interface name too long', yaml: ad('l2', '  interfaces: [this-is-way-too-long0]'), problems: [['L2Advertisement/l2', 'spec.interfaces[0]', /1 to 15 characters/]] },
    { desc: 'legacy BGP pool', yaml: 'address-pools:\n- name: x\n  protocol: bgp\n  addresses: [10.0.0.0/24]', problems: [['legacy config', 'address-pools[0].protocol', /protocol bgp is not supported, only layer2/]] },
    { desc: 'YAML syntax error', yaml: 'apiVersion: [unclosed', problems: [['document 1', 'line 1', /YAML:/]] },
    { desc: 'duplicate YAML key', yaml: pool('p', '  addresses: [10.0.0.0/24]\n  addresses: [10.0.1.0/24]'), problems: [['document 1', 'line 7', /YAML: Map keys must be unique/]] },
    { desc: 'a scalar document', yaml: 'just a string', problems: [['document 1', '', /must be an object/]] },
  ];
  for (const row of rows) {
    const r = parseConfigYAML(row.yaml);
    if (r.ok) { t.fail(`${row.desc}: accepted`); continue; }
    t.equal(r.problems.length, row.problems.length, `${row.desc}: ${r.problems.length} problem(s): ${r.problems.map((p) => formatProblem('x', p)).join(' | ')}`);
    row.problems.forEach(([doc, path, reason], i) => {
      t.equal(r.problems[i]?.document, doc, `${row.desc}: document`);
      t.equal(r.problems[i]?.path, path, `${row.desc}: path`);
      t.match(r.problems[i]?.reason, reason, `${row.desc}: reason`);
    });
  }
});

t.test('every problem is reported at once', async (t) => {
  const yaml = `${pool('a', '  addresses: [10.0.0.0/33, 10.0.1.0/24]\n  autoAssign: 1')}\n---\n${pool('b', '  addresses: [10.0.1.5/32]')}\n---\n${ad('l2', '  ipAddressPools: [c]')}`;
  const r = parseConfigYAML(yaml);
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(r.problems.map((p) => `${p.document} ${p.path}`).sort(), [
    'IPAddressPool/a spec.addresses[0]',
    'IPAddressPool/a spec.autoAssign',
    'IPAddressPool/b spec.addresses[0]',
    'L2Advertisement/l2 spec.ipAddressPools[0]',
  ]);
  const err = new ConfigError('beacon-config', r.problems);
  t.equal(err.code, 'BEACON_INVALID_CONFIG');
  t.match(err.message, /4 problems/);
  t.match(err.message, /beacon-config: IPAddressPool\/b spec.addresses\[0\]: 10.0.1.5\/32/);
});

t.test('decoded objects (the CRD transport) parse the same as YAML', async (t) => {
  const objects = [
    { apiVersion: 'metallb.io/v1beta1', kind: 'IPAddressPool', metadata: { name: 'p', namespace: 'x', resourceVersion: '7', uid: 'u' }, spec: { addresses: ['10.0.0.0/24'] }, status: { assignedIPv4: 3 } },
    { apiVersion: 'beacon-lb.io/v1beta1', kind: 'L2Advertisement', metadata: { name: 'all' } },
  ];
  const r = parseConfigDocuments(objects);
  t.ok(r.ok, 'server-set metadata and status are accepted');
  if (r.ok) t.same(r.config.l2Advertisements[0]?.ipAddressPools, [], 'an empty advertisement covers every pool');
  t.notOk(parseConfigDocuments([42]).ok);
});

t.test('ignoreKinds lets a caller share the file with other kinds', async (t) => {
  const yaml = `${pool('a', '  addresses: [10.0.0.0/24]')}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n${pool('b', '  addresses: [10.0.0.0/24]')}`;
  const rows: { desc: string; ignoreKinds?: string[]; problems: string[] }[] = [
    { desc: 'by default a Service is an unknown kind', problems: ['document 2 apiVersion', 'document 2 kind', 'IPAddressPool/b spec.addresses[0]'] },
    { desc: 'ignored, it is skipped and the numbering of the others is kept', ignoreKinds: ['Service'], problems: ['IPAddressPool/b spec.addresses[0]'] },
  ];
  for (const row of rows) {
    const r = parseConfigYAML(yaml, { ignoreKinds: row.ignoreKinds });
    t.same(r.ok ? [] : r.problems.map((p) => `${p.document} ${p.path}`), row.problems, row.desc);
  }
  const ok = parseConfigDocuments([{ kind: 'Service', spec: 'anything' }, null], { ignoreKinds: ['Service'] });
  t.same(ok.ok && ok.config.pools, [], 'only ignored and empty documents: an empty config');
});
