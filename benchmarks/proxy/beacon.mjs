// "Beacon" as the benchmark drives it: the engine from speaker/proxy compiled to dist/
// (`npm run build`), or, until it exists, the plain pipe proxy, labelled "plain-pipe".
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { start } from './proc.mjs';

export const ENGINE_PATH = fileURLToPath(new URL('../../dist/speaker/proxy/index.js', import.meta.url));
const CHILD = fileURLToPath(new URL('./beacon-child.mjs', import.meta.url));

/** 'beacon' when the compiled engine exists, else 'plain'. */
export const engineAvailable = () => existsSync(ENGINE_PATH);

/**
 * Starts the proxy in a child process. `spec`: one { listenIP, port, protocol, backends }
 * or an array of them (one process serving all, as a node's speaker would).
 * `impl`: 'beacon' (the engine; falls back to 'plain' when not built) or 'plain'.
 * Returns { pid, impl: 'beacon'|'plain-pipe', close() }.
 */
export async function startBeacon(spec, { impl = 'beacon' } = {}) {
  const list = Array.isArray(spec) ? spec : [spec];
  const chosen = impl === 'beacon' && engineAvailable() ? 'beacon' : 'plain';
  const frontends = list.map((f, i) => ({
    key: `bench/proxy-${i}:${f.port}/${f.protocol}`, ip: f.listenIP, port: f.port, protocol: f.protocol,
    backends: f.backends.map((b) => ({ ip: b.ip, port: b.port })),
  }));
  const child = start(`proxy(${chosen})`, process.execPath, [CHILD, JSON.stringify({ impl: chosen, frontends })]);
  await child.waitLine((l) => l.includes('"ready":true'), 15_000);
  return { pid: child.pid, impl: chosen === 'beacon' ? 'beacon' : 'plain-pipe', close: () => child.stop() };
}
