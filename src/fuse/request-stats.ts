/**
 * Request counters and latency histograms kept in shared memory: each request-loop thread
 * writes only its own region (no locks, no contention), and the serving process's main thread
 * sums the regions when metrics are scraped.
 */

/** Upper bounds of the latency buckets, in seconds (the last bucket is +Inf). */
export const LATENCY_BUCKETS_S = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1,
];

const OPS = 64; // opcodes we can see are below 64
const ERRNOS = 128;
const BUCKETS = LATENCY_BUCKETS_S.length + 1;

interface Layout {
  labels: number;
  perRegion: number;
  requests: number; // [op][label]
  errors: number; // [op][errno]
  buckets: number; // [op][bucket]
  sums: number; // [op]
}

function layout(labelCount: number): Layout {
  const requests = 0;
  const errors = requests + OPS * labelCount;
  const buckets = errors + OPS * ERRNOS;
  const sums = buckets + OPS * BUCKETS;
  return { labels: labelCount, perRegion: sums + OPS, requests, errors, buckets, sums };
}

export interface RequestStatsBuffer {
  sab: SharedArrayBuffer;
  regions: number;
  labels: readonly string[];
}

/** `regions` bounds how many threads can ever record (replacements included). */
export function createRequestStatsBuffer(labels: readonly string[], regions = 32): RequestStatsBuffer {
  const l = layout(labels.length);
  return { sab: new SharedArrayBuffer(l.perRegion * regions * 8), regions, labels };
}

/** The writer side, one per thread; `region` is the thread's own slice. */
export class RequestRecorder {
  private readonly cells: Float64Array;
  private readonly l: Layout;

  constructor(buffer: RequestStatsBuffer, region: number) {
    this.l = layout(buffer.labels.length);
    const r = region % buffer.regions;
    this.cells = new Float64Array(buffer.sab, r * this.l.perRegion * 8, this.l.perRegion);
  }

  record(opcode: number, label: number, errno: number, seconds: number): void {
    const op = opcode < OPS ? opcode : 0;
    const c = this.cells;
    const l = this.l;
    c[l.requests + op * l.labels + (label < l.labels ? label : 0)]!++;
    if (errno !== 0) c[l.errors + op * ERRNOS + (errno < ERRNOS ? errno : 0)]!++;
    let b = 0;
    while (b < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[b]!) b++;
    c[l.buckets + op * BUCKETS + b]!++;
    c[l.sums + op] = c[l.sums + op]! + seconds;
  }
}

export interface RequestTotals {
  /** Requests by opcode and label. */
  requests: { opcode: number; label: string; count: number }[];
  /** Errors by opcode and errno. */
  errors: { opcode: number; errno: number; count: number }[];
  /** Per opcode: non-cumulative bucket counts (last is +Inf), and the sum of seconds. */
  latency: { opcode: number; buckets: number[]; sum: number; count: number }[];
}

/** The reader side: sums every region. */
export function readRequestTotals(buffer: RequestStatsBuffer): RequestTotals {
  const l = layout(buffer.labels.length);
  const all = new Float64Array(buffer.sab);
  const sum = (offset: number) => {
    let total = 0;
    for (let r = 0; r < buffer.regions; r++) total += all[r * l.perRegion + offset]!;
    return total;
  };
  const totals: RequestTotals = { requests: [], errors: [], latency: [] };
  for (let op = 0; op < OPS; op++) {
    for (let label = 0; label < l.labels; label++) {
      const count = sum(l.requests + op * l.labels + label);
      if (count > 0) totals.requests.push({ opcode: op, label: buffer.labels[label]!, count });
    }
    for (let errno = 0; errno < ERRNOS; errno++) {
      const count = sum(l.errors + op * ERRNOS + errno);
      if (count > 0) totals.errors.push({ opcode: op, errno, count });
    }
    const buckets = Array.from({ length: BUCKETS }, (_, b) => sum(l.buckets + op * BUCKETS + b));
    const count = buckets.reduce((a, b) => a + b, 0);
    if (count > 0) totals.latency.push({ opcode: op, buckets, sum: sum(l.sums + op), count });
  }
  return totals;
}
