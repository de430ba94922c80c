// The reference a Node user would write in ten minutes: TCP is `client.pipe(upstream)` both
// ways, UDP is one connected upstream socket per client address. No health, no balancing
// beyond round robin, no limits. ANCHORS.md: a proxy like this reached about 0.55x HAProxy's
// single-stream throughput and 0.6x its new-connection rate on this kind of machine.
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';

/** Flows quiet this long are dropped (NGINX's proxy_timeout default is 10 min; 30 s is Beacon's default). */
const UDP_FLOW_IDLE_MS = 30_000;

/** frontends: [{ ip, port, protocol: 'TCP'|'UDP', backends: [{ ip, port }] }] → Promise<{ close() }> */
export async function startPlainProxy(frontends) {
  const closers = [];
  for (const f of frontends) closers.push(f.protocol === 'UDP' ? await udp(f) : await tcp(f));
  return { close: async () => { await Promise.all(closers.map((c) => c())); } };
}

function rr(backends) {
  let i = 0;
  return () => backends[i++ % backends.length];
}

async function tcp(f) {
  const next = rr(f.backends);
  const sockets = new Set();
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const b = next();
    const upstream = connect({ host: b.ip, port: b.port, allowHalfOpen: true, noDelay: true });
    sockets.add(client); sockets.add(upstream);
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen({ host: f.ip, port: f.port, backlog: 4096 }, resolve); });
  return () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); });
}

async function udp(f) {
  const next = rr(f.backends);
  const flows = new Map(); // "ip:port" → { socket, last }
  const server = createSocket({ type: 'udp4' });
  server.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = flows.get(key);
    if (!flow) {
      const b = next();
      const socket = createSocket({ type: 'udp4' });
      flow = { socket, last: Date.now(), ready: false, pending: [] };
      const fl = flow;
      socket.on('message', (reply) => { fl.last = Date.now(); server.send(reply, rinfo.port, rinfo.address); });
      socket.on('error', () => undefined);
      socket.connect(b.port, b.ip, () => { fl.ready = true; for (const m of fl.pending) socket.send(m); fl.pending = []; });
      flows.set(key, flow);
    }
    flow.last = Date.now();
    if (flow.ready) flow.socket.send(msg);
    else if (flow.pending.length < 16) flow.pending.push(msg);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.bind(f.port, f.ip, resolve); });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, fl] of flows) if (now - fl.last > UDP_FLOW_IDLE_MS) { fl.socket.close(); flows.delete(k); }
  }, 5_000);
  return async () => { clearInterval(sweep); for (const fl of flows.values()) fl.socket.close(); flows.clear(); server.close(); };
}
