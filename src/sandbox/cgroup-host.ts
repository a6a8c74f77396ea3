/**
 * Which cgroup layout the host has, read from a mount table: v1 (one hierarchy per controller
 * or group of controllers, possibly next to an empty cgroup2 mount, as systemd's "hybrid" mode
 * does) or v2 (one unified hierarchy whose root lists the controllers). The sandbox uses v1 when
 * any v1 controller hierarchy is mounted, because then the controllers live there and not in v2.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCpuList } from './quantities.js';
import { RunError } from './run-error.js';

export type CgroupHost =
  | { readonly version: 1; readonly hierarchies: ReadonlyMap<string, string> }
  | { readonly version: 2; readonly root: string };

/** v1 controllers a sandbox gets a cgroup in (when the host mounts them), so every view has per-container data. */
export const v1Controllers = ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids'] as const;

/** Undoes the octal escapes mountinfo uses for spaces, tabs, newlines and backslashes in paths. */
export function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export interface MountEntry {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: readonly string[];
  /** Optional fields such as `shared:12` or `master:3`. */
  readonly optionalFields: readonly string[];
}

/** Parses `/proc/<pid>/mountinfo` text (see proc(5)). Lines that do not parse are skipped. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    entries.push({
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      optionalFields: fields.slice(6, dash),
      fsType: fields[dash + 1]!,
      superOptions: fields[dash + 3]!.split(','),
    });
  }
  return entries;
}

/**
 * Finds the host's cgroup layout in a mount table. Only mounts of a hierarchy's root count (a bind
 * of a sub-cgroup, as a container sees, is not a place to create sibling cgroups).
 */
export function detectCgroupHost(mounts: readonly MountEntry[]): CgroupHost {
  const hierarchies = new Map<string, string>();
  let unified: string | undefined;
  for (const m of mounts) {
    if (m.root !== '/') continue;
    if (m.fsType === 'cgroup') {
      for (const option of m.superOptions) {
        if ((v1Controllers as readonly string[]).includes(option) && !hierarchies.has(option)) {
          hierarchies.set(option, m.mountPoint);
        }
      }
    } else if (m.fsType === 'cgroup2' && unified === undefined) {
      unified = m.mountPoint;
    }
  }
  if (hierarchies.size > 0) return { version: 1, hierarchies };
  if (unified !== undefined) return { version: 2, root: unified };
  throw new RunError(
    'no cgroup hierarchy is mounted: mount cgroup2 on /sys/fs/cgroup (or the v1 controllers)',
  );
}

export function readCgroupHost(mountinfoPath = '/proc/self/mountinfo'): CgroupHost {
  return detectCgroupHost(parseMountinfo(readFileSync(mountinfoPath, 'utf8')));
}

/** The host CPUs a new top-level cgroup may use: the root cpuset, or every online CPU without one. */
export function hostCpus(host: CgroupHost, sysRoot = '/sys'): number[] {
  const candidates =
    host.version === 1
      ? host.hierarchies.has('cpuset')
        ? [join(host.hierarchies.get('cpuset')!, 'cpuset.cpus')]
        : []
      : [join(host.root, 'cpuset.cpus.effective')];
  candidates.push(join(sysRoot, 'devices/system/cpu/online'));
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8').trim();
    if (text !== '') return parseCpuList(text);
  }
  throw new RunError(`cannot tell which CPUs this host has: none of ${candidates.join(', ')} is readable`);
}
