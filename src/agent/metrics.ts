/**
 * Prometheus metrics of the serving process. Request counts and latencies are collected by the
 * worker threads in shared memory (fuse/request-stats.ts) and turned into metrics when scraped.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { opcodeNames } from '../fuse/protocol.js';
import { LATENCY_BUCKETS_S, type RequestStatsBuffer, readRequestTotals } from '../fuse/request-stats.js';
import type { PoolStatus } from '../fuse/worker-pool.js';

export interface AgentMetricSources {
  requests: RequestStatsBuffer;
  pool: () => PoolStatus;
  /** Serving processes started before this one on the same connection. */
  serverRestarts: number;
  /** Container repairs by result, counted by the supervisor since it started. */
  repairs: () => Readonly<Record<string, number>>;
}

export class AgentMetrics {
  readonly registry = new Registry();

  constructor(sources: AgentMetricSources) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry, prefix: 'lxcfs_ts_' });
    const op = (code: number) => opcodeNames[code] ?? String(code);

    new Counter({
      name: 'lxcfs_ts_requests_total',
      help: 'FUSE requests answered, by operation and file',
      labelNames: ['op', 'file'],
      registers: [registry],
      collect() {
        this.reset();
        for (const r of readRequestTotals(sources.requests).requests)
          this.inc({ op: op(r.opcode), file: r.label }, r.count);
      },
    });
    new Counter({
      name: 'lxcfs_ts_request_errors_total',
      help: 'FUSE requests answered with an error, by operation and errno',
      labelNames: ['op', 'errno'],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of readRequestTotals(sources.requests).errors)
          this.inc({ op: op(e.opcode), errno: String(e.errno) }, e.count);
      },
    });
    // A histogram assembled from the shared counters, exposed in the exposition format directly.
    registry.registerMetric(new SharedLatencyHistogram(sources.requests, op) as never);
    new Counter({
      name: 'lxcfs_ts_fallbacks_total',
      help: 'Requests answered with host content because they missed their deadline',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sources.pool().rescues);
      },
    });
    new Counter({
      name: 'lxcfs_ts_worker_restarts_total',
      help: 'Request worker threads that died and were replaced',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sources.pool().restarts);
      },
    });
    new Counter({
      name: 'lxcfs_ts_server_restarts_total',
      help: 'Serving processes replaced on this FUSE connection before the current one',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(sources.serverRestarts);
      },
    });
    new Gauge({
      name: 'lxcfs_ts_workers',
      help: 'Request worker threads, by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const s = sources.pool();
        this.set({ state: 'serving' }, s.serving);
        this.set({ state: 'stuck' }, s.stuck);
      },
    });
    new Counter({
      name: 'lxcfs_ts_repairs_total',
      help: 'Binds of the view in containers: repaired (stale, re-bound), restored (after a planned stop), failed, unreachable (the container cannot see the view)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [result, count] of Object.entries(sources.repairs())) this.inc({ result }, count);
      },
    });
  }
}

/** Minimal prom-client metric that renders a histogram from pre-aggregated bucket counts. */
class SharedLatencyHistogram {
  readonly name = 'lxcfs_ts_request_duration_seconds';
  readonly help = 'Time to answer a FUSE request, by operation';
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(
    private readonly stats: RequestStatsBuffer,
    private readonly op: (code: number) => string,
  ) {}

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const l of readRequestTotals(this.stats).latency) {
      const opName = this.op(l.opcode);
      let cumulative = 0;
      l.buckets.forEach((count, i) => {
        cumulative += count;
        const le = i < LATENCY_BUCKETS_S.length ? LATENCY_BUCKETS_S[i]! : '+Inf';
        values.push({ labels: { op: opName, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { op: opName }, value: l.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { op: opName }, value: l.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset() {}
}
