/**
 * The standalone file: Beacon without Kubernetes. One multi-document YAML file holds
 * the pool configuration (the same IPAddressPool / L2Advertisement documents a cluster
 * uses) and `kind: Service` documents, each with an `endpoints` list of `host:port`
 * backends (or a map from port name to such a list, for multi-port Services).
 */
import { decodeYAML, parseConfigDocuments, type ConfigProblem } from '../config/index.js';
import type { Config } from '../config/model.js';
import type { Service, ServicePort } from '../service/types.js';
import { parseEndpoint, type Endpoint } from './endpoint.js';

export interface StandaloneService {
  readonly service: Service;
  /** Backends per Service port, keyed by the port's name (or its number when unnamed). */
  readonly endpoints: ReadonlyMap<string, readonly Endpoint[]>;
}

export type StandaloneFile =
  | { readonly ok: true; readonly config: Config; readonly services: readonly StandaloneService[] }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

const SERVICE_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'endpoints']);

export function portKey(p: ServicePort): string {
  return p.name ?? String(p.port);
}

export function parseStandaloneFile(text: string): StandaloneFile {
  const { docs, problems } = decodeYAML(text);
  const configDocs: unknown[] = [];
  const services: StandaloneService[] = [];
  docs.forEach((value, i) => {
    if (isObject(value) && value['kind'] === 'Service') {
      const parsed = parseServiceDoc(value, i + 1, problems);
      if (parsed) services.push(parsed);
      configDocs.push(null); // keeps "document N" numbering the same for both parsers
    } else {
      configDocs.push(value);
    }
  });
  const config = parseConfigDocuments(configDocs);
  if (!config.ok) problems.push(...config.problems);
  const seen = new Set<string>();
  for (const s of services) {
    const key = `${s.service.metadata.namespace}/${s.service.metadata.name}`;
    if (seen.has(key)) problems.push({ document: `Service/${key}`, path: 'metadata.name', reason: 'duplicate Service' });
    seen.add(key);
  }
  if (problems.length > 0 || !config.ok) return { ok: false, problems };
  return { ok: true, config: config.config, services };
}

function parseServiceDoc(doc: Record<string, unknown>, index: number, problems: ConfigProblem[]): StandaloneService | undefined {
  const before = problems.length;
  const meta = isObject(doc['metadata']) ? doc['metadata'] : {};
  const name = typeof meta['name'] === 'string' ? meta['name'] : undefined;
  const namespace = typeof meta['namespace'] === 'string' ? meta['namespace'] : 'default';
  const document = name ? `Service/${namespace}/${name}` : `document ${index}`;
  const problem = (path: string, reason: string) => problems.push({ document, path, reason });

  if (name === undefined) problem('metadata.name', 'required');
  for (const key of Object.keys(doc)) if (!SERVICE_KEYS.has(key)) problem(key, 'unknown field');
  if (doc['apiVersion'] !== 'v1') problem('apiVersion', `must be "v1", found ${JSON.stringify(doc['apiVersion'])}`);

  const spec = isObject(doc['spec']) ? doc['spec'] : undefined;
  if (spec === undefined) problem('spec', 'required');
  const ports = Array.isArray(spec?.['ports']) ? (spec['ports'] as unknown[]) : [];
  if (spec && ports.length === 0) problem('spec.ports', 'at least one port is required');
  ports.forEach((p, i) => {
    const port = isObject(p) ? p['port'] : undefined;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) problem(`spec.ports[${i}].port`, 'must be an integer from 1 to 65535');
  });
  const typed = (spec ?? {}) as NonNullable<Service['spec']>;
  if (typed.type !== undefined && typed.type !== 'LoadBalancer') problem('spec.type', `standalone Services are LoadBalancers, found "${typed.type}"`);

  const endpoints = new Map<string, Endpoint[]>();
  const keys = ports.filter(isObject).map((p) => portKey(p as unknown as ServicePort));
  const addList = (key: string, list: unknown, path: string) => {
    if (!Array.isArray(list)) return problem(path, 'must be a list of "host:port"');
    const parsed: Endpoint[] = [];
    list.forEach((e, j) => {
      const r = typeof e === 'string' ? parseEndpoint(e) : { ok: false as const, reason: 'must be a "host:port" string' };
      if (r.ok) parsed.push(r.endpoint);
      else problem(`${path}[${j}]`, r.reason);
    });
    endpoints.set(key, parsed);
  };
  const raw = doc['endpoints'];
  if (raw === undefined) problem('endpoints', 'required: the backends to forward to');
  else if (Array.isArray(raw)) {
    if (keys.length > 1) problem('endpoints', 'a multi-port Service needs a map from port name to endpoints');
    else if (keys[0] !== undefined) addList(keys[0], raw, 'endpoints');
  } else if (isObject(raw)) {
    for (const [key, list] of Object.entries(raw)) {
      if (!keys.includes(key)) problem(`endpoints.${key}`, `no port named "${key}" in spec.ports`);
      else addList(key, list, `endpoints.${key}`);
    }
  } else problem('endpoints', 'must be a list or a map of lists');

  if (problems.length > before) return undefined;
  const service: Service = {
    metadata: { ...(meta as object), name: name!, namespace } as Service['metadata'],
    spec: { ...typed, type: 'LoadBalancer' },
  };
  return { service, endpoints };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
