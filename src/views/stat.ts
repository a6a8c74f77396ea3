import { ByteWriter } from './byte-writer.js';
import { aggregateCounters, CounterLayout } from './stat-counters.js';

const writer = new ByteWriter();
const sums = { user: 0, system: 0, idle: 0 };

/** The host's /proc/stat: everything after the `cpu` lines, with the lines we may rewrite located. */
export interface HostStat {
  readonly raw: Buffer;
  /** Offset of the first line that is not a `cpu` line. */
  readonly tailStart: number;
  /** [start, end) of the btime line (end after its newline), or -1. */
  readonly btime: readonly [number, number];
  readonly btimeValue: number;
  readonly procsRunning: readonly [number, number];
  readonly procsBlocked: readonly [number, number];
}

export function parseHostStat(input: string | Buffer): HostStat {
  const raw = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const text = raw.toString('latin1');
  let tailStart = 0;
  while (tailStart < text.length && text.startsWith('cpu', tailStart)) {
    const nl = text.indexOf('\n', tailStart);
    tailStart = nl < 0 ? text.length : nl + 1;
  }
  const line = (key: string): [number, number] => {
    // tailStart is a line start, so a match right after the preceding newline counts too
    const at = text.indexOf(`\n${key}`, Math.max(0, tailStart - 1));
    if (at < 0) return [-1, -1];
    const nl = text.indexOf('\n', at + 1);
    return [at + 1, nl < 0 ? text.length : nl + 1];
  };
  const btime = line('btime ');
  return {
    raw,
    tailStart,
    btime,
    btimeValue: btime[0] < 0 ? Number.NaN : Number(text.slice(btime[0] + 6, btime[1]).trim()),
    procsRunning: line('procs_running '),
    procsBlocked: line('procs_blocked '),
  };
}

export interface StatRenderOptions {
  /** Visible CPU count N: lines cpu0..cpu<N-1> are printed. */
  visibleCount: number;
  /** Added to the host's btime (a time-namespaced caller sees a later boot). */
  btimeShiftSec: number;
  /** The container's runnable / blocked tasks, when the loadavg sampler knows them. */
  procs: { running: number; blocked: number } | null;
}

/** USER_HZ: /proc/stat counts in 1/100 s. */
const usPerTick = 10000;

/**
 * /proc/stat for a container: the aggregate and per-CPU lines from its counters (user, system and
 * idle; nice, iowait, irq, softirq, steal, guest are 0 as the cgroup does not account them), then
 * the host's other lines, with btime shifted for time-namespaced callers and procs_running /
 * procs_blocked taken from the container when known.
 */
export function renderStat(
  host: HostStat,
  counters: Float64Array,
  base: number,
  slots: number,
  opts: StatRenderOptions,
): Buffer {
  const out = writer.reset();
  aggregateCounters(counters, base, slots, sums);
  out.ascii('cpu  ');
  cpuFields(out, sums.user, sums.system, sums.idle);
  const shownBase = base + CounterLayout.header;
  const n = Math.min(opts.visibleCount, slots);
  for (let i = 0; i < n; i++) {
    const at = shownBase + CounterLayout.slotDoubles * i;
    out.ascii('cpu');
    out.uint(i);
    out.byte(0x20);
    cpuFields(out, counters[at]!, counters[at + 1]!, counters[at + 2]!);
  }
  // The rest of the host file, with up to three lines replaced (they appear in file order).
  const edits: [number, number, () => void][] = [];
  if (host.btime[0] >= 0 && opts.btimeShiftSec !== 0 && Number.isFinite(host.btimeValue)) {
    const value = Math.max(0, Math.round(host.btimeValue + opts.btimeShiftSec));
    edits.push([host.btime[0], host.btime[1], () => keyValue(out, 'btime ', value)]);
  }
  if (opts.procs !== null) {
    const { running, blocked } = opts.procs;
    if (host.procsRunning[0] >= 0) {
      edits.push([
        host.procsRunning[0],
        host.procsRunning[1],
        () => keyValue(out, 'procs_running ', running),
      ]);
    }
    if (host.procsBlocked[0] >= 0) {
      edits.push([
        host.procsBlocked[0],
        host.procsBlocked[1],
        () => keyValue(out, 'procs_blocked ', blocked),
      ]);
    }
  }
  edits.sort((a, b) => a[0] - b[0]);
  let pos = host.tailStart;
  for (const [start, end, write] of edits) {
    out.bytes(host.raw, pos, start);
    write();
    pos = end;
  }
  out.bytes(host.raw, pos, host.raw.length);
  return out.toBuffer();
}

function cpuFields(out: ByteWriter, userUs: number, systemUs: number, idleUs: number): void {
  out.uint(userUs / usPerTick);
  out.ascii(' 0 ');
  out.uint(systemUs / usPerTick);
  out.byte(0x20);
  out.uint(idleUs / usPerTick);
  out.ascii(' 0 0 0 0 0 0\n');
}

function keyValue(out: ByteWriter, key: string, value: number): void {
  out.ascii(key);
  out.uint(value);
  out.byte(0x0a);
}
