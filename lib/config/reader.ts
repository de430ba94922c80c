/**
 * A strict decoder for one document: type checks and unknown-field checks that record a
 * problem (with its path) and carry on, instead of throwing at the first. Like the API
 * server's strict field validation, a misspelt field (`spec.adresses`) is an error, not
 * something silently ignored.
 */
import type { ConfigProblem } from './problems.js';

export type Obj = Record<string, unknown>;

export class DocReader {
  constructor(
    public document: string,
    private readonly problems: ConfigProblem[],
  ) {}

  problem(path: string, reason: string): void {
    this.problems.push({ document: this.document, path, reason });
  }

  /** An object with only `allowed` fields; undefined (after a problem) if not an object. */
  object(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.problem(path, `must be an object, found ${describe(v)}`);
      return undefined;
    }
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key)) this.problem(join(path, key), `unknown field (allowed: ${allowed.join(', ')})`);
    }
    return v as Obj;
  }

  optionalObject(v: unknown, path: string, allowed: readonly string[]): Obj | undefined {
    return v === undefined || v === null ? undefined : this.object(v, path, allowed);
  }

  string(v: unknown, path: string): string | undefined {
    if (typeof v === 'string') return v;
    this.problem(path, v === undefined ? 'required' : `must be a string, found ${describe(v)}`);
    return undefined;
  }

  bool(v: unknown, path: string, fallback: boolean): boolean {
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'boolean') return v;
    this.problem(path, `must be true or false, found ${describe(v)}`);
    return fallback;
  }

  nonNegativeInt(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
    this.problem(path, `must be a non-negative integer, found ${describe(v)}`);
    return undefined;
  }

  list(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    this.problem(path, `must be a list, found ${describe(v)}`);
    return [];
  }

  stringList(v: unknown, path: string): string[] {
    const out: string[] = [];
    this.list(v, path).forEach((item, i) => {
      const s = this.string(item, `${path}[${i}]`);
      if (s !== undefined) out.push(s);
    });
    return out;
  }
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}
