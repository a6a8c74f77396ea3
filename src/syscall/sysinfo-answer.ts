/**
 * What `sysinfo(2)` tells a container, derived from the very files the view serves the same
 * caller at the same moment (its /proc/meminfo, /proc/uptime, /proc/loadavg), so `free` from
 * busybox (sysinfo) and from procps (/proc/meminfo) print the same numbers, and so do
 * `os.getloadavg()` and `cat /proc/loadavg`. Pure: texts in, fields out.
 */
import type { SysinfoFields } from './seccomp-abi.js';

export interface ViewTexts {
  readonly meminfo: string;
  readonly uptime: string;
  readonly loadavg: string;
  /** The container's thread count, or null to take it from /proc/loadavg's fourth field. */
  readonly threads: number | null;
}

/** sysinfo's load averages are 1/65536 fixed point (SI_LOAD_SHIFT 16). */
const LOAD_SCALE = 65536;

function meminfoBytes(text: string, key: string): number | null {
  const at = text.indexOf(`\n${key}:`);
  const start = at >= 0 ? at + key.length + 2 : text.startsWith(`${key}:`) ? key.length + 1 : -1;
  if (start < 0) return null;
  const end = text.indexOf('\n', start);
  const kb = Number.parseInt(text.slice(start, end < 0 ? undefined : end).trim(), 10);
  return Number.isFinite(kb) ? kb * 1024 : null;
}

/**
 * The fields, or null when a text lacks what they need (then the kernel's own answer is used).
 * The uptime is rounded up, as the kernel rounds any fraction of a second.
 */
export function sysinfoFromViews(texts: ViewTexts): SysinfoFields | null {
  const total = meminfoBytes(texts.meminfo, 'MemTotal');
  const free = meminfoBytes(texts.meminfo, 'MemFree');
  if (total === null || free === null) return null;
  const uptime = Number.parseFloat(texts.uptime);
  if (!Number.isFinite(uptime)) return null;
  const fields = texts.loadavg.trim().split(/\s+/);
  const loads = fields.slice(0, 3).map((f) => Math.round(Number.parseFloat(f) * LOAD_SCALE));
  if (loads.length !== 3 || !loads.every(Number.isFinite)) return null;
  const tasks = /^\d+\/(\d+)$/.exec(fields[3] ?? '');
  const procs = texts.threads ?? (tasks ? Number(tasks[1]) : Number.NaN);
  if (!Number.isFinite(procs)) return null;
  return {
    uptime: Math.ceil(uptime),
    loads: [loads[0]!, loads[1]!, loads[2]!],
    totalram: total,
    freeram: free,
    sharedram: meminfoBytes(texts.meminfo, 'Shmem') ?? 0,
    bufferram: meminfoBytes(texts.meminfo, 'Buffers') ?? 0,
    totalswap: meminfoBytes(texts.meminfo, 'SwapTotal') ?? 0,
    freeswap: meminfoBytes(texts.meminfo, 'SwapFree') ?? 0,
    procs,
  };
}
