/**
 * Scenario tables for the allocator: each row acts on the state the previous rows left,
 * and checks its outcome. Every request is deep-frozen first: ES modules are strict, so
 * an allocator that mutated its input would throw and fail the row.
 */
import type { Test } from 'tap';
import { Allocator } from '../../lib/allocator/allocator.js';
import type { Config } from '../../lib/config/model.js';
import type { ServiceRequest } from '../../lib/allocator/types.js';
import { parseIP } from '../../lib/ip/address.js';
import { show } from './alloc.js';

export type Step =
  | { desc: string; allocate: ServiceRequest; expect: string }
  | { desc: string; assign: ServiceRequest; ips: string[]; expect: string }
  | { desc: string; release: string; expect: boolean }
  | { desc: string; config: Config; expectReleased: string[] }
  | { desc: string; holders: string; expect: string[] };

export function runScenario(t: Test, config: Config, steps: Step[]): Allocator {
  const a = new Allocator();
  a.setConfig(config);
  for (const step of steps) {
    if ('allocate' in step) {
      // Frozen: a mutation would throw in strict mode, failing the row.
      const r = a.allocate(deepFreeze(step.allocate));
      t.equal(show(r), step.expect, `${step.desc}${r.ok ? '' : ` (${r.message})`}`);
    } else if ('assign' in step) {
      const r = a.assign(deepFreeze(step.assign), step.ips.map(parseIP));
      t.equal(show(r), step.expect, `${step.desc}${r.ok ? '' : ` (${r.message})`}`);
    } else if ('release' in step) {
      t.equal(a.release(step.release), step.expect, step.desc);
    } else if ('config' in step) {
      t.same(a.setConfig(step.config).released, step.expectReleased, step.desc);
    } else {
      t.same(a.servicesOn(parseIP(step.holders)), step.expect, step.desc);
    }
  }
  return a;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
