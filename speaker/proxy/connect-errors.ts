/**
 * Whose fault a failed connect to a backend is. Passive health ejects a backend whose
 * connect fails; without active checks nothing brings it back. So a connect that failed
 * for want of the proxy's own resources must not count against the backend. Otherwise a
 * client flood that uses up the proxy's descriptors would eject every healthy backend
 * for good.
 */
import { constants } from 'node:os';

/** errno names of the proxy's own shortages, and ECANCELED: the proxy gave up the attempt itself. */
const PROXY_SIDE = ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL', 'ECANCELED'] as const;
const PROXY_SIDE_NUMBERS = new Set<number>(PROXY_SIDE.map((name) => constants.errno[name]));

/**
 * True when a failed connect says nothing about the backend. `error` is an errno name
 * (Node's `err.code`) or number (the native relay's report).
 */
export function failedOnProxySide(error: string | number | undefined): boolean {
  return typeof error === 'number' ? PROXY_SIDE_NUMBERS.has(error) : (PROXY_SIDE as readonly string[]).includes(error ?? '');
}
