// The load tools, each a child process with a hard time limit, and their output parsers.
import { fileURLToPath } from 'node:url';
import { start } from './proc.mjs';

const UDP_LOAD = fileURLToPath(new URL('./udp-load.mjs', import.meta.url));
const IDLE_CLIENT = fileURLToPath(new URL('./idle-client.mjs', import.meta.url));

/** Runs a child to completion within `ms`; returns its stdout lines. */
async function runToEnd(name, cmd, args, ms) {
  const h = start(name, cmd, args);
  const timer = setTimeout(() => void h.stop(), ms);
  const { code, signal } = await h.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${name} failed (${code ?? signal}): ${h.stderr().slice(-500)} ${h.lines.join('\n').slice(-500)}`);
  return h.lines;
}

/** Single-stream TCP throughput, Gbit/s, as the receiver counted it. */
export async function iperf(port, seconds) {
  const lines = await runToEnd('iperf3', 'iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], (seconds + 20) * 1000);
  const j = JSON.parse(lines.join('\n'));
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

/** wrk with its latency distribution (2 threads, 50 connections unless told). `close`: a new connection per request. */
export async function wrk(port, seconds, { close, threads = 2, connections = 50 }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  if (close) args.push('-H', 'Connection: close');
  const lines = await runToEnd('wrk', 'wrk', [...args, `http://127.0.0.1:${port}/`], (seconds + 20) * 1000);
  return parseWrk(lines.join('\n'));
}

const TO_MS = { us: 1e-3, ms: 1, s: 1000, m: 60_000 };

/** Requests/s, p50/p99 latency (ms), socket errors and non-2xx counts from wrk's text report. */
export function parseWrk(text) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`wrk output not understood: ${text.slice(0, 500)}`);
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) * TO_MS[m[2]] : NaN;
  };
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  return {
    rps: Number(rps[1]), p50Ms: pct(50), p99Ms: pct(99), requests: total ? Number(total[1]) : NaN,
    errors: se ? { connect: +se[1], read: +se[2], write: +se[3], timeout: +se[4] } : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** Echoed 64-byte datagrams per second through 127.0.0.1:port. */
export async function udpLoad(port, seconds, { flows = 16, window = 16 } = {}) {
  const lines = await runToEnd('udp-load', process.execPath, [UDP_LOAD, String(port), String(flows), String(window), String(seconds)], (seconds + 15) * 1000);
  return JSON.parse(lines.at(-1));
}

/** Opens `count` idle connections through 127.0.0.1:port and keeps them open; returns { held, failed, stop() }. */
export async function holdIdle(port, count, timeoutMs) {
  const h = start('idle-client', process.execPath, [IDLE_CLIENT, String(port), String(count), String(timeoutMs)]);
  const line = await h.waitLine((l) => l.startsWith('{'), timeoutMs + 10_000);
  return { ...JSON.parse(line), stop: () => h.stop() };
}
