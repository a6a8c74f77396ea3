import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The webhook's Prometheus metrics, in a registry of its own (tests create as many as they like). */
export class WebhookMetrics {
  readonly registry = new Registry();

  /** One per answered review: outcome mutated|conflict|skipped|invalid|ignored, reason for skips. */
  readonly admissions = new Counter({
    name: 'lxcfs_ts_webhook_admissions_total',
    help: 'AdmissionReviews answered, by outcome and skip reason',
    labelNames: ['outcome', 'reason', 'dry_run'] as const,
    registers: [this.registry],
  });

  /** Requests refused before any review was made (malformed, wrong version, too large, wrong method). */
  readonly rejected = new Counter({
    name: 'lxcfs_ts_webhook_rejected_requests_total',
    help: 'Requests refused with a 4xx status, by HTTP status',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: 'lxcfs_ts_webhook_admission_duration_seconds',
    help: 'Time from the end of the request body to the response being written',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    registers: [this.registry],
  });

  readonly certificateExpiry = new Gauge({
    name: 'lxcfs_ts_webhook_certificate_expiry_timestamp_seconds',
    help: 'notAfter of the serving certificate in use, as a Unix timestamp',
    registers: [this.registry],
  });

  readonly certificateReloads = new Counter({
    name: 'lxcfs_ts_webhook_certificate_reloads_total',
    help: 'Serving certificates loaded without a restart',
    registers: [this.registry],
  });

  readonly caBundleUpdates = new Counter({
    name: 'lxcfs_ts_webhook_ca_bundle_updates_total',
    help: 'Writes of the MutatingWebhookConfiguration (caBundle or whole configuration)',
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: 'lxcfs_ts_webhook_leader',
    help: '1 while this replica holds the Lease that lets it write the certificate Secret and caBundle',
    registers: [this.registry],
  });

  readonly reconcileErrors = new Counter({
    name: 'lxcfs_ts_webhook_reconcile_errors_total',
    help: 'Failed Kubernetes API calls of the certificate, caBundle and Lease loops',
    labelNames: ['loop'] as const,
    registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics)
      collectDefaultMetrics({ register: this.registry, prefix: 'lxcfs_ts_webhook_' });
  }
}
