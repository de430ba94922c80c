/**
 * Active health checks: every interval, per backend, a TCP connect (or, with `httpPath`,
 * an HTTP/1.0 GET expecting a 2xx or 3xx status, as HAProxy's `option httpchk` does).
 * Results go to `onResult`; judging them (rise/fall) is lib/health's job. The next check
 * is scheduled when the previous one ends, so a slow backend never has two in flight.
 * Constructor does no I/O; `set()` starts and stops checks; `close()` ends every timer
 * and socket.
 */
import { connect, type Socket } from 'node:net';

export interface CheckOptions {
  /** Between checks of one backend. HAProxy's `inter` default is 2 s. */
  readonly intervalMs: number;
  /** A check that has not answered by then fails. HAProxy's `timeout check` falls back to `inter`. */
  readonly timeoutMs: number;
  /** GET this path and expect 2xx/3xx; undefined: a TCP connect is the check. */
  readonly httpPath?: string | undefined;
  /** Check this port instead of the backend's own (a separate health port). */
  readonly port?: number | undefined;
}

export interface CheckTarget {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
}

interface Running {
  target: CheckTarget;
  timer: NodeJS.Timeout | undefined;
  socket: Socket | undefined;
}

/** Status line of an HTTP response: `HTTP/1.x NNN`. */
const STATUS = /^HTTP\/1\.[01] (\d{3})/;

export class HealthChecker {
  readonly #running = new Map<string, Running>();
  #closed = false;

  constructor(
    private readonly options: CheckOptions,
    private readonly onResult: (id: string, pass: boolean) => void,
  ) {}

  /** The backends to check; new ones are checked at once, removed ones stop. */
  set(targets: readonly CheckTarget[]): void {
    if (this.#closed) return;
    const ids = new Set(targets.map((t) => t.id));
    for (const [id, r] of this.#running) if (!ids.has(id)) { this.#stop(r); this.#running.delete(id); }
    for (const target of targets) {
      const cur = this.#running.get(target.id);
      if (cur) { cur.target = target; continue; }
      const r: Running = { target, timer: undefined, socket: undefined };
      this.#running.set(target.id, r);
      this.#check(r);
    }
  }

  close(): void {
    this.#closed = true;
    for (const r of this.#running.values()) this.#stop(r);
    this.#running.clear();
  }

  #stop(r: Running): void {
    if (r.timer) clearTimeout(r.timer);
    r.timer = undefined;
    r.socket?.destroy();
    r.socket = undefined;
  }

  #check(r: Running): void {
    r.timer = undefined;
    const { ip, port } = r.target;
    const socket = connect({ host: ip, port: this.options.port ?? port, timeout: this.options.timeoutMs });
    r.socket = socket;
    let done = false;
    let head = '';
    const finish = (pass: boolean) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (r.socket === socket) r.socket = undefined;
      if (this.#closed || this.#running.get(r.target.id) !== r) return;
      this.onResult(r.target.id, pass);
      r.timer = setTimeout(() => this.#check(r), this.options.intervalMs);
    };
    socket.on('error', () => finish(false));
    socket.on('timeout', () => finish(false));
    socket.on('close', () => finish(false));
    socket.on('connect', () => {
      const path = this.options.httpPath;
      if (path === undefined) return finish(true);
      socket.write(`GET ${path} HTTP/1.0\r\nHost: ${ip.includes(':') ? `[${ip}]` : ip}\r\nUser-Agent: beacon-health\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const m = STATUS.exec(head);
      if (m) finish(m[1]!.startsWith('2') || m[1]!.startsWith('3'));
      else if (head.includes('\n') || head.length > 64) finish(false); // not HTTP
    });
  }
}
