// The command line as a user runs it: the built binary, its exit codes and messages.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/root.js';

const beacon = (...args: string[]) => spawnSync(process.execPath, [join(repoRoot(), 'dist/bin/beacon.js'), ...args], { encoding: 'utf8', timeout: 20_000 });

t.test('help, usage errors and standalone --once', async (t) => {
  const dir = t.testdir({});
  writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/33]}\n');
  const rows: { desc: string; args: string[]; code: number; out?: RegExp; err?: RegExp }[] = [
    { desc: 'help', args: ['help'], code: 0, out: /commands:\n\s+standalone/ },
    { desc: 'no command: usage, exit 2', args: [], code: 2, out: /usage: beacon <command>/ },
    { desc: 'unknown command', args: ['frobnicate'], code: 2, err: /unknown command "frobnicate"/ },
    { desc: 'unknown flag: the reason and the usage, exit 2', args: ['standalone', '--bogus'], code: 2, err: /Unknown option '--bogus'[\s\S]*usage: beacon/ },
    { desc: 'help names the speaker and its flags', args: ['help'], code: 0, out: /speaker \[options\][\s\S]*--relay native\|pipe/ },
    { desc: 'speaker: an unknown relay is a usage error', args: ['speaker', '--relay=turbo'], code: 2, err: /--relay: "turbo" is not native or pipe[\s\S]*usage: beacon/ },
    { desc: 'speaker: an unknown flag', args: ['speaker', '--namespace=x'], code: 2, err: /Unknown option '--namespace'/ },
    { desc: 'speaker: a drain that is not seconds', args: ['speaker', '--shutdown-drain=soon'], code: 2, err: /--shutdown-drain: "soon" is not a number of seconds/ },
    { desc: 'standalone --once on the embedded default', args: ['standalone', '--once'], code: 0, out: /demo\/web\s+loopback\s+127\.0\.0\.24\d/ },
    { desc: 'standalone --once on a bad file', args: ['standalone', '--once', '--config', join(dir, 'bad.yaml')], code: 1, err: /IPAddressPool\/p spec\.addresses\[0\]: .*prefix length "33"/ },
  ];
  for (const row of rows) {
    const r = beacon(...row.args);
    t.equal(r.status, row.code, `${row.desc}: exit code`);
    if (row.out) t.match(r.stdout, row.out, `${row.desc}: stdout`);
    if (row.err) t.match(r.stderr, row.err, `${row.desc}: stderr`);
  }
});
