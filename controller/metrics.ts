/**
 * The controller's Prometheus metrics, on a registry of their own (no globals: tests
 * build as many controllers as they like). Names are stable and listed in README.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly poolAddresses = new Gauge({ name: 'beacon_controller_pool_addresses', help: 'Usable addresses per pool and family', labelNames: ['pool', 'family'], registers: [this.registry] });
  readonly poolAddressesInUse = new Gauge({ name: 'beacon_controller_pool_addresses_in_use', help: 'Addresses assigned per pool and family', labelNames: ['pool', 'family'], registers: [this.registry] });
  readonly configLoaded = new Gauge({ name: 'beacon_controller_config_loaded', help: '1 once a valid configuration is in use', registers: [this.registry] });
  readonly configStale = new Gauge({ name: 'beacon_controller_config_stale', help: '1 while the newest configuration is invalid and the last valid one runs', registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'beacon_controller_queue_depth', help: 'Services waiting for a reconcile', registers: [this.registry] });
  readonly reconcileDuration = new Histogram({ name: 'beacon_controller_reconcile_duration_seconds', help: 'Time to reconcile one Service, API writes included', labelNames: ['result'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  readonly allocationFailures = new Counter({ name: 'beacon_controller_allocation_failures_total', help: 'Allocation failures by reason', labelNames: ['reason'], registers: [this.registry] });
  readonly apiErrors = new Counter({ name: 'beacon_controller_api_errors_total', help: 'Failed API server calls by operation', labelNames: ['operation'], registers: [this.registry] });
  readonly leader = new Gauge({ name: 'beacon_controller_leader', help: '1 while this replica holds the Lease', registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'beacon_controller_' });
  }
}
