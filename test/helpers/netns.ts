/**
 * A test host of our own: a network namespace joined to this one by a veth pair, so a
 * test has addresses that are not loopback (the API server refuses loopback endpoint
 * addresses) and that nothing outside this machine owns. The addresses come from
 * 198.18.0.0/15, reserved for benchmarking (RFC 2544, RFC 5735): no network routes it.
 * Deleting the namespace deletes the pair, so a crashed test leaves at most one
 * namespace, which the next run's cleanup by name removes.
 */
import { execFileSync } from 'node:child_process';

export interface TestHost {
  /** The namespace's name, for `ip netns exec`. */
  readonly ns: string;
  /** This side's address (on the veth in our namespace): local, so our servers can listen on it. */
  readonly localIp: string;
  /** The far side's address, inside the namespace. */
  readonly peerIp: string;
  close(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** `index` (0-255) keeps concurrent test files apart: each gets its own /30. */
export function createTestHost(name: string, index: number): TestHost {
  const ns = `beacon-${name}`;
  const local = `bk-${name}`.slice(0, 15); // IFNAMSIZ: 15 characters and the NUL
  try { ip('netns', 'del', ns); } catch { /* not there: the usual case */ }
  try { ip('link', 'del', local); } catch { /* likewise */ }
  const base = `198.18.${index}`;
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', local, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `${base}.1/30`, 'dev', local);
    ip('link', 'set', local, 'up');
    ip('-n', ns, 'addr', 'add', `${base}.2/30`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  } catch (err) {
    try { ip('netns', 'del', ns); } catch { /* best effort */ }
    throw err;
  }
  let closed = false;
  return {
    ns, localIp: `${base}.1`, peerIp: `${base}.2`,
    close() {
      if (closed) return;
      closed = true;
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    },
  };
}
