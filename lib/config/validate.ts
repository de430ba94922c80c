/**
 * Rules that span documents: unique names, no address in two pools (nor twice in one),
 * and advertisements that name existing pools. Every violation is reported.
 */
import { formatRange, rangesOverlap, type IPRange } from '../ip/range.js';
import type { L2Advertisement, Pool } from './model.js';
import type { ConfigProblem } from './problems.js';

export function validateConfig(pools: readonly Pool[], ads: readonly L2Advertisement[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  duplicates(pools.map((p) => p.name), 'IPAddressPool', problems);
  duplicates(ads.map((a) => a.name), 'L2Advertisement', problems);

  // Sort all ranges by start so overlaps are found in one pass (O(n log n), not O(n²)).
  const all: { pool: string; index: number; range: IPRange }[] = [];
  for (const p of pools) p.ranges.forEach((range, index) => all.push({ pool: p.name, index, range }));
  all.sort((a, b) => a.range.family - b.range.family || (a.range.first < b.range.first ? -1 : a.range.first > b.range.first ? 1 : 0));
  let widest: (typeof all)[number] | undefined;
  for (const cur of all) {
    if (widest && rangesOverlap(widest.range, cur.range)) {
      const where = widest.pool === cur.pool ? `its own spec.addresses[${widest.index}] (${widest.range.text})` : `IPAddressPool/${widest.pool} spec.addresses[${widest.index}] (${widest.range.text})`;
      problems.push({
        document: `IPAddressPool/${cur.pool}`,
        path: `spec.addresses[${cur.index}]`,
        reason: `${cur.range.text} (${formatRange(cur.range)}) overlaps ${where}`,
      });
    }
    if (!widest || widest.range.family !== cur.range.family || cur.range.last > widest.range.last) widest = cur;
  }

  const names = new Set(pools.map((p) => p.name));
  for (const ad of ads) {
    ad.ipAddressPools.forEach((name, i) => {
      if (!names.has(name)) problems.push({ document: `L2Advertisement/${ad.name}`, path: `spec.ipAddressPools[${i}]`, reason: `no IPAddressPool named "${name}"` });
    });
  }
  return problems;
}

function duplicates(names: readonly string[], kind: string, problems: ConfigProblem[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) problems.push({ document: `${kind}/${name}`, path: 'metadata.name', reason: `duplicate ${kind} name` });
    seen.add(name);
  }
}
