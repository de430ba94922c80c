// Any input yields a configuration or a list of problems, never another exception.
import t from 'tap';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { parseConfigDocuments, parseConfigYAML } from '../../../lib/config/index.js';
import { parseStandaloneFile } from '../../../lib/standalone/file.js';

const samples = ['beacon.yaml', 'metallb.yaml', 'legacy.yaml'].map((f) => readFileSync(new URL(`../../../config/samples/${f}`, import.meta.url), 'utf8'));
const isResult = (r: { ok: boolean }) => r.ok === true || (r.ok === false && 'problems' in r && Array.isArray((r as { problems: unknown }).problems));

/** Mutations of a real document: drop, retype or replace a field somewhere in the tree. */
function mutate(doc: unknown, path: number[], replacement: unknown): unknown {
  if (path.length === 0 || doc === null || typeof doc !== 'object') return replacement;
  const entries = Object.entries(doc as object);
  if (entries.length === 0) return replacement;
  const [key, value] = entries[path[0]! % entries.length]!;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(doc) ? [...doc] : { ...(doc as object) };
  const next = mutate(value, path.slice(1), replacement);
  if (next === undefined) delete (copy as Record<string, unknown>)[key];
  else (copy as Record<string, unknown>)[key] = next;
  return copy;
}

t.test('arbitrary text', async (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => isResult(parseConfigYAML(s)) && isResult(parseStandaloneFile(s))), { numRuns: 1500, seed: 1 });
  t.pass('1500 strings');
});

t.test('YAML-shaped text built from sample fragments', async (t) => {
  const lines = samples.flatMap((s) => s.split('\n'));
  const arb = fc.array(fc.oneof(fc.constantFrom(...lines), fc.string({ maxLength: 20 }), fc.constant('---')), { maxLength: 40 }).map((ls) => ls.join('\n'));
  fc.assert(fc.property(arb, (s) => isResult(parseConfigYAML(s)) && isResult(parseStandaloneFile(s))), { numRuns: 1000, seed: 2 });
  t.pass('1000 spliced files');
});

t.test('arbitrary decoded objects and mutated real documents', async (t) => {
  fc.assert(fc.property(fc.array(fc.anything(), { maxLength: 5 }), (docs) => isResult(parseConfigDocuments(docs))), { numRuns: 1000, seed: 3 });
  const docs = samples.flatMap((s) => s.split('\n---\n').map((d) => parse(d) as unknown));
  const replacement = fc.oneof(fc.constant(undefined), fc.anything(), fc.constantFrom('10.0.0.0/8', '::/0', '1.2.3.4-1.2.3.3', 'In', ''));
  fc.assert(fc.property(fc.nat(docs.length - 1), fc.array(fc.nat(10), { maxLength: 6 }), replacement, (i, path, value) => isResult(parseConfigDocuments([mutate(docs[i], path, value)]))), { numRuns: 2000, seed: 4 });
  t.pass('3000 object trees');
});

t.test('mutated standalone Service documents', async (t) => {
  const text = readFileSync(new URL('../../../config/standalone.yaml', import.meta.url), 'utf8');
  const docs = text.split('\n---\n').map((d) => parse(d) as unknown);
  const replacement = fc.oneof(fc.constant(undefined), fc.anything(), fc.constantFrom('80', [1, 2], { x: 'y' }, '127.0.0.1:1', 'LoadBalancer'));
  fc.assert(fc.property(fc.nat(docs.length - 1), fc.array(fc.nat(10), { maxLength: 6 }), replacement, (i, path, value) => {
    const mutated = docs.map((d, j) => (j === i ? mutate(d, path, value) : d));
    return isResult(parseStandaloneFile(mutated.map((d) => stringify(d ?? null)).join('---\n')));
  }), { numRuns: 1500, seed: 5 });
  t.pass('1500 mutated standalone files');
});
