/**
 * The files the view serves, relative to the mountpoint, with the host file each one replaces.
 * The layout is LXCFS's, so existing bind mounts, manifests and remount scripts keep working.
 */
export interface ViewFile {
  /** Path inside the mountpoint, e.g. `proc/meminfo`. */
  readonly path: string;
  /** The host file the view stands in for (relative to procRoot / sysRoot). */
  readonly hostPath: string;
  readonly root: 'proc' | 'sys';
  /** Permission bits, the host file's: world-readable except slabinfo. */
  readonly perm: number;
}

/**
 * The kernel lets only root read /proc/slabinfo (slab cache layout helps heap exploits); the view
 * keeps that, so an unprivileged process in a container cannot read the host's slab caches.
 */
const rootOnly = new Set(['slabinfo']);

export const procViewFiles: readonly ViewFile[] = [
  'cpuinfo',
  'meminfo',
  'stat',
  'uptime',
  'diskstats',
  'swaps',
  'loadavg',
  'slabinfo',
  'pressure/cpu',
  'pressure/memory',
  'pressure/io',
].map((name) => ({
  path: `proc/${name}`,
  hostPath: name,
  root: 'proc' as const,
  perm: rootOnly.has(name) ? 0o400 : 0o444,
}));

/** Files under sys/devices/system/cpu that are computed per caller; everything else there is passed through. */
export const cpuDirViewFiles: readonly ViewFile[] = ['online', 'possible', 'present'].map((name) => ({
  path: `sys/devices/system/cpu/${name}`,
  hostPath: `devices/system/cpu/${name}`,
  root: 'sys' as const,
  perm: 0o444,
}));

export const viewFiles: readonly ViewFile[] = [...procViewFiles, ...cpuDirViewFiles];

export function findViewFile(path: string): ViewFile | undefined {
  return viewFiles.find((f) => f.path === path);
}
