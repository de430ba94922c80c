/**
 * Durations in annotations, spelled as Go's time.ParseDuration does (`500ms`, `2s`,
 * `1m30s`, `1.5h`): the notation every Kubernetes user already writes in manifests.
 * Units from `ms` up to `h`; a bare number has no unit and is refused, so `30` is never
 * silently read as 30 ms or 30 s.
 */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)/y;

export type DurationResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string };

export function parseDuration(text: string): DurationResult {
  const s = text.trim();
  if (s === '') return { ok: false, reason: 'is empty; write a duration such as "2s" or "500ms"' };
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (!m) return { ok: false, reason: `"${text}" is not a duration at "${s.slice(at)}"; write a number with a unit (ms, s, m, h), such as "2s"` };
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return { ok: true, ms: Math.round(ms) };
}
