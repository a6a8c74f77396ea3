/**
 * The figures of one container at one moment that both its files and its sysinfo(2) answer are
 * built from (src/syscall composes the system call's fields from them), so the two always agree.
 */
import { FSHIFT } from '../views/loadavg.js';
import type { MeminfoHeadline } from '../views/meminfo.js';

export interface ContainerFigures {
  readonly memory: MeminfoHeadline;
  /** The uptime the caller's /proc/uptime shows, in seconds. */
  readonly uptimeSec: number;
  /** Load averages in the kernel's fixed point (FIXED_1 = 2048), as /proc/loadavg renders them. */
  readonly avenrun: readonly [number, number, number];
  /** Threads of the container. */
  readonly threads: number;
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
