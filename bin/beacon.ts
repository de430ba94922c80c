#!/usr/bin/env node
/** The `beacon` command: one binary, one subcommand per role. */
import { parseArgs } from 'node:util';
import { runStandalone } from '../standalone/run.js';

const USAGE = `usage: beacon <command> [options]

commands:
  standalone [--config FILE]   allocate (and later announce and forward) the pools and
                               Services of FILE, without Kubernetes; default: the
                               embedded config/standalone.yaml
  help                         this text
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'standalone': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
      const outcome = await runStandalone(values.config, {
        write: (s) => process.stdout.write(s),
        error: (s) => process.stderr.write(s),
      });
      return outcome.exitCode;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`beacon: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.stderr.write(`beacon: ${(err as Error).stack ?? String(err)}\n`); process.exitCode = 1; },
);
