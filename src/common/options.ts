/**
 * Options that shape what the view serves. They are plain data so they can cross into worker
 * threads and child processes unchanged (structured clone / JSON).
 */
export interface ViewOptions {
  /** `-l/--enable-loadavg`: serve a per-container /proc/loadavg from the sampler instead of the host file. */
  enableLoadavg: boolean;
  /** `--enable-cfs`: the CPU count N also honours the CFS quota (ceil(quota/period)), not only the cpuset. */
  enableCfs: boolean;
  /** `-u/--disable-swap`: containers see no swap at all. */
  disableSwap: boolean;
  /**
   * `--uptime`: what /proc/uptime (and sysinfo's uptime) shows a container outside a time
   * namespace: `container`, its age (from its PID 1's start); `host`, the host's uptime, as the
   * kernel shows it. In a time namespace both are the kernel's time-namespaced uptime.
   */
  uptime: UptimeMode;
  /** Where the host's procfs is mounted (a fixture directory in tests). */
  procRoot: string;
  /** Where the host's sysfs is mounted (a fixture directory in tests). */
  sysRoot: string;
  /** Where the host's cgroup hierarchies are mounted (v1: one directory per controller; v2: the unified root). */
  cgroupRoot: string;
}

export const uptimeModes = ['container', 'host'] as const;
export type UptimeMode = (typeof uptimeModes)[number];

export const defaultViewOptions: ViewOptions = {
  enableLoadavg: false,
  enableCfs: false,
  disableSwap: false,
  uptime: 'container',
  procRoot: '/proc',
  sysRoot: '/sys',
  cgroupRoot: '/sys/fs/cgroup',
};
