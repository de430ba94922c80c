import t from 'tap';
import { formatEndpoint, parseEndpoint } from '../../../lib/standalone/endpoint.js';

t.test('endpoints parse strictly and format back', async (t) => {
  const rows: { desc: string; in: string; out?: string; reason?: RegExp }[] = [
    { desc: 'IPv4', in: '127.0.0.1:9000', out: '127.0.0.1:9000' },
    { desc: 'IPv6 bracketed', in: '[::1]:53', out: '[::1]:53' },
    { desc: 'IPv6 canonicalised', in: '[FD00:0::1]:80', out: '[fd00::1]:80' },
    { desc: 'highest port', in: '10.0.0.1:65535', out: '10.0.0.1:65535' },
    { desc: 'no port', in: '10.0.0.1', reason: /expected host:port/ },
    { desc: 'port 0', in: '10.0.0.1:0', reason: /1 to 65535/ },
    { desc: 'port too high', in: '10.0.0.1:65536', reason: /1 to 65535/ },
    { desc: 'port with leading zero', in: '10.0.0.1:080', reason: /1 to 65535/ },
    { desc: 'hostname', in: 'backend:80', reason: /"backend" is not an IP address/ },
    { desc: 'unbracketed IPv6', in: '::1:80', reason: /bracket IPv6 hosts/ },
    { desc: 'unclosed bracket', in: '[::1:80', reason: /expected \[ipv6\]:port/ },
  ];
  for (const row of rows) {
    const r = parseEndpoint(row.in);
    if (row.out !== undefined) {
      t.ok(r.ok, `${row.desc}: accepted`);
      if (r.ok) t.equal(formatEndpoint(r.endpoint), row.out, `${row.desc}: formatted`);
    } else {
      t.notOk(r.ok, `${row.desc}: refused`);
      if (!r.ok) t.match(r.reason, row.reason!, `${row.desc}: reason`);
    }
  }
});
