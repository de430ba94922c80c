/**
 * IPAddressPool and L2Advertisement documents, under our API group and MetalLB's, with
 * every field of MetalLB's v1beta1 API (ANCHORS.md). Each reader records problems and
 * returns what it could decode; cross-document rules live in ./validate.ts.
 */
import type { L2Advertisement, Pool, ServiceAllocation } from './model.js';
import { parseRange, type IPRange } from '../ip/range.js';
import { dnsSubdomainProblem, interfaceNameProblem, labelKeyProblem, labelValueProblem } from './names.js';
import { DocReader, type Obj } from './reader.js';
import { readSelectors } from './selector-parse.js';

export const API_VERSIONS = ['beacon-lb.io/v1beta1', 'metallb.io/v1beta1'] as const;
export const KINDS = ['IPAddressPool', 'L2Advertisement'] as const;

const TOP = ['apiVersion', 'kind', 'metadata', 'spec', 'status'];
// Fields the API server adds to stored objects; harmless in a file.
const METADATA = ['name', 'namespace', 'labels', 'annotations', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'finalizers', 'ownerReferences', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink'];

export type Decoded =
  | { readonly kind: 'IPAddressPool'; readonly value: Pool }
  | { readonly kind: 'L2Advertisement'; readonly value: L2Advertisement };

/** Reads `metadata`; names the document by kind and name from here on. */
function readMetadata(r: DocReader, doc: Obj, kind: string): { name: string; labels: Record<string, string> } | undefined {
  const meta = r.object(doc['metadata'], 'metadata', METADATA);
  if (meta === undefined) return undefined;
  const name = r.string(meta['name'], 'metadata.name');
  if (name === undefined) return undefined;
  r.document = `${kind}/${name}`;
  const nameProblem = dnsSubdomainProblem(name);
  if (nameProblem) r.problem('metadata.name', nameProblem);
  const labels: Record<string, string> = {};
  const rawLabels = r.optionalObject(meta['labels'], 'metadata.labels', Object.keys((meta['labels'] as object | null) ?? {}));
  for (const [k, v] of Object.entries(rawLabels ?? {})) {
    const problem = typeof v !== 'string' ? 'must be a string' : (labelKeyProblem(k) ?? labelValueProblem(v));
    if (problem) r.problem(`metadata.labels[${k}]`, problem);
    else labels[k] = v as string;
  }
  return { name, labels };
}

export function readDocument(r: DocReader, doc: Obj): Decoded | undefined {
  r.object(doc, '', TOP);
  const apiVersion = doc['apiVersion'];
  const kind = doc['kind'];
  if (!API_VERSIONS.includes(apiVersion as (typeof API_VERSIONS)[number])) {
    r.problem('apiVersion', `${JSON.stringify(apiVersion)} is not one of ${API_VERSIONS.join(', ')}`);
  }
  if (!KINDS.includes(kind as (typeof KINDS)[number])) {
    r.problem('kind', `${JSON.stringify(kind)} is not one of ${KINDS.join(', ')}`);
    return undefined;
  }
  const meta = readMetadata(r, doc, kind as string);
  const decoded = kind === 'IPAddressPool' ? readPool(r, doc['spec'], meta) : readAdvertisement(r, doc['spec'], meta);
  return decoded;
}

function readPool(r: DocReader, rawSpec: unknown, meta: { name: string; labels: Record<string, string> } | undefined): Decoded | undefined {
  const spec = r.object(rawSpec, 'spec', ['addresses', 'autoAssign', 'avoidBuggyIPs', 'serviceAllocation']);
  if (spec === undefined) return undefined;
  const ranges = readAddresses(r, spec['addresses'], 'spec.addresses');
  const autoAssign = r.bool(spec['autoAssign'], 'spec.autoAssign', true);
  const avoidBuggyIPs = r.bool(spec['avoidBuggyIPs'], 'spec.avoidBuggyIPs', false);
  const serviceAllocation = readServiceAllocation(r, spec['serviceAllocation']);
  if (meta === undefined) return undefined;
  return { kind: 'IPAddressPool', value: { name: meta.name, labels: meta.labels, ranges, autoAssign, avoidBuggyIPs, serviceAllocation } };
}

/** Pool addresses; overlaps inside the pool are reported here, across pools in validate.ts. */
export function readAddresses(r: DocReader, v: unknown, path: string): IPRange[] {
  const ranges: IPRange[] = [];
  const list = r.list(v, path);
  if (list.length === 0) r.problem(path, 'at least one CIDR or range is required');
  list.forEach((item, i) => {
    const text = r.string(item, `${path}[${i}]`);
    if (text === undefined) return;
    try {
      ranges.push(parseRange(text));
    } catch (err) {
      r.problem(`${path}[${i}]`, (err as Error).message);
    }
  });
  return ranges;
}

function readServiceAllocation(r: DocReader, v: unknown): ServiceAllocation | undefined {
  const path = 'spec.serviceAllocation';
  const sa = r.optionalObject(v, path, ['priority', 'namespaces', 'namespaceSelectors', 'serviceSelectors']);
  if (sa === undefined) return undefined;
  const namespaces = r.stringList(sa['namespaces'], `${path}.namespaces`);
  namespaces.forEach((ns, i) => {
    const p = dnsSubdomainProblem(ns);
    if (p) r.problem(`${path}.namespaces[${i}]`, p);
  });
  return {
    priority: r.nonNegativeInt(sa['priority'], `${path}.priority`),
    namespaces,
    namespaceSelectors: readSelectors(r, sa['namespaceSelectors'], `${path}.namespaceSelectors`),
    serviceSelectors: readSelectors(r, sa['serviceSelectors'], `${path}.serviceSelectors`),
  };
}

function readAdvertisement(r: DocReader, rawSpec: unknown, meta: { name: string } | undefined): Decoded | undefined {
  // An L2Advertisement with no spec at all is valid upstream: every pool, every node.
  const spec = rawSpec === undefined || rawSpec === null ? {} : r.object(rawSpec, 'spec', ['ipAddressPools', 'ipAddressPoolSelectors', 'nodeSelectors', 'interfaces', 'serviceSelectors']);
  if (spec === undefined) return undefined;
  const interfaces = r.stringList(spec['interfaces'], 'spec.interfaces');
  interfaces.forEach((name, i) => {
    const p = interfaceNameProblem(name);
    if (p) r.problem(`spec.interfaces[${i}]`, p);
  });
  const value: L2Advertisement = {
    name: meta?.name ?? '',
    ipAddressPools: r.stringList(spec['ipAddressPools'], 'spec.ipAddressPools'),
    ipAddressPoolSelectors: readSelectors(r, spec['ipAddressPoolSelectors'], 'spec.ipAddressPoolSelectors'),
    nodeSelectors: readSelectors(r, spec['nodeSelectors'], 'spec.nodeSelectors'),
    interfaces,
    serviceSelectors: readSelectors(r, spec['serviceSelectors'], 'spec.serviceSelectors'),
  };
  return meta === undefined ? undefined : { kind: 'L2Advertisement', value };
}
