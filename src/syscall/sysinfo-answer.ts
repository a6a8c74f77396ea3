/**
 * What `sysinfo(2)` tells a container, composed from the same figures its files are rendered
 * from at the same moment (the MemTotal/MemFree/Shmem/Buffers/Swap lines of its /proc/meminfo,
 * the uptime of its /proc/uptime, the averages behind its /proc/loadavg), so busybox `free`
 * (sysinfo) and procps `free` (/proc/meminfo) print the same numbers, and so do `os.getloadavg()`
 * and `cat /proc/loadavg`. Pure: figures in, the kernel's fields out.
 */
import type { MeminfoHeadline } from '../views/meminfo.js';
import { FSHIFT } from '../views/loadavg.js';
import type { SysinfoFields } from './seccomp-abi.js';

/** sysinfo's load averages have 16 fractional bits (SI_LOAD_SHIFT), the kernel's averages 11. */
const SI_LOAD_SHIFT = 16;

export interface ContainerFigures {
  readonly memory: MeminfoHeadline;
  /** The uptime the caller's /proc/uptime shows, in seconds. */
  readonly uptimeSec: number;
  /** Load averages in the kernel's fixed point (FIXED_1 = 2048), as /proc/loadavg renders them. */
  readonly avenrun: readonly [number, number, number];
  /** Threads of the container. */
  readonly threads: number;
}

export function composeSysinfo(figures: ContainerFigures): SysinfoFields {
  const kb = (value: number) => value * 1024;
  const load = (avenrun: number) => Math.max(0, Math.floor(avenrun)) * 2 ** (SI_LOAD_SHIFT - FSHIFT);
  const m = figures.memory;
  return {
    // The kernel rounds a partial second up.
    uptime: Math.ceil(figures.uptimeSec),
    loads: [load(figures.avenrun[0]), load(figures.avenrun[1]), load(figures.avenrun[2])],
    totalram: kb(m.totalKb),
    freeram: kb(m.freeKb),
    sharedram: kb(m.sharedKb),
    bufferram: kb(m.buffersKb),
    totalswap: kb(m.swapTotalKb),
    freeswap: kb(m.swapFreeKb),
    procs: figures.threads,
  };
}

/**
 * The host's /proc/loadavg averages back in fixed point, for containers served the host's file
 * (no `-l`): the kernel's own sysinfo would carry more digits, but then the two would disagree.
 */
export function avenrunFromLoadavg(text: string): [number, number, number] | null {
  const fields = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (fields.length !== 3 || !fields.every(Number.isFinite)) return null;
  const fixed = (x: number) => Math.round(x * (1 << FSHIFT));
  return [fixed(fields[0]!), fixed(fields[1]!), fixed(fields[2]!)];
}
