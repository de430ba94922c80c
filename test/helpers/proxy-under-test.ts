// One TCP frontend on 127.0.0.1 on each transport the tcp-frontend tests iterate over:
// Node sockets with the pipe relay, Node sockets handed to the native relay ("handoff"),
// and the native relay accepting and connecting itself. `pipe` and `native` run through
// the public Proxy (stats(), close()); Proxy never builds the handoff pairing, so that one
// is a TcpFrontend on a NativeRelay, closed the way Proxy closes (drain, then the relay).
import type { Test } from 'tap';
import { Proxy, type FrontendOptions } from '../../speaker/proxy/index.js';
import { TcpFrontend } from '../../speaker/proxy/tcp-frontend.js';
import { DEFAULT_TCP_OPTIONS, type FrontendStats } from '../../speaker/proxy/tcp-frontend-base.js';
import { createRelay, NativeRelay } from '../../speaker/proxy/native-relay.js';

export const TRANSPORTS = ['pipe', 'handoff', 'native'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export interface Served {
  readonly port: number;
  stats(): FrontendStats;
  /** Replaces the backends (in place: open connections go on). */
  setBackends(ports: readonly number[]): Promise<void>;
  /** Resolves when every connection has ended and every listener, timer and thread is gone. */
  close(): Promise<void>;
}

type Options = Pick<FrontendOptions, 'idleTimeoutMs' | 'connectTimeoutMs' | 'connectAttempts' | 'drainTimeoutMs'>;

const KEY = 'test/hostile:80/TCP';
const backendsOf = (ports: readonly number[]) => ports.map((port) => ({ ip: '127.0.0.1', port, state: 'ready' as const }));

export async function serve(t: Test, transport: Transport, ports: readonly number[], o: Options): Promise<Served> {
  if (transport === 'handoff') {
    const { relay, why } = createRelay('native', 2);
    if (!(relay instanceof NativeRelay)) throw new Error(`native relay expected: ${why}`);
    const f = new TcpFrontend('127.0.0.1', 0, {
      ...DEFAULT_TCP_OPTIONS, idleTimeoutMs: o.idleTimeoutMs, connectTimeoutMs: o.connectTimeoutMs,
      connectAttempts: o.connectAttempts, backendDrainMs: o.drainTimeoutMs,
    }, undefined, undefined, relay);
    f.update(backendsOf(ports));
    await f.start();
    let closed: Promise<void> | undefined;
    const close = () => (closed ??= f.close(o.drainTimeoutMs).then(() => relay.close()));
    t.teardown(close);
    return { port: f.boundPort, stats: () => f.snapshot(), setBackends: (p) => { f.update(backendsOf(p)); return Promise.resolve(); }, close };
  }
  const proxy = new Proxy({ relay: transport, relayThreads: 2 });
  t.teardown(() => proxy.close());
  const frontend = (p: readonly number[]) => ({ key: KEY, ip: '127.0.0.1', port: 0, protocol: 'TCP' as const, backends: backendsOf(p), options: o });
  const applied = await proxy.apply([frontend(ports)]);
  if (applied.failed.length) throw new Error(`not served: ${JSON.stringify(applied.failed)}`);
  const stats = () => {
    const s = proxy.stats().frontends[KEY];
    if (!s) throw new Error('frontend gone');
    return s;
  };
  return {
    port: stats().port, stats,
    setBackends: async (p) => { await proxy.apply([frontend(p)]); },
    close: () => proxy.close(),
  };
}
