import type { MemorySnapshot } from '../cgroup/memory.js';

/** Swap as a container sees it, in kB. */
export interface SwapFigures {
  totalKb: number;
  usedKb: number;
}

export const noSwap: SwapFigures = { totalKb: 0, usedKb: 0 };

/**
 * The container's swap (shared by meminfo's SwapTotal/SwapFree and /proc/swaps), LXCFS's rules:
 *  - `-u/--disable-swap`, or a kernel that does not account swap: no swap.
 *  - v2: total = memory.swap.max (minimum over the ancestry), used = memory.swap.current.
 *  - v1: memsw counts RAM+swap. total = the memsw limit (RAM+swap: the most swap the container
 *    can ever hold), used = memsw usage - RAM usage. (LXCFS documents this compromise; we keep
 *    it so SwapTotal agrees with LXCFS.) A memsw limit below the RAM limit means no swap.
 *  - never more than the host's SwapTotal; swappiness 0 (v1) means what is used is all there is.
 */
export function computeSwap(
  mem: MemorySnapshot,
  memTotalKb: number,
  hostSwapTotalKb: number,
  disableSwap: boolean,
): SwapFigures {
  if (disableSwap || Number.isNaN(mem.swapLimit) || Number.isNaN(mem.swapUsage)) return noSwap;
  const hostTotal = Number.isFinite(hostSwapTotalKb) ? hostSwapTotalKb : 0;
  let totalKb: number;
  let usedKb: number;
  if (mem.version === 2) {
    totalKb = Number.isFinite(mem.swapLimit) ? Math.floor(mem.swapLimit / 1024) : hostTotal;
    usedKb = Math.floor(mem.swapUsage / 1024);
  } else {
    const ramLimitKb = Number.isFinite(mem.limit) ? Math.floor(mem.limit / 1024) : memTotalKb;
    if (!Number.isFinite(mem.swapLimit)) {
      totalKb = hostTotal;
    } else {
      const swLimitKb = Math.floor(mem.swapLimit / 1024);
      totalKb = swLimitKb < ramLimitKb ? 0 : swLimitKb;
    }
    usedKb = totalKb === 0 ? 0 : Math.max(0, Math.floor((mem.swapUsage - mem.usage) / 1024));
  }
  totalKb = Math.min(totalKb, hostTotal);
  if (mem.swappiness === 0) totalKb = Math.min(usedKb, hostTotal);
  usedKb = Math.min(usedKb, totalKb);
  return { totalKb, usedKb };
}

const kernelHeader = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';

/**
 * /proc/swaps: the host's header line (the running kernel's), then one line for the container's
 * swap when it has any, laid out as the kernel lays out its own lines (LXCFS uses single tabs,
 * which breaks column alignment).
 */
export function renderSwaps(hostText: string, swap: SwapFigures): string {
  const nl = hostText.indexOf('\n');
  const header = nl > 0 && hostText.startsWith('Filename') ? hostText.slice(0, nl + 1) : kernelHeader;
  if (swap.totalKb <= 0) return header;
  const name = 'none';
  const size = String(swap.totalKb);
  const used = String(swap.usedKb);
  return (
    `${header}${name}${' '.repeat(40 - name.length)}virtual\t` +
    `${size}\t${swap.totalKb < 10000000 ? '\t' : ''}${used}\t${swap.usedKb < 10000000 ? '\t' : ''}0\n`
  );
}
