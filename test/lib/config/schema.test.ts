// The JSON Schema is for editors; the parser is the authority. This keeps the two from
// drifting: every field the schema names, the parser accepts, and the other way round.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseConfigDocuments } from '../../../lib/config/index.js';

const schema = JSON.parse(readFileSync(new URL('../../../config/schema/beacon-config.schema.json', import.meta.url), 'utf8'));
const props = (path: string[]) => Object.keys(path.reduce((o, k) => o[k], schema).properties).sort();

const probe = (doc: object) => {
  const r = parseConfigDocuments([doc]);
  return r.ok ? [] : r.problems.filter((p) => /unknown field/.test(p.reason)).map((p) => p.path);
};
const base = { apiVersion: 'beacon-lb.io/v1beta1', metadata: { name: 'p' } };

t.test('pool spec fields agree with the parser', async (t) => {
  const fields = props(['$defs', 'ipAddressPool', 'properties', 'spec']);
  t.same(fields, ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation']);
  const spec = { addresses: ['10.0.0.0/24'], autoAssign: true, avoidBuggyIPs: false, serviceAllocation: { priority: 1, namespaces: [], namespaceSelectors: [], serviceSelectors: [] } };
  t.same(probe({ ...base, kind: 'IPAddressPool', spec }), [], 'every schema field is accepted');
  t.same(props(['$defs', 'ipAddressPool', 'properties', 'spec', 'properties', 'serviceAllocation']), Object.keys(spec.serviceAllocation).sort());
  t.same(probe({ ...base, kind: 'IPAddressPool', spec: { ...spec, extra: 1 } }), ['spec.extra'], 'a field outside the schema is refused');
});

t.test('advertisement and legacy fields agree with the parser', async (t) => {
  const spec = { ipAddressPools: [], ipAddressPoolSelectors: [], nodeSelectors: [], interfaces: [], serviceSelectors: [] };
  t.same(props(['$defs', 'l2Advertisement', 'properties', 'spec']), Object.keys(spec).sort());
  t.same(probe({ ...base, kind: 'L2Advertisement', spec }), []);
  const legacyPool = { name: 'x', protocol: 'layer2', addresses: ['10.0.0.0/24'], 'auto-assign': true, 'avoid-buggy-ips': false };
  t.same(props(['$defs', 'legacy', 'properties', 'address-pools', 'items']), Object.keys(legacyPool).sort());
  t.same(probe({ 'address-pools': [legacyPool] }), []);
  t.same(props(['$defs', 'labelSelector']), ['matchExpressions', 'matchLabels']);
});
