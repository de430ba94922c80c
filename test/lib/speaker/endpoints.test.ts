import t from 'tap';
import { backendsForPort, type EndpointConditions, type EndpointSlice } from '../../../lib/speaker/endpoints.js';

const slice = (endpoints: [string, EndpointConditions?][], opts: { type?: string; ports?: EndpointSlice['ports'] } = {}): EndpointSlice => ({
  metadata: { name: `s-${Math.random()}`, namespace: 'demo' },
  addressType: opts.type ?? 'IPv4',
  endpoints: endpoints.map(([ip, conditions]) => ({ addresses: [ip], ...(conditions ? { conditions } : {}) })),
  ports: opts.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
});

const ready = { ready: true, serving: true, terminating: false };
const terminatingServing = { ready: false, serving: true, terminating: true };
const terminatingGone = { ready: false, serving: false, terminating: true };
const unready = { ready: false, serving: false, terminating: false };

t.test('endpoint conditions as kube-proxy reads them', async (t) => {
  const rows: { desc: string; slices: EndpointSlice[]; port?: [string, string]; expect: [string, number, 'ready' | 'terminating'][] }[] = [
    { desc: 'ready endpoints take new connections', slices: [slice([['10.0.0.2', ready], ['10.0.0.1', ready]])], expect: [['10.0.0.1', 8080, 'ready'], ['10.0.0.2', 8080, 'ready']] },
    { desc: 'nil conditions mean ready', slices: [slice([['10.0.0.1']])], expect: [['10.0.0.1', 8080, 'ready']] },
    { desc: 'terminating ones keep their connections beside ready ones', slices: [slice([['10.0.0.1', ready], ['10.0.0.2', terminatingServing]])], expect: [['10.0.0.1', 8080, 'ready'], ['10.0.0.2', 8080, 'terminating']] },
    { desc: 'no ready endpoint: serving terminating ones take new connections (KEP-1669)', slices: [slice([['10.0.0.1', terminatingServing], ['10.0.0.2', terminatingGone]])], expect: [['10.0.0.1', 8080, 'ready'], ['10.0.0.2', 8080, 'terminating']] },
    { desc: 'an unready endpoint gets no new connections', slices: [slice([['10.0.0.1', unready]])], expect: [['10.0.0.1', 8080, 'terminating']] },
    { desc: 'the same address in two slices counts once, at its best', slices: [slice([['10.0.0.1', unready]]), slice([['10.0.0.1', ready]])], expect: [['10.0.0.1', 8080, 'ready']] },
    { desc: 'both families', slices: [slice([['10.0.0.1', ready]]), slice([['fd00::1', ready]], { type: 'IPv6' })], expect: [['10.0.0.1', 8080, 'ready'], ['fd00::1', 8080, 'ready']] },
    { desc: 'FQDN slices are ignored', slices: [slice([['db.example', ready]], { type: 'FQDN' })], expect: [] },
    { desc: 'another port name is not ours', slices: [slice([['10.0.0.1', ready]], { ports: [{ name: 'metrics', port: 9090, protocol: 'TCP' }] })], expect: [] },
    { desc: 'another protocol is not ours', slices: [slice([['10.0.0.1', ready]], { ports: [{ name: 'http', port: 8080, protocol: 'UDP' }] })], expect: [] },
    { desc: 'an unnamed port matches the unnamed Service port', slices: [slice([['10.0.0.1', ready]], { ports: [{ port: 53 }] })], port: ['', 'TCP'], expect: [['10.0.0.1', 53, 'ready']] },
    { desc: 'a port with no number ("all ports") is skipped', slices: [slice([['10.0.0.1', ready]], { ports: [{ name: 'http', port: null }] })], expect: [] },
    { desc: 'no slices', slices: [], expect: [] },
    { desc: 'a slice with no endpoints', slices: [{ metadata: { name: 'e' }, addressType: 'IPv4', endpoints: null, ports: [{ name: 'http', port: 1 }] }], expect: [] },
    { desc: 'an endpoint with no address is skipped', slices: [{ metadata: { name: 'e' }, addressType: 'IPv4', endpoints: [{ addresses: [] }], ports: [{ name: 'http', port: 1 }] }], expect: [] },
  ];
  for (const row of rows) {
    const [name, protocol] = row.port ?? ['http', 'TCP'];
    t.same(backendsForPort(row.slices, name, protocol).map((b) => [b.ip, b.port, b.state]), row.expect, row.desc);
  }
});
