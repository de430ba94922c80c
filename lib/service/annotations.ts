/**
 * Service annotations Beacon reads. Each is read under three prefixes: ours, and
 * MetalLB's current and legacy ones, so a MetalLB user migrates without rewriting
 * manifests (ANCHORS.md: the old prefix `metallb.universe.tf/` still works upstream).
 */
export const PREFIXES = ['beacon-lb.io', 'metallb.io', 'metallb.universe.tf'] as const;

/** The annotation the controller writes, under our prefix only. */
export const ALLOCATED_FROM_POOL = 'beacon-lb.io/ip-allocated-from-pool';

export type AnnotationName = 'loadBalancerIPs' | 'address-pool' | 'allow-shared-ip';

export type AnnotationLookup =
  | { readonly ok: true; readonly value: string | undefined; readonly key: string | undefined }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads one annotation under every prefix. The same value under several prefixes is
 * fine (a migration in progress); different values are a contradiction we refuse to
 * guess about.
 */
export function readAnnotation(annotations: Readonly<Record<string, string>> | undefined, name: AnnotationName): AnnotationLookup {
  let found: { key: string; value: string } | undefined;
  for (const prefix of PREFIXES) {
    const key = `${prefix}/${name}`;
    const value = annotations?.[key];
    if (value === undefined) continue;
    if (found && found.value !== value) {
      return { ok: false, reason: `annotations ${found.key}="${found.value}" and ${key}="${value}" contradict each other` };
    }
    found ??= { key, value };
  }
  return { ok: true, value: found?.value, key: found?.key };
}
