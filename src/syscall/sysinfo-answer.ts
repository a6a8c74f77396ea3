/**
 * What `sysinfo(2)` tells a container, composed from the same figures its files are rendered
 * from at the same moment (the MemTotal/MemFree/Shmem/Buffers/Swap lines of its /proc/meminfo,
 * the uptime of its /proc/uptime, the averages behind its /proc/loadavg), so busybox `free`
 * (sysinfo) and procps `free` (/proc/meminfo) print the same numbers, and so do `os.getloadavg()`
 * and `cat /proc/loadavg`. Pure: figures in, the kernel's fields out.
 */
import type { ContainerFigures } from '../container/container-figures.js';
import { FSHIFT } from '../views/loadavg.js';
import type { SysinfoFields } from './seccomp-abi.js';

/** sysinfo's load averages have 16 fractional bits (SI_LOAD_SHIFT), the kernel's averages 11. */
const SI_LOAD_SHIFT = 16;

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
