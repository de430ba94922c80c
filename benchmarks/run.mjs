#!/usr/bin/env node
// Runs one benchmark: `npm run bench -- <name>` (the npm script builds dist/ first).
// Every benchmark module exports `run(emit)`, and calls `emit(figure, value, unit, extra)`
// once per figure; each figure is printed as one JSON line. The first line states the
// machine and runtime, because numbers from a noisy 2-core box mean little without it.
import { cpus, totalmem } from 'node:os';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(here).filter((f) => f.endsWith('.bench.mjs')).map((f) => f.slice(0, -'.bench.mjs'.length));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>   (one of: ${available.join(', ')})`);
  process.exit(2);
}

const print = (o) => process.stdout.write(JSON.stringify(o) + '\n');
print({
  bench: name,
  figure: 'environment',
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  args: process.argv.slice(3),
});
const mod = await import(`./${name}.bench.mjs`);
await mod.run((figure, value, unit, extra = {}) => print({ bench: name, figure, value, unit, ...extra }), process.argv.slice(3));
