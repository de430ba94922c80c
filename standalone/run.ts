/**
 * Standalone mode's shell: read the file (or the embedded default), plan, print.
 * The speaker and proxy issues make this same command announce and forward.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStandaloneFile } from '../lib/standalone/file.js';
import { formatPlan, planStandalone, type PlanRow } from '../lib/standalone/plan.js';
import { serve, startDemoBackends } from './serve.js';

/**
 * The embedded default, shipped in the package. Found from the package root because this
 * module runs both from its source (tests) and from dist/ (the command).
 */
export function defaultStandaloneFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return join(dir, 'config', 'standalone.yaml');
}

export interface StandaloneOutput {
  write(text: string): void;
  error(text: string): void;
}

export interface StandaloneOutcome {
  readonly exitCode: number;
  readonly rows: readonly PlanRow[];
}

export async function runStandalone(file: string | undefined, out: StandaloneOutput): Promise<StandaloneOutcome> {
  const path = file ?? defaultStandaloneFile();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    out.error(`beacon: cannot read ${path}: ${(err as Error).message}\n`);
    return { exitCode: 2, rows: [] };
  }
  const parsed = parseStandaloneFile(text);
  if (!parsed.ok) {
    out.error(`beacon: ${path} is invalid (${parsed.problems.length} problem${parsed.problems.length === 1 ? '' : 's'}):\n`);
    for (const p of parsed.problems) out.error(`  ${p.document} ${p.path}: ${p.reason}\n`);
    return { exitCode: 1, rows: [] };
  }
  const rows = planStandalone(parsed.config, parsed.services);
  out.write(`# ${path}: ${parsed.config.pools.length} pools, ${rows.length} services\n`);
  out.write(formatPlan(rows));
  return { exitCode: rows.every((r) => r.status === 'allocated') ? 0 : 3, rows };
}

export interface ServeOptions {
  /** Start HTTP backends on the file's endpoints (the embedded default's demo). */
  readonly demoBackends: boolean;
  /** Resolves when serving should stop (a signal, in the command). */
  readonly until: Promise<void>;
}

/** Plans, then forwards every allocated Service until `until`; every socket closed after. */
export async function serveStandalone(file: string | undefined, out: StandaloneOutput, opts: ServeOptions): Promise<number> {
  const planned = await runStandalone(file, out);
  if (planned.exitCode === 1 || planned.exitCode === 2) return planned.exitCode;
  const demo = opts.demoBackends ? await startDemoBackends(planned.rows) : undefined;
  const serving = await serve(planned.rows, (line) => out.write(`${line}\n`));
  for (const s of serving.skipped) out.write(`not forwarded: ${s}\n`);
  // Show traffic flowing: one request through each frontend.
  for (const f of serving.frontends) {
    if (f.protocol !== 'TCP') continue;
    const [host, port] = [f.ip, f.port];
    const answer = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), (e: Error) => `no answer (${e.message})`);
    out.write(`GET http://${host}:${port}/ (${f.key}) -> ${answer.trim()}\n`);
  }
  out.write(`serving ${serving.frontends.length} frontends; Ctrl-C to stop\n`);
  await opts.until;
  await serving.close();
  await demo?.close();
  out.write('stopped\n');
  return planned.exitCode;
}
