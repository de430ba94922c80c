/**
 * EndpointSlices → the backends of one Service port, with the conditions kube-proxy
 * honours (discovery.k8s.io/v1; KEP-1669 "proxy terminating endpoints"):
 *  - `ready` (nil means true) takes new connections;
 *  - an endpoint that is not ready keeps its open connections and gets no new ones
 *    (state `terminating` for the balancer), whether it is terminating or failing its
 *    readiness probe: kube-proxy does not cut established flows either;
 *  - when no endpoint of the port is ready, those that are `serving` and `terminating`
 *    take new connections, so a rolling update of the last pod does not black-hole
 *    traffic (kube-proxy's fallback since 1.26).
 * Pure: slices in, backends out.
 */

export interface EndpointConditions {
  readonly ready?: boolean | null;
  readonly serving?: boolean | null;
  readonly terminating?: boolean | null;
}

export interface EndpointSlice {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly addressType: string;
  readonly endpoints?: readonly { readonly addresses: readonly string[]; readonly conditions?: EndpointConditions; readonly nodeName?: string | null }[] | null;
  readonly ports?: readonly { readonly name?: string | null; readonly port?: number | null; readonly protocol?: string | null }[] | null;
}

/** The label that ties a slice to its Service (discovery.k8s.io/v1). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export interface SliceBackend {
  readonly ip: string;
  readonly port: number;
  readonly state: 'ready' | 'terminating';
}

/**
 * The backends for the Service port named `portName` ('' for an unnamed port) and
 * `protocol`. The same address in two slices (slices are being rebalanced) counts once,
 * at its best state.
 */
export function backendsForPort(slices: readonly EndpointSlice[], portName: string, protocol: string): SliceBackend[] {
  const found = new Map<string, { ip: string; port: number; ready: boolean; fallback: boolean }>();
  for (const slice of slices) {
    // FQDN slices name hosts, not addresses: kube-proxy ignores them too.
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const port = (slice.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === protocol);
    if (!port || typeof port.port !== 'number') continue;
    for (const e of slice.endpoints ?? []) {
      // kube-proxy uses the first address only; the API says the rest are fungible.
      const ip = e.addresses[0];
      if (!ip) continue;
      const c = e.conditions ?? {};
      const ready = c.ready ?? true;
      const serving = c.serving ?? ready;
      const terminating = c.terminating ?? false;
      const key = `${ip}|${port.port}`;
      const prev = found.get(key);
      found.set(key, {
        ip, port: port.port,
        ready: ready || (prev?.ready ?? false),
        fallback: (serving && terminating) || (prev?.fallback ?? false),
      });
    }
  }
  const all = [...found.values()];
  const anyReady = all.some((b) => b.ready);
  return all
    .map((b) => ({ ip: b.ip, port: b.port, state: (b.ready || (!anyReady && b.fallback) ? 'ready' : 'terminating') as SliceBackend['state'] }))
    .sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
}
