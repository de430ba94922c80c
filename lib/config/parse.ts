/**
 * Configuration from any transport into one model: decoded objects (the CRDs), or
 * multi-document YAML text (the ConfigMap's `config.yaml`, a local file, MetalLB's legacy
 * ConfigMap). Never throws: any input gives a Config or the full list of problems.
 */
import { parseAllDocuments } from 'yaml';
import type { Config, L2Advertisement, Pool } from './model.js';
import { readDocument } from './documents.js';
import { isLegacy, readLegacy } from './legacy.js';
import type { ConfigProblem } from './problems.js';
import { DocReader, describe, type Obj } from './reader.js';
import { validateConfig } from './validate.js';

export type ConfigResult = { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

export interface ParseOptions {
  /**
   * Kinds another reader handles (standalone mode's `Service` documents share the file):
   * skipped, without a problem, keeping "document N" numbering for the rest.
   */
  readonly ignoreKinds?: readonly string[];
}

export function parseConfigDocuments(docs: readonly unknown[], options: ParseOptions = {}): ConfigResult {
  const ignore = options.ignoreKinds ?? [];
  const problems: ConfigProblem[] = [];
  const pools: Pool[] = [];
  const ads: L2Advertisement[] = [];
  docs.forEach((doc, i) => {
    const r = new DocReader(`document ${i + 1}`, problems);
    if (doc === null || doc === undefined) return;
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      r.problem('', `must be an object, found ${describe(doc)}`);
      return;
    }
    const kind = (doc as Obj)['kind'];
    if (typeof kind === 'string' && ignore.includes(kind)) return;
    if (isLegacy(doc as Obj)) {
      const legacy = readLegacy(r, doc as Obj);
      pools.push(...legacy.pools);
      ads.push(...legacy.advertisements);
      return;
    }
    const decoded = readDocument(r, doc as Obj);
    if (decoded?.kind === 'IPAddressPool') pools.push(decoded.value);
    else if (decoded?.kind === 'L2Advertisement') ads.push(decoded.value);
  });
  problems.push(...validateConfig(pools, ads));
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      pools: pools.sort((a, b) => a.name.localeCompare(b.name)),
      l2Advertisements: ads.sort((a, b) => a.name.localeCompare(b.name)),
    },
  };
}

/** Splits multi-document YAML; syntax errors become problems with their line. */
export function decodeYAML(text: string): { docs: unknown[]; problems: ConfigProblem[] } {
  const docs: unknown[] = [];
  const problems: ConfigProblem[] = [];
  let parsed;
  try {
    parsed = parseAllDocuments(text, { uniqueKeys: true });
  } catch (err) {
    return { docs, problems: [{ document: 'document 1', path: '', reason: `YAML: ${(err as Error).message}` }] };
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  list.forEach((doc, i) => {
    const errors = [...doc.errors];
    if (errors.length === 0) {
      try {
        docs.push(doc.toJS({ maxAliasCount: 100 }));
        return;
      } catch (err) {
        problems.push({ document: `document ${i + 1}`, path: '', reason: `YAML: ${(err as Error).message.split('\n')[0]}` });
        docs.push(null);
        return;
      }
    }
    for (const e of errors) {
      const line = e.linePos?.[0]?.line;
      problems.push({ document: `document ${i + 1}`, path: line === undefined ? '' : `line ${line}`, reason: `YAML: ${e.message.split('\n')[0]}` });
    }
    docs.push(null);
  });
  return { docs, problems };
}

export function parseConfigYAML(text: string, options: ParseOptions = {}): ConfigResult {
  const { docs, problems } = decodeYAML(text);
  const result = parseConfigDocuments(docs, options);
  if (problems.length === 0) return result;
  return { ok: false, problems: [...problems, ...(result.ok ? [] : result.problems)] };
}

/** Pools added, removed or changed between two configurations, by name. */
export function diffPools(before: Config, after: Config): { added: string[]; removed: string[]; changed: string[] } {
  const old = new Map(before.pools.map((p) => [p.name, p]));
  const now = new Map(after.pools.map((p) => [p.name, p]));
  const added = [...now.keys()].filter((n) => !old.has(n));
  const removed = [...old.keys()].filter((n) => !now.has(n));
  const changed = [...now.keys()].filter((n) => old.has(n) && !samePool(old.get(n)!, now.get(n)!));
  return { added, removed, changed };
}

function samePool(a: Pool, b: Pool): boolean {
  return JSON.stringify(a, bigintSafe) === JSON.stringify(b, bigintSafe);
}

/** Same pools and advertisements, field by field (configs are sorted by name, so order is canonical). */
export function configEquals(a: Config, b: Config): boolean {
  return a === b || JSON.stringify(a, bigintSafe) === JSON.stringify(b, bigintSafe);
}

function bigintSafe(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

