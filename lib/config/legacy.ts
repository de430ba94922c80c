/**
 * MetalLB's configuration format up to v0.12 (ConfigMap `config`, key `config`): one
 * document with `address-pools`. Layer 2 pools become IPAddressPools, plus one implied
 * L2Advertisement covering them all, which is what MetalLB did with them.
 */
import type { L2Advertisement, Pool } from './model.js';
import { readAddresses } from './documents.js';
import { dnsSubdomainProblem } from './names.js';
import { DocReader, type Obj } from './reader.js';

export const LEGACY_DOCUMENT = 'legacy config';
export const LEGACY_ADVERTISEMENT = 'legacy-layer2';

export function isLegacy(doc: Obj): boolean {
  return 'address-pools' in doc && !('kind' in doc);
}

export function readLegacy(r: DocReader, doc: Obj): { pools: Pool[]; advertisements: L2Advertisement[] } {
  r.document = LEGACY_DOCUMENT;
  r.object(doc, '', ['address-pools', 'peers', 'bgp-communities']);
  if (doc['peers'] !== undefined) r.problem('peers', 'BGP is not supported, only layer2');
  if (doc['bgp-communities'] !== undefined) r.problem('bgp-communities', 'BGP is not supported, only layer2');
  const pools: Pool[] = [];
  r.list(doc['address-pools'], 'address-pools').forEach((raw, i) => {
    const path = `address-pools[${i}]`;
    const p = r.object(raw, path, ['name', 'protocol', 'addresses', 'auto-assign', 'avoid-buggy-ips', 'bgp-advertisements']);
    if (p === undefined) return;
    const name = r.string(p['name'], `${path}.name`);
    const protocol = r.string(p['protocol'], `${path}.protocol`);
    if (protocol !== undefined && protocol !== 'layer2') r.problem(`${path}.protocol`, `protocol ${protocol} is not supported, only layer2`);
    if (p['bgp-advertisements'] !== undefined) r.problem(`${path}.bgp-advertisements`, 'BGP is not supported, only layer2');
    const nameProblem = name === undefined ? undefined : dnsSubdomainProblem(name);
    if (nameProblem) r.problem(`${path}.name`, nameProblem);
    const ranges = readAddresses(r, p['addresses'], `${path}.addresses`);
    const autoAssign = r.bool(p['auto-assign'], `${path}.auto-assign`, true);
    const avoidBuggyIPs = r.bool(p['avoid-buggy-ips'], `${path}.avoid-buggy-ips`, false);
    if (name !== undefined) pools.push({ name, labels: {}, ranges, autoAssign, avoidBuggyIPs, serviceAllocation: undefined });
  });
  const advertisements: L2Advertisement[] = pools.length === 0 ? [] : [{
    name: LEGACY_ADVERTISEMENT,
    ipAddressPools: pools.map((p) => p.name),
    ipAddressPoolSelectors: [],
    nodeSelectors: [],
    interfaces: [],
    serviceSelectors: [],
  }];
  return { pools, advertisements };
}
