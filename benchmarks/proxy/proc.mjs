// Child processes for the proxy benchmark: every peer, backend and load generator runs in
// its own process group, so its RSS is its own and one kill ends it with its workers.
// Everything spawned is remembered and ended at the end of the run, on error and on SIGINT.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { connect } from 'node:net';

const live = new Set();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The hard open-files limit children can raise theirs to (root without CAP_SYS_RESOURCE cannot go above it). */
export function hardNofile() {
  const out = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? 1_048_576 : Number(out);
}

/**
 * Starts `cmd args` with `ulimit -n` raised (65,536, or the hard limit when that is lower),
 * in a new process group. `exec` keeps the pid the command's own, so /proc/<pid> is it.
 * Returns { pid, proc, lines, waitLine(match, ms), exited, stop() }.
 */
export function start(name, cmd, args, { env, cwd } = {}) {
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"';
  const proc = spawn('bash', ['-c', script, 'bench-child', cmd, ...args], {
    detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd,
  });
  const lines = [];
  const waiters = new Set();
  let stderr = '';
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters) w(l);
  });
  proc.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => { live.delete(handle); resolve({ code, signal }); }));
  proc.on('error', () => undefined);
  proc.stdin.on('error', () => undefined);
  const handle = {
    name, pid: proc.pid, proc, lines, exited,
    stderr: () => stderr,
    /** The first stdout line (already seen or coming) that `match` accepts; rejects on exit or after `ms`. */
    waitLine(match, ms) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const done = (fn, v) => { clearTimeout(timer); waiters.delete(w); fn(v); };
        const w = (l) => { if (match(l)) done(resolve, l); };
        const timer = setTimeout(() => done(reject, new Error(`${name}: no expected output within ${ms} ms; stderr: ${stderr.slice(-500)}`)), ms);
        waiters.add(w);
        void exited.then(({ code, signal }) => done(reject, new Error(`${name} exited (${code ?? signal}); stderr: ${stderr.slice(-500)}`)));
      });
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      killGroup(proc.pid, 'SIGTERM');
      const t = await Promise.race([exited.then(() => 'ok'), sleep(3000).then(() => 'late')]);
      if (t === 'late') { killGroup(proc.pid, 'SIGKILL'); await Promise.race([exited, sleep(2000)]); }
    },
  };
  live.add(handle);
  return handle;
}

function killGroup(pid, signal) {
  try { process.kill(-pid, signal); } catch { try { process.kill(pid, signal); } catch { /* gone */ } }
}

export async function stopAll() {
  await Promise.all([...live].map((h) => h.stop()));
}

/** Last-resort cleanup when the benchmark process itself is going away. */
export function installExitHandlers() {
  const hard = () => { for (const h of live) killGroup(h.pid, 'SIGKILL'); };
  process.on('exit', hard);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => { void stopAll().finally(() => process.exit(130)); });
  }
}

/** Resolves once 127.0.0.1:port accepts a TCP connection (polled every 50 ms, at most `ms`). */
export async function waitPort(port, ms = 10_000, handle) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (handle && (handle.proc.exitCode !== null || handle.proc.signalCode !== null)) throw new Error(`${handle.name} exited: ${handle.stderr().slice(-500)}`);
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting after ${ms} ms${handle ? `; ${handle.name} stderr: ${handle.stderr().slice(-500)}` : ''}`);
    await sleep(50);
  }
}

/** VmRSS in bytes of `pid` plus all its descendants (NGINX's workers are the master's children). */
export function treeRss(pid) {
  let total = 0;
  const tree = processTree(pid);
  for (const p of tree) {
    try { total += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { /* exited */ }
  }
  return { bytes: total, processes: tree.size };
}

/** CPU time (user + system, ms) used so far by `pid` and its descendants (NGINX's and HAProxy's workers). */
export function treeCpuMs(pid) {
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ, 100 on Linux).
  const TICK_MS = 10;
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* exited */ }
  }
  return ticks * TICK_MS;
}

/** `pid` and every process below it. */
function processTree(pid) {
  const parents = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(d), ppid);
    } catch { /* exited meanwhile */ }
  }
  const tree = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [p, pp] of parents) if (tree.has(pp) && !tree.has(p)) { tree.add(p); grew = true; }
  }
  return tree;
}
