import t from 'tap';
import { parseStandaloneFile } from '../../../lib/standalone/file.js';
import { formatPlan, planStandalone } from '../../../lib/standalone/plan.js';
import { formatEndpoint } from '../../../lib/standalone/endpoint.js';

const POOL = 'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lo}\nspec:\n  addresses: [127.0.0.240/30]\n';
const svc = (name: string, body: string) => `---\napiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: demo}\n${body}`;

t.test('a standalone file holds pools and Services with endpoints', async (t) => {
  const text = POOL
    + svc('web', 'spec:\n  ports: [{name: http, port: 80}]\nendpoints: ["127.0.0.1:8081", "[::1]:8082"]\n')
    + svc('multi', 'spec:\n  ports: [{name: a, port: 1}, {port: 2, protocol: UDP}]\nendpoints:\n  a: ["127.0.0.1:9001"]\n  "2": ["127.0.0.1:9002"]\n')
    + svc('pinned', 'metadata: {name: pinned, namespace: demo, annotations: {metallb.io/loadBalancerIPs: 127.0.0.240}}\nspec:\n  ports: [{port: 3}]\nendpoints: ["127.0.0.1:9003"]\n').replace('metadata: {name: pinned, namespace: demo}\n', '');
  const r = parseStandaloneFile(text);
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  t.equal(r.config.pools.length, 1);
  t.same(r.services.map((s) => s.service.metadata.name), ['web', 'multi', 'pinned']);
  t.same([...r.services[0]!.endpoints.get('http')!].map(formatEndpoint), ['127.0.0.1:8081', '[::1]:8082']);
  t.same([...r.services[1]!.endpoints.keys()].sort(), ['2', 'a'], 'named ports by name, unnamed by number');

  const rows = planStandalone(r.config, r.services);
  t.same(rows.map((row) => `${row.key} ${row.status} ${row.ips.map((i) => i.value.toString(16)).join()}`), [
    'demo/multi allocated 7f0000f1',
    'demo/pinned allocated 7f0000f0',
    'demo/web allocated 7f0000f2',
  ], 'the Service that names an IP gets it although it sorts after the others');
  const table = formatPlan(rows);
  t.match(table, /^SERVICE\s+POOL\s+EXTERNAL-IP\s+PORT\s+ENDPOINTS\s+STATUS\n/);
  t.match(table, /demo\/multi\s+lo\s+127\.0\.0\.241\s+2\/UDP\s+127\.0\.0\.1:9002\s+allocated/);
});

t.test('Services that cannot be served say why in the table', async (t) => {
  const text = POOL.replace('/30', '/32')
    + svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n')
    + svc('b', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n')
    + svc('c', 'metadata: {name: c, namespace: demo, annotations: {beacon-lb.io/address-pool: x, metallb.io/address-pool: y}}\nspec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n').replace('metadata: {name: c, namespace: demo}\n', '');
  const r = parseStandaloneFile(text);
  if (!r.ok) return t.fail(JSON.stringify(r.problems));
  const table = formatPlan(planStandalone(r.config, r.services));
  t.match(table, /demo\/b\s+-\s+<pending>\s+1\/TCP\s+127\.0\.0\.1:1\s+poolExhausted: no available IPs/);
  t.match(table, /demo\/c\s+-\s+<pending>.*invalidService: metadata\.annotations\[beacon-lb\.io\/address-pool\]: annotations beacon-lb\.io\/address-pool="x" and metallb\.io\/address-pool="y" contradict/);
});

t.test('a bad standalone file lists every problem', async (t) => {
  const rows: { desc: string; text: string; problems: [string, string, RegExp][] }[] = [
    { desc: 'no endpoints', text: POOL + svc('a', 'spec:\n  ports: [{port: 1}]\n'), problems: [['Service/demo/a', 'endpoints', /required/]] },
    { desc: 'bad endpoint and bad port', text: POOL + svc('a', 'spec:\n  ports: [{port: 0}]\nendpoints: ["localhost:1"]\n'), problems: [['Service/demo/a', 'spec.ports[0].port', /1 to 65535/], ['Service/demo/a', 'endpoints[0]', /"localhost" is not an IP address/]] },
    { desc: 'list for a multi-port Service', text: POOL + svc('a', 'spec:\n  ports: [{name: x, port: 1}, {name: y, port: 2}]\nendpoints: ["127.0.0.1:1"]\n'), problems: [['Service/demo/a', 'endpoints', /map from port name/]] },
    { desc: 'endpoints for an unknown port', text: POOL + svc('a', 'spec:\n  ports: [{name: x, port: 1}]\nendpoints: {y: ["127.0.0.1:1"]}\n'), problems: [['Service/demo/a', 'endpoints.y', /no port named "y"/]] },
    { desc: 'not a LoadBalancer', text: POOL + svc('a', 'spec:\n  type: NodePort\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n'), problems: [['Service/demo/a', 'spec.type', /LoadBalancers/]] },
    { desc: 'unknown field and duplicate Service', text: POOL + svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\nbackends: []\n') + svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n'), problems: [['Service/demo/a', 'backends', /unknown field/]] },
    { desc: 'duplicate Service', text: POOL + svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n') + svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n'), problems: [['Service/demo/a', 'metadata.name', /duplicate Service/]] },
    { desc: 'no name, wrong apiVersion, no spec', text: POOL + '---\napiVersion: v2\nkind: Service\nmetadata: {}\nendpoints: []\n', problems: [['document 2', 'metadata.name', /required/], ['document 2', 'apiVersion', /must be "v1", found "v2"/], ['document 2', 'spec', /required/]] },
    { desc: 'ports not a list', text: POOL + svc('a', 'spec:\n  ports: "80"\nendpoints: ["127.0.0.1:1"]\n'), problems: [['Service/demo/a', 'spec.ports', /at least one port/]] },
    { desc: 'endpoints of the wrong shapes', text: POOL + svc('a', 'spec:\n  ports: [{name: x, port: 1}]\nendpoints: {x: "127.0.0.1:1"}\n') + svc('b', 'spec:\n  ports: [{port: 1}]\nendpoints: [42]\n') + svc('c', 'spec:\n  ports: [{port: 1}]\nendpoints: 42\n'), problems: [['Service/demo/a', 'endpoints.x', /must be a list/], ['Service/demo/b', 'endpoints[0]', /must be a "host:port" string/], ['Service/demo/c', 'endpoints', /a list or a map/]] },
    { desc: 'config problems too, numbered as in the file', text: svc('a', 'spec:\n  ports: [{port: 1}]\nendpoints: ["127.0.0.1:1"]\n') + '---\nkind: Nope\n', problems: [['document 2', 'apiVersion', /is not one of/], ['document 2', 'kind', /"Nope"/]] },
  ];
  for (const row of rows) {
    const r = parseStandaloneFile(row.text);
    if (r.ok) { t.fail(`${row.desc}: accepted`); continue; }
    t.same(r.problems.map((p) => [p.document, p.path]), row.problems.map(([d, p]) => [d, p]), `${row.desc}: where`);
    row.problems.forEach(([, , reason], i) => t.match(r.problems[i]?.reason, reason, `${row.desc}: why`));
  }
});
