import t from 'tap';
import { compareIP, formatIP, ipFromKey, ipKey, parseIP, tryParseIP } from '../../../lib/ip/address.js';
import { BeaconError } from '../../../lib/errors.js';

t.test('valid addresses parse and format canonically', async (t) => {
  const rows: { desc: string; in: string; family: 4 | 6; value: bigint; out: string }[] = [
    { desc: 'IPv4 zero', in: '0.0.0.0', family: 4, value: 0n, out: '0.0.0.0' },
    { desc: 'IPv4 max', in: '255.255.255.255', family: 4, value: 0xffffffffn, out: '255.255.255.255' },
    { desc: 'IPv4 plain', in: '192.168.10.1', family: 4, value: 0xc0a80a01n, out: '192.168.10.1' },
    { desc: 'IPv6 unspecified', in: '::', family: 6, value: 0n, out: '::' },
    { desc: 'IPv6 loopback', in: '::1', family: 6, value: 1n, out: '::1' },
    { desc: 'IPv6 full form with leading zeros (RFC 4291 allows them)', in: '2001:0db8:0000:0000:0000:0000:0000:0001', family: 6, value: 0x20010db8000000000000000000000001n, out: '2001:db8::1' },
    { desc: 'IPv6 upper case is lowered (RFC 5952 §4.3)', in: 'FD00::AB', family: 6, value: 0xfd0000000000000000000000000000abn, out: 'fd00::ab' },
    { desc: 'IPv6 single zero group is not compressed (RFC 5952 §4.2.2)', in: '2001:db8:0:1:1:1:1:1', family: 6, value: 0x20010db8000000010001000100010001n, out: '2001:db8:0:1:1:1:1:1' },
    { desc: 'IPv6 longest zero run is compressed', in: '2001:0:0:1:0:0:0:1', family: 6, value: 0x20010000000000010000000000000001n, out: '2001:0:0:1::1' },
    { desc: 'IPv6 first of equal runs is compressed (RFC 5952 §4.2.3)', in: '2001:db8:0:0:1:0:0:1', family: 6, value: 0x20010db8000000000001000000000001n, out: '2001:db8::1:0:0:1' },
    { desc: 'IPv6 with embedded IPv4', in: '::ffff:10.0.0.1', family: 6, value: 0xffff0a000001n, out: '::ffff:a00:1' },
    { desc: 'IPv6 trailing ::', in: 'fd00::', family: 6, value: 0xfd00n << 112n, out: 'fd00::' },
  ];
  for (const row of rows) {
    const ip = parseIP(row.in);
    t.equal(ip.family, row.family, `${row.desc}: family`);
    t.equal(ip.value, row.value, `${row.desc}: value`);
    t.equal(formatIP(ip), row.out, `${row.desc}: format`);
    t.same(parseIP(formatIP(ip)), ip, `${row.desc}: round trip`);
  }
});

t.test('ambiguous or malformed addresses are refused with the reason', async (t) => {
  const rows: { desc: string; in: string; reason: RegExp }[] = [
    { desc: 'leading zero (octal to inet_aton)', in: '010.0.0.1', reason: /leading zero/ },
    { desc: 'hex octet', in: '0x0a.0.0.1', reason: /hexadecimal/ },
    { desc: 'short form', in: '10.1', reason: /4 dotted decimal octets/ },
    { desc: 'octet over 255', in: '10.0.0.256', reason: /over 255/ },
    { desc: 'empty octet', in: '10..0.1', reason: /not a decimal number/ },
    { desc: 'sign', in: '+1.0.0.1', reason: /not a decimal number/ },
    { desc: 'whitespace', in: ' 10.0.0.1', reason: /whitespace/ },
    { desc: 'zone id', in: 'fe80::1%eth0', reason: /zone ids/ },
    { desc: 'two ::', in: '1::2::3', reason: /IPv6/ },
    { desc: 'nine groups', in: '1:2:3:4:5:6:7:8:9', reason: /IPv6/ },
    { desc: 'seven groups without ::', in: '1:2:3:4:5:6:7', reason: /IPv6/ },
    { desc: ':: standing for no group', in: '1:2:3:4::5:6:7:8', reason: /IPv6/ },
    { desc: 'five hex digits', in: '12345::1', reason: /IPv6/ },
    { desc: 'leading zero in embedded IPv4', in: '::ffff:010.0.0.1', reason: /IPv6/ },
    { desc: 'empty', in: '', reason: /4 dotted decimal octets, found 1/ },
  ];
  for (const row of rows) {
    t.equal(tryParseIP(row.in), undefined, `${row.desc}: tryParseIP`);
    t.throws(() => parseIP(row.in), { code: 'BEACON_INVALID_IP', message: row.reason }, row.desc);
    try { parseIP(row.in); } catch (e) { t.ok(e instanceof BeaconError, `${row.desc}: a BeaconError`); }
  }
});

t.test('keys and ordering keep the families apart', async (t) => {
  const v4 = parseIP('1.2.3.4');
  const v6 = parseIP('::102:304');
  t.equal(v4.value, v6.value, 'same integer value');
  t.not(ipKey(v4), ipKey(v6), 'different keys');
  t.same(ipFromKey(ipKey(v4)), v4);
  t.same(ipFromKey(ipKey(v6)), v6);
  t.ok(compareIP(v4, v6) < 0, 'IPv4 sorts first');
  t.ok(compareIP(parseIP('10.0.0.2'), parseIP('10.0.0.10')) < 0, 'numeric, not textual, order');
  t.equal(compareIP(v4, parseIP('1.2.3.4')), 0);
});
