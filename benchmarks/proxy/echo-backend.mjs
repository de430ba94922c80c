// The UDP and idle-TCP backend: echoes every datagram on udpPort and every byte on tcpPort.
// argv: udpPort tcpPort. Prints {"ready":true} when both are bound; runs until killed.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [udpPort, tcpPort] = process.argv.slice(2).map(Number);
const udp = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
udp.on('error', (err) => { process.stderr.write(`udp: ${err.message}\n`); });
const tcp = createServer((s) => { s.on('error', () => s.destroy()); s.pipe(s); });
await Promise.all([
  new Promise((resolve) => udp.bind(udpPort, '127.0.0.1', resolve)),
  new Promise((resolve, reject) => { tcp.once('error', reject); tcp.listen({ host: '127.0.0.1', port: tcpPort, backlog: 4096 }, resolve); }),
]);
process.stdout.write('{"ready":true}\n');
