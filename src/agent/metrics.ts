/**
 * Prometheus metrics of the serving process, rendered in the text exposition format. Request
 * counts and latencies are collected by the worker threads in shared memory
 * (fuse/request-stats.ts) and summed when scraped. Written by hand rather than with a metrics
 * library: the library alone would grow this long-lived process by about 5 MiB.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { opcodeNames } from '../fuse/protocol.js';
import { LATENCY_BUCKETS_S, type RequestStatsBuffer, readRequestTotals } from '../fuse/request-stats.js';
import type { PoolStatus } from '../fuse/worker-pool.js';
import type { SyscallTotals } from '../syscall/syscall-stats.js';

export interface AgentMetricSources {
  requests: RequestStatsBuffer;
  pool: () => PoolStatus;
  /** Serving processes started before this one on the same connection. */
  serverRestarts: number;
  /** Container repairs by result, counted by the supervisor (which runs them) since it started. */
  repairs: () => Readonly<Record<string, number>>;
  /** The syscall view's counters, when it is on. */
  syscalls?: () => SyscallTotals;
}

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function sample(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${value}`;
}

function family(name: string, type: string, help: string, lines: string[]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines].join('\n');
}

export class AgentMetrics {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  constructor(private readonly sources: AgentMetricSources) {}

  render(): string {
    const totals = readRequestTotals(this.sources.requests);
    const pool = this.sources.pool();
    const op = (code: number) => opcodeNames[code] ?? String(code);
    const latency: string[] = [];
    for (const l of totals.latency) {
      let cumulative = 0;
      l.buckets.forEach((count, i) => {
        cumulative += count;
        const le = i < LATENCY_BUCKETS_S.length ? String(LATENCY_BUCKETS_S[i]) : '+Inf';
        latency.push(sample('lxcfs_ts_request_duration_seconds_bucket', { op: op(l.opcode), le }, cumulative));
      });
      latency.push(sample('lxcfs_ts_request_duration_seconds_sum', { op: op(l.opcode) }, l.sum));
      latency.push(sample('lxcfs_ts_request_duration_seconds_count', { op: op(l.opcode) }, l.count));
    }
    const cpu = process.cpuUsage();
    const sys = this.sources.syscalls?.();
    const families = [
      family('lxcfs_ts_requests_total', 'counter', 'FUSE requests answered, by operation and file',
        totals.requests.map((r) => sample('lxcfs_ts_requests_total', { op: op(r.opcode), file: r.label }, r.count))),
      family('lxcfs_ts_request_errors_total', 'counter', 'FUSE requests answered with an error, by operation and errno',
        totals.errors.map((e) => sample('lxcfs_ts_request_errors_total', { op: op(e.opcode), errno: String(e.errno) }, e.count))),
      family('lxcfs_ts_request_duration_seconds', 'histogram', 'Time to answer a FUSE request, by operation', latency),
      family('lxcfs_ts_fallbacks_total', 'counter', 'Requests answered with host content because they missed their deadline',
        [sample('lxcfs_ts_fallbacks_total', {}, pool.rescues)]),
      family('lxcfs_ts_worker_restarts_total', 'counter', 'Request worker threads that died and were replaced',
        [sample('lxcfs_ts_worker_restarts_total', {}, pool.restarts)]),
      family('lxcfs_ts_server_restarts_total', 'counter', 'Serving processes replaced on this FUSE connection before the current one',
        [sample('lxcfs_ts_server_restarts_total', {}, this.sources.serverRestarts)]),
      family('lxcfs_ts_workers', 'gauge', 'Request worker threads, by state', [
        sample('lxcfs_ts_workers', { state: 'serving' }, pool.serving),
        sample('lxcfs_ts_workers', { state: 'stuck' }, pool.stuck),
      ]),
      family('lxcfs_ts_repairs_total', 'counter',
        'Binds of the view in containers: repaired (stale, re-bound), restored (after a planned stop), failed, unreachable (the container cannot see the view)',
        Object.entries(this.sources.repairs()).map(([result, count]) => sample('lxcfs_ts_repairs_total', { result }, count))),
      ...(sys ? syscallFamilies(sys) : []),
      family('lxcfs_ts_process_resident_memory_bytes', 'gauge', 'Resident memory of the serving process',
        [sample('lxcfs_ts_process_resident_memory_bytes', {}, residentBytes())]),
      family('lxcfs_ts_process_open_fds', 'gauge', 'Open file descriptors of the serving process',
        [sample('lxcfs_ts_process_open_fds', {}, openFds())]),
      family('lxcfs_ts_process_cpu_seconds_total', 'counter', 'CPU time of the serving process (all threads)',
        [sample('lxcfs_ts_process_cpu_seconds_total', {}, (cpu.user + cpu.system) / 1e6)]),
    ];
    return `${families.join('\n')}\n`;
  }
}

function syscallFamilies(sys: SyscallTotals): string[] {
  return [
    family('lxcfs_ts_sysinfo_calls_total', 'counter',
      'sysinfo(2) calls of containers: answered from the view, continued (the kernel answered), faulted (EFAULT), recovered (left open by a killed serving process)',
      [
        sample('lxcfs_ts_sysinfo_calls_total', { result: 'answered' }, sys.answered - sys.continued - sys.faulted),
        sample('lxcfs_ts_sysinfo_calls_total', { result: 'continued' }, sys.continued),
        sample('lxcfs_ts_sysinfo_calls_total', { result: 'faulted' }, sys.faulted),
        sample('lxcfs_ts_sysinfo_calls_total', { result: 'recovered' }, sys.recovered),
      ]),
    family('lxcfs_ts_sysinfo_answer_seconds_total', 'counter', 'Time spent answering sysinfo(2) notifications',
      [sample('lxcfs_ts_sysinfo_answer_seconds_total', {}, sys.seconds)]),
    family('lxcfs_ts_sysinfo_listeners', 'gauge', 'Seccomp listeners served (one per container start or exec)',
      [sample('lxcfs_ts_sysinfo_listeners', {}, sys.listeners)]),
  ];
}

function residentBytes(): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}
