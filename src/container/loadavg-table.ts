/**
 * How the load average sampler (src/agent) and the views that render /proc/loadavg (here) agree
 * on one container's entry in the shared table: its key and the meaning of its payload slots.
 */
import type { CgroupLayout, CgroupPaths } from '../cgroup/layout.js';
import { taskControllers } from '../cgroup/tasks.js';

/** Payload of one container's loadavg entry (float64 slots). */
export const LoadSlot = {
  /** The three averages, kernel fixed point (FSHIFT 11). */
  avg1: 0,
  avg5: 1,
  avg15: 2,
  runnable: 3,
  blocked: 4,
  threads: 5,
  maxTid: 6,
  /** Date.now() of the last count; 0 = never counted. */
  sampledAtMs: 7,
  rounds: 8,
} as const;

/**
 * The table key of a container's loadavg entry: the hierarchy its tasks are listed in and its
 * path there (`cpu:/kubepods/...`), or null when no task-listing controller is known.
 */
export function loadavgKey(layout: CgroupLayout, paths: CgroupPaths): string | null {
  for (const c of taskControllers) {
    const path = paths[c];
    if (path !== null && layout.hierarchy[c] !== null) return `${c}:${path}`;
  }
  return null;
}
