import t from 'tap';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { runStandalone, serveStandalone } from '../../standalone/run.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { write: (s: string) => { out.stdout += s; }, error: (s: string) => { out.stderr += s; } } };
}

t.test('the embedded default allocates every Service', async (t) => {
  const { out, io } = capture();
  const r = await runStandalone(undefined, io);
  t.equal(r.exitCode, 0, out.stderr);
  t.match(out.stdout, /config\/standalone\.yaml: 2 pools, 4 services/);
  t.match(out.stdout, /demo\/web\s+loopback\s+127\.0\.0\.24\d\s+8080\/TCP/);
  t.match(out.stdout, /ops\/admin\s+reserved\s+127\.0\.1\.0\s+8443\/TCP/);
  const dns = r.rows.filter((row) => row.key.startsWith('demo/dns'));
  t.equal(dns.length, 2);
  t.same(dns[0]!.ips, dns[1]!.ips, 'the two dns Services share one address');
});

t.test('an invalid file: exit 1 and every problem on stderr', async (t) => {
  const dir = t.testdir({});
  const file = `${dir}/bad.yaml`;
  writeFileSync(file, 'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec:\n  addresses: [10.0.0.0/33, 010.0.0.1/32]\n');
  const { out, io } = capture();
  const r = await runStandalone(file, io);
  t.equal(r.exitCode, 1);
  t.equal(out.stdout, '');
  t.match(out.stderr, /is invalid \(2 problems\)/);
  t.match(out.stderr, /IPAddressPool\/p spec\.addresses\[0\]: .*prefix length "33"/);
  t.match(out.stderr, /IPAddressPool\/p spec\.addresses\[1\]: .*leading zero/);
});

t.test('an unreadable file: exit 2', async (t) => {
  const { out, io } = capture();
  t.equal((await runStandalone('/nonexistent/beacon.yaml', io)).exitCode, 2);
  t.match(out.stderr, /cannot read \/nonexistent\/beacon\.yaml/);
});

/** Serves `file` until stop(); resolves once the command says it is serving (or after 10 s). */
async function serving(file: string | undefined, demoBackends: boolean) {
  const { out, io } = capture();
  let stop!: () => void;
  const until = new Promise<void>((resolve) => { stop = resolve; });
  const running = serveStandalone(file, io, { demoBackends, until });
  const deadline = Date.now() + 10_000;
  while (!out.stdout.includes('Ctrl-C to stop') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return { out, running, stop };
}

t.test('serving: traffic flows through every TCP Service, and stopping closes everything', async (t) => {
  const { out, running, stop } = await serving(undefined, true);
  t.match(out.stdout, /GET http:\/\/127\.0\.0\.241:8080\/ \(demo\/web\) -> hello from demo backend 127\.0\.0\.1:908[12]/);
  t.match(out.stdout, /GET http:\/\/127\.0\.1\.0:8443\/ \(ops\/admin\) -> hello from demo backend 127\.0\.0\.1:9443/);
  t.match(out.stdout, /demo\/dns: forwarding 127\.0\.0\.240:5353\/UDP to /, 'UDP Services are forwarded too');
  const answer = await (await fetch('http://127.0.0.241:8080/')).text();
  t.match(answer, /hello from demo backend/, 'a client of our own gets through too');
  stop();
  t.equal(await running, 0);
  t.match(out.stdout, /stopped\n$/);
  await t.rejects(fetch('http://127.0.0.241:8080/'), 'nothing listens after stopping');
});

t.test('serving reads the same proxy annotations as the speaker', async (t) => {
  let firstLine = '';
  const backend = createServer((s) => { s.once('data', (d: Buffer) => { firstLine = d.toString().split('\r\n')[0]!; s.end(); }); });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  t.teardown(() => new Promise((r) => backend.close(r)));
  const port = (backend.address() as { port: number }).port;
  const dir = t.testdir({});
  const file = `${dir}/pp.yaml`;
  writeFileSync(file, [
    'apiVersion: beacon-lb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [127.0.0.235/32]}',
    `apiVersion: v1\nkind: Service\nmetadata:\n  name: pp\n  namespace: t\n  annotations: {beacon-lb.io/proxy-protocol: v1, beacon-lb.io/balance: fastest}\nspec:\n  type: LoadBalancer\n  ports: [{name: tcp, port: 8235}]\nendpoints: ['127.0.0.1:${port}']`,
  ].join('\n---\n'));
  const { out, running, stop } = await serving(file, false);
  t.match(out.stdout, /t\/pp: metadata\.annotations\[beacon-lb\.io\/balance\]: "fastest" is not one of round-robin, least-connections \(its default applies\)/);
  t.match(firstLine, /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.235 \d+ 8235$/, 'the backend got a PROXY v1 header before the request');
  stop();
  t.equal(await running, 0);
});
