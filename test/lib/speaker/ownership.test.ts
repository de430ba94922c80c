import t from 'tap';
import { localOwnership } from '../../../lib/speaker/ownership.js';

t.test('a node serves the IPs it already has, and all of 127.0.0.0/8', async (t) => {
  const owns = localOwnership(['192.0.2.5', '2001:db8::5', 'fe80::1%eth0', '::1', 'not-an-ip']);
  const rows: { desc: string; ip: string; want: boolean }[] = [
    { desc: 'an interface address', ip: '192.0.2.5', want: true },
    { desc: 'another address of the subnet', ip: '192.0.2.6', want: false },
    { desc: 'IPv6 on an interface, written uncanonically', ip: '2001:DB8:0::5', want: true },
    { desc: 'a link-local address, its zone dropped', ip: 'fe80::1', want: true },
    { desc: 'any of 127.0.0.0/8', ip: '127.0.0.241', want: true },
    { desc: 'IPv6 loopback when the node lists it', ip: '::1', want: true },
    { desc: 'not an address', ip: 'web', want: false },
  ];
  for (const row of rows) t.equal(owns(row.ip), row.want, row.desc);
  t.equal(localOwnership([])('::1'), false, 'IPv6 has no loopback block: ::1 only when listed');
});
