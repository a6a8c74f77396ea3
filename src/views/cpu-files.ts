import { formatCpuList } from '../common/cpu-list.js';

/**
 * /sys/devices/system/cpu/{online,possible,present} for a caller who sees N CPUs: all three are
 * `0-(N-1)` (`0` for one CPU), matching cpuinfo, /proc/stat and the cpuN directories. LXCFS
 * writes the raw cpuset string into `online` (e.g. `2,5`) and passes possible/present through,
 * so glibc's get_nprocs_conf(), lscpu and htop see the host's CPUs.
 */
export function renderCpuListFile(visibleCount: number): string {
  const n = Math.max(1, visibleCount);
  return `${formatCpuList(Array.from({ length: n }, (_, i) => i))}\n`;
}
