// The peers and backends, from Debian, each started in the foreground with a config
// generated into the run's temp dir (never a system service), on 127.0.0.1 only.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, waitPort } from './proc.mjs';

const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
/** Debian 12 package names: nginx-light is only nginx plus an echo module there; the stream module is its own package. */
const PACKAGES = { haproxy: 'haproxy', nginx: 'nginx', iperf3: 'iperf3', wrk: 'wrk' };

const has = (bin) => { try { execFileSync('bash', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); return true; } catch { return false; } };

/** Installs whatever is missing with one `apt-get update` and one `apt-get install`. Returns the versions. */
export function ensurePeers(log) {
  const missing = Object.entries(PACKAGES).filter(([bin]) => !has(bin)).map(([, pkg]) => pkg);
  if (!existsSync(NGINX_STREAM_MODULE)) missing.push('libnginx-mod-stream');
  if (missing.length > 0) {
    log(`installing ${missing.join(' ')}`);
    // policy-rc.d (or no init) keeps Debian from starting the packaged services; we never use them.
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 120_000 });
    execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'ignore', env, timeout: 300_000 });
  }
  const v = (cmd) => { try { return execFileSync('bash', ['-c', cmd], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; } };
  return {
    haproxy: v("haproxy -v | head -1 | awk '{print $3}'"),
    nginx: v("nginx -v 2>&1 | sed 's|.*nginx/||'"),
    iperf3: v("iperf3 -v | head -1 | awk '{print $2}'"),
    wrk: v("wrk -v 2>&1 | head -1 | awk '{print $2}'"),
  };
}

/** iperf3 server: one test at a time, which is how the benchmark uses it. */
export async function startIperfServer(port) {
  const h = start('iperf3-server', 'iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)]);
  await waitPort(port, 10_000, h);
  return h;
}

/** NGINX serving a fixed 3-byte body: the HTTP backend for wrk. One worker: the proxies need the other core. */
export async function startHttpBackend(dir, port) {
  const conf = join(dir, 'nginx-backend.conf');
  writeFileSync(conf, `
worker_processes 1;
pid ${dir}/nginx-backend.pid;
error_log ${dir}/nginx-backend.error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/b-body; proxy_temp_path ${dir}/b-proxy; fastcgi_temp_path ${dir}/b-fcgi;
  uwsgi_temp_path ${dir}/b-uwsgi; scgi_temp_path ${dir}/b-scgi;
  keepalive_requests 1000000;
  default_type text/plain;
  server { listen 127.0.0.1:${port} backlog=4096; location / { return 200 "ok\\n"; } }
}
`);
  const h = start('nginx-backend', 'nginx', ['-c', conf, '-p', dir, '-e', `${dir}/nginx-backend.error.log`, '-g', 'daemon off;']);
  await waitPort(port, 10_000, h);
  return h;
}

/** UDP echo + TCP echo backend (Node, its own process). */
export async function startEchoBackend(script, udpPort, tcpPort) {
  const h = start('echo-backend', process.execPath, [script, String(udpPort), String(tcpPort)]);
  await h.waitLine((l) => l.includes('"ready":true'), 10_000);
  return h;
}

/**
 * HAProxy as a fair user sets it up for L4: mode tcp, splice when it helps, 2 threads
 * (one per core), timeouts long enough for the idle test. No UDP (HAProxy 2.6 community
 * proxies UDP only for syslog). `tcp`: [{ listen, to }].
 */
export async function startHaproxy(dir, tcp, maxconn, maxpipes) {
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(conf, `
global
  nbthread 2
  maxconn ${maxconn}
  maxpipes ${maxpipes}
defaults
  mode tcp
  maxconn ${maxconn}
  timeout connect 5s
  timeout client 5m
  timeout server 5m
  option splice-auto
${tcp.map((t, i) => `
frontend f${i}
  bind 127.0.0.1:${t.listen}
  default_backend b${i}
backend b${i}
  server s${i} 127.0.0.1:${t.to}`).join('\n')}
`);
  const h = start('haproxy', 'haproxy', ['-f', conf, '-db']);
  for (const t of tcp) await waitPort(t.listen, 10_000, h);
  return h;
}

/**
 * NGINX stream as a fair user sets it up: a worker per core, UDP with `reuseport` (the
 * kernel spreads flows over the workers) and proxy_responses 1 (one reply per datagram,
 * DNS-style). `tcp`/`udp`: [{ listen, to }].
 */
export async function startNginxStream(dir, tcp, udp, nofile) {
  const conf = join(dir, 'nginx-stream.conf');
  writeFileSync(conf, `
load_module ${NGINX_STREAM_MODULE};
worker_processes auto;
worker_rlimit_nofile ${nofile};
pid ${dir}/nginx-stream.pid;
error_log ${dir}/nginx-stream.error.log warn;
events { worker_connections ${nofile}; }
stream {
${tcp.map((t) => `  server { listen 127.0.0.1:${t.listen} backlog=4096; proxy_pass 127.0.0.1:${t.to}; proxy_timeout 5m; }`).join('\n')}
${udp.map((u) => `  server { listen 127.0.0.1:${u.listen} udp reuseport; proxy_pass 127.0.0.1:${u.to}; proxy_responses 1; proxy_timeout 30s; }`).join('\n')}
}
`);
  const h = start('nginx-stream', 'nginx', ['-c', conf, '-p', dir, '-e', `${dir}/nginx-stream.error.log`, '-g', 'daemon off;']);
  for (const t of tcp) await waitPort(t.listen, 10_000, h);
  return h;
}
