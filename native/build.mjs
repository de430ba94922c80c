#!/usr/bin/env node
// Builds the native relay (native/*.c) into dist/native/beacon_relay.node with the C
// compiler and the headers of the Node that runs this script. N-API is ABI-stable, so the
// result loads on every Node >= 20; building with the running Node's own headers means no
// download (node-gyp would fetch headers from nodejs.org, which CI machines cannot reach).
// Skipped when the output is newer than the source and this script.
// BEACON_NATIVE=off: build nothing (the speaker then relays with pipe()).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native');
const sources = readdirSync(dir).filter((f) => f.endsWith('.c') || f.endsWith('.h')).map((f) => join(dir, f));
const out = join(root, 'dist', 'native', 'beacon_relay.node');
if (process.env.BEACON_NATIVE === 'off') process.exit(0);

const headers = [resolve(process.execPath, '..', '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node']
  .find((d) => existsSync(join(d, 'node_api.h')));
if (!headers) {
  console.error(`native/build.mjs: node_api.h not found next to ${process.execPath}; set BEACON_NATIVE=off to build without the native relay`);
  process.exit(1);
}
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (existsSync(out) && statSync(out).mtimeMs > newest) process.exit(0);
mkdirSync(dirname(out), { recursive: true });
const cc = process.env.CC ?? 'cc';
execFileSync(cc, ['-O2', '-g', '-std=gnu11', '-Wall', '-Wextra', '-fPIC', '-shared', '-pthread',
  `-I${headers}`, '-o', out, ...sources.filter((f) => f.endsWith('.c'))], { stdio: 'inherit' });
