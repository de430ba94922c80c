// TCP peers for data-plane tests on loopback: an echoing backend and a one-shot client.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export interface EchoBackendOptions {
  /** Sees raw bytes instead of the default greet-then-echo. */
  readonly onData?: (b: Buffer, s: Socket) => void;
  /** Answer a half-close with `bye` before ending (shows half-close crossed the proxy). */
  readonly halfClose?: boolean;
  /** Listen on this port (0: any). */
  readonly port?: number;
  /** Listen on this address; default 127.0.0.1. */
  readonly host?: string;
}

export interface EchoBackend {
  readonly port: number;
  readonly server: () => Server;
  /** Destroys open connections and stops listening; safe to call twice. */
  close(): Promise<void>;
  /** Listens again on the same port (a backend coming back). */
  reopen(): Promise<void>;
}

/** A backend that greets with `name:` then echoes, on 127.0.0.1 unless `host` says otherwise. */
export async function echoBackend(name: string, opts: EchoBackendOptions = {}): Promise<EchoBackend> {
  const sockets = new Set<Socket>();
  let server: Server;
  const open = async (p: number): Promise<number> => {
    server = createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
      if (!opts.onData) s.write(`${name}:`);
      s.on('data', (d: Buffer) => (opts.onData ? opts.onData(d, s) : s.write(d)));
      s.on('end', () => { if (opts.halfClose) s.end('bye'); else s.end(); });
    });
    server.listen(p, opts.host ?? '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as { port: number }).port;
  };
  const port = await open(opts.port ?? 0);
  return {
    port,
    server: () => server,
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise((r) => server.close(r));
    },
    reopen: async () => { await open(port); },
  };
}

/**
 * Connects, sends `send` (then half-closes if `end`), resolves with everything read until
 * the connection closes; a reset counts as closed (a proxy cutting a connection whose
 * bytes it never read makes the kernel send RST).
 */
export function talk(port: number, send = '', end = true, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port, allowHalfOpen: true });
    let got = '';
    s.on('data', (d) => { got += d.toString(); });
    s.on('error', () => undefined);
    s.on('end', () => s.end());
    s.on('close', () => resolve(got));
    s.on('connect', () => { if (send) s.write(send); if (end) s.end(); });
  });
}
