/**
 * A real Kubernetes control plane for integration tests: etcd and kube-apiserver on
 * loopback, started with envtest-like flags (RBAC on, a static admin token, a
 * service-account signing key so TokenRequest works), stopped with nothing left running
 * or on disk. Binaries come from test/k8s/build-binaries.sh (cached after the first build).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/root.js';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { request } from 'node:https';

export interface ControlPlane {
  readonly server: string;
  readonly adminToken: string;
  /** A kubeconfig file for the admin identity. */
  readonly kubeconfig: string;
  /** Stops kube-apiserver only (etcd keeps the data), to test recovery. */
  stopAPIServer(): Promise<void>;
  startAPIServer(): Promise<void>;
  stop(): Promise<void>;
}

function binaries(): { apiserver: string; etcd: string } {
  const script = join(repoRoot(), 'test/k8s/build-binaries.sh');
  const out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const get = (k: string) => /^(\w+)=(.*)$/m.exec(out.split('\n').find((l) => l.startsWith(`${k}=`)) ?? '')?.[2];
  const apiserver = get('KUBE_APISERVER_BIN');
  const etcd = get('ETCD_BIN');
  if (!apiserver || !etcd) throw new Error(`build-binaries.sh printed no binaries:\n${out}`);
  return { apiserver, etcd };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => { clearTimeout(kill); resolve(); });
    p.kill('SIGTERM');
  });
}

function get(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, proc: ChildProcess, logs: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with ${proc.exitCode}:\n${logs().slice(-4000)}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${logs().slice(-4000)}`);
}

export async function startControlPlane(): Promise<ControlPlane> {
  const bins = binaries();
  const dir = mkdtempSync(join(tmpdir(), 'beacon-k8s-'));
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},beacon-test-admin,admin-uid,"system:masters"\n`);
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));

  let etcdLog = '';
  const etcd = spawn(bins.etcd, [
    '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `default=http://127.0.0.1:${etcdPeer}`,
    '--unsafe-no-fsync', // test data: durability costs seconds per test for nothing
    '--log-level', 'error',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  etcd.stdout!.on('data', (d: Buffer) => { etcdLog += d.toString(); });
  etcd.stderr!.on('data', (d: Buffer) => { etcdLog = (etcdLog + d.toString()).slice(-20_000); });

  // A test or benchmark that crashes never reaches stop(): kill the children on exit anyway,
  // or etcd outlives it (seen: two leaked from crashed ad-hoc runs).
  const killOnExit = () => { apiserver?.kill('SIGKILL'); etcd.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }); };
  process.once('exit', killOnExit);

  const server = `https://127.0.0.1:${apiPort}`;
  let apiserver: ChildProcess | undefined;
  let apiLog = '';
  const startAPIServer = async () => {
    apiLog = '';
    apiserver = spawn(bins.apiserver, [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      '--service-cluster-ip-range=10.96.0.0/16,fd00:100::/108', // dual stack; room for benchmark Services
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      '--v=0',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (d: Buffer) => { apiLog = (apiLog + d.toString()).slice(-50_000); };
    apiserver.stdout!.on('data', collect);
    apiserver.stderr!.on('data', collect);
    await waitFor('kube-apiserver', async () => (await get(`${server}/readyz`, adminToken)).body === 'ok', apiserver, () => apiLog);
  };

  try {
    await waitFor('etcd', async () => {
      const r = await fetch(`http://127.0.0.1:${etcdClient}/health`).then((x) => x.json() as Promise<{ health?: string }>).catch(() => ({}) as { health?: string });
      return r.health === 'true';
    }, etcd, () => etcdLog);
    await startAPIServer();
  } catch (err) {
    await stopProcess(apiserver);
    await stopProcess(etcd);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'test',
    clusters: [{ name: 'test', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'admin', user: { token: adminToken } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
  }));

  let stopped = false;
  return {
    server, adminToken, kubeconfig,
    startAPIServer,
    stopAPIServer: () => stopProcess(apiserver),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopProcess(apiserver);
      await stopProcess(etcd);
      rmSync(dir, { recursive: true, force: true });
      process.off('exit', killOnExit);
    },
  };
}
