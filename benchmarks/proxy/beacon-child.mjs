// Runs one proxy (Beacon's engine when built, else the plain pipe proxy) in its own
// process, so the benchmark can read its RSS alone. argv[2]: JSON
// { impl: 'beacon'|'plain', frontends: [{ key, ip, port, protocol, backends }] }.
// Prints {"ready":true,...} once listening; SIGTERM closes it.
import { pathToFileURL } from 'node:url';
import { ENGINE_PATH } from './beacon.mjs';

const spec = JSON.parse(process.argv[2]);
let proxy;
if (spec.impl === 'beacon') {
  const { Proxy } = await import(pathToFileURL(ENGINE_PATH).href);
  proxy = new Proxy({});
  const result = await proxy.apply(spec.frontends.map((f) => ({
    key: f.key, ip: f.ip, port: f.port, protocol: f.protocol,
    backends: f.backends.map((b) => ({ ip: b.ip, port: b.port, state: 'ready' })),
    options: {},
  })));
  if (result.failed.length > 0) {
    process.stderr.write(`frontends failed: ${JSON.stringify(result.failed)}\n`);
    process.exit(1);
  }
} else {
  const { startPlainProxy } = await import('./plain-proxy.mjs');
  proxy = await startPlainProxy(spec.frontends);
}
process.stdout.write(JSON.stringify({ ready: true, impl: spec.impl, pid: process.pid }) + '\n');
let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  // The engine drains TCP connections up to its deadline; the benchmark is done with them.
  setTimeout(() => process.exit(0), 1000).unref();
  void proxy.close().finally(() => process.exit(0));
});
