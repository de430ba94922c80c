/**
 * Which Services Beacon handles: type LoadBalancer, with our loadBalancerClass, or with
 * no class when configured to take those too (the default class is otherwise
 * someone else's: another load balancer may be installed beside us).
 */
import type { Service } from './types.js';

export const DEFAULT_CLASS = 'beacon-lb.io/lb';

export interface ClassPolicy {
  readonly loadBalancerClass: string;
  /** Also serve LoadBalancer Services that name no class. */
  readonly serveUnclassed: boolean;
}

export const DEFAULT_CLASS_POLICY: ClassPolicy = { loadBalancerClass: DEFAULT_CLASS, serveUnclassed: false };

export type Eligibility = 'ours' | 'notLoadBalancer' | 'otherClass' | 'noClass';

export function eligibility(svc: Service, policy: ClassPolicy): Eligibility {
  if (svc.spec?.type !== 'LoadBalancer') return 'notLoadBalancer';
  const cls = svc.spec.loadBalancerClass;
  if (cls === undefined || cls === '') return policy.serveUnclassed ? 'ours' : 'noClass';
  return cls === policy.loadBalancerClass ? 'ours' : 'otherClass';
}
