/**
 * Reading one mount namespace's mount table for what the repair cares about: binds of view files
 * (or directories) that come from a FUSE connection other than the live one, binds of the live
 * view's files, and where the live view itself shows inside the namespace (the path its files can
 * be bound from). Pure: the mount table comes in parsed.
 */
import { posix } from 'node:path';
import type { MountEntry } from '../mountinfo.js';

/** LXCFS and lxcfs-ts both mount as `fuse.lxcfs`: either one's binds can be replaced by ours. */
export const VIEW_FSTYPE = 'fuse.lxcfs';

export interface NamespaceViewMounts {
  /**
   * Mount points of the live view's root inside the namespace (propagated through the view's
   * parent directory), candidates to bind its files from; whether a path really leads there is
   * checked on the path (a mount above may hide it).
   */
  readonly liveViews: readonly string[];
  /** Visible binds from another `fuse.lxcfs` connection (dead ones are what the repair replaces). */
  readonly foreign: readonly MountEntry[];
  /** Visible binds of the live view's files or directories. */
  readonly liveBinds: readonly MountEntry[];
}

/**
 * A mount is visible when nothing is mounted on top of it: a mount stacked on the same mount
 * point has it as its parent. Only visible mounts may be detached by path (`umount -l TARGET`
 * detaches the topmost one).
 */
export function isCovered(entries: readonly MountEntry[], mount: MountEntry): boolean {
  return entries.some((e) => e.parentId === mount.id && e.mountpoint === mount.mountpoint);
}

/**
 * Sorts a namespace's view mounts. Mounts of a view's root (`/`) are views themselves, not binds
 * of view files: the one of the live connection is where the binds come from, other ones (a dead
 * view that propagated in) are left alone.
 */
export function classifyViewMounts(entries: readonly MountEntry[], liveDevice: string): NamespaceViewMounts {
  const liveViews: string[] = [];
  const foreign: MountEntry[] = [];
  const liveBinds: MountEntry[] = [];
  for (const entry of entries) {
    if (entry.fstype !== VIEW_FSTYPE || isCovered(entries, entry)) continue;
    if (entry.root === '/') {
      if (entry.device === liveDevice && !liveViews.includes(entry.mountpoint)) liveViews.push(entry.mountpoint);
      continue;
    }
    if (entry.device === liveDevice) liveBinds.push(entry);
    else foreign.push(entry);
  }
  return { liveViews, foreign, liveBinds };
}

/**
 * Whether a mount table holds binds of view files from another connection than the live one,
 * hidden ones included (unlike classifyViewMounts' `foreign`): the repair reads no more of a
 * namespace without them.
 */
export function hasForeignViewBinds(entries: readonly MountEntry[], liveDevice: string): boolean {
  return entries.some((m) => m.fstype === VIEW_FSTYPE && m.root !== '/' && m.device !== liveDevice);
}

/** The path inside the namespace of the live view's counterpart of a bind with this root. */
export function liveSourceFor(liveView: string, root: string): string {
  return posix.join(liveView, root);
}

/** Per-mount flags a re-bind keeps (read-only above all), as `mount -o` options. */
const keptFlags = ['ro', 'nosuid', 'nodev', 'noexec'];

export function bindFlags(entry: MountEntry): string[] {
  const flags = entry.options.split(',');
  return keptFlags.filter((flag) => flags.includes(flag));
}

/** The topmost mount on a path, if any. */
export function topmostAt(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  return entries.find((e) => e.mountpoint === path && !isCovered(entries, e));
}
