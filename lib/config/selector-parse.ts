/** Decodes metav1.LabelSelector with the API server's rules, reporting each problem. */
import type { LabelSelector, SelectorOperator, SelectorRequirement } from '../labels/selector.js';
import { labelKeyProblem, labelValueProblem } from './names.js';
import type { DocReader } from './reader.js';

const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export function readSelector(r: DocReader, v: unknown, path: string): LabelSelector | undefined {
  const o = r.object(v, path, ['matchLabels', 'matchExpressions']);
  if (o === undefined) return undefined;
  let ok = true;
  const matchLabels: Record<string, string> = {};
  const labels = r.optionalObject(o['matchLabels'], `${path}.matchLabels`, Object.keys(o['matchLabels'] ?? {}));
  for (const [key, value] of Object.entries(labels ?? {})) {
    const at = `${path}.matchLabels[${key}]`;
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) { r.problem(at, keyProblem); ok = false; }
    if (typeof value !== 'string') { r.problem(at, 'must be a string (quote numbers and booleans in YAML)'); ok = false; continue; }
    const valueProblem = labelValueProblem(value);
    if (valueProblem) { r.problem(at, valueProblem); ok = false; }
    matchLabels[key] = value;
  }
  const matchExpressions: SelectorRequirement[] = [];
  r.list(o['matchExpressions'], `${path}.matchExpressions`).forEach((e, i) => {
    const at = `${path}.matchExpressions[${i}]`;
    const expr = r.object(e, at, ['key', 'operator', 'values']);
    if (expr === undefined) { ok = false; return; }
    const key = r.string(expr['key'], `${at}.key`);
    const operator = r.string(expr['operator'], `${at}.operator`);
    const values = r.stringList(expr['values'], `${at}.values`);
    if (key === undefined || operator === undefined) { ok = false; return; }
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) { r.problem(`${at}.key`, keyProblem); ok = false; }
    if (!OPERATORS.includes(operator as SelectorOperator)) {
      r.problem(`${at}.operator`, `"${operator}" is not one of ${OPERATORS.join(', ')}`);
      ok = false;
      return;
    }
    const needsValues = operator === 'In' || operator === 'NotIn';
    if (needsValues && values.length === 0) { r.problem(`${at}.values`, `${operator} needs at least one value`); ok = false; }
    if (!needsValues && values.length > 0) { r.problem(`${at}.values`, `${operator} takes no values`); ok = false; }
    for (const [j, value] of values.entries()) {
      const p = labelValueProblem(value);
      if (p) { r.problem(`${at}.values[${j}]`, p); ok = false; }
    }
    matchExpressions.push({ key, operator: operator as SelectorOperator, values });
  });
  return ok ? { matchLabels, matchExpressions } : undefined;
}

export function readSelectors(r: DocReader, v: unknown, path: string): LabelSelector[] {
  const out: LabelSelector[] = [];
  r.list(v, path).forEach((s, i) => {
    const sel = readSelector(r, s, `${path}[${i}]`);
    if (sel) out.push(sel);
  });
  return out;
}
