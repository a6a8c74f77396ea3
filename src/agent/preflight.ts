/**
 * Start-up checks that turn the usual ways a start goes wrong into a message saying what to do.
 */
import { mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger } from '../common/log.js';
import { unmount } from '../fuse/mount.js';
import { type MountEntry, mountsAt, readMountinfo } from './mountinfo.js';
import { probeConnectionSync } from './repair/path-probe.js';

export class StartupError extends Error {}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new StartupError(
      'lxcfs-ts must run as root: it mounts a FUSE filesystem and reads every container\'s cgroups (run it with sudo, or as a privileged container)',
    );
  }
}

/** Canonical absolute path of a mountpoint without touching the mountpoint itself (it may be a dead mount). */
export function canonicalMountpoint(path: string): string {
  const absolute = resolve(path);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/**
 * Makes `mountpoint` ready to mount on: creates it if missing, detaches a dead FUSE mount left by
 * a crashed instance, and refuses (without -o nonempty) a directory that has files in it.
 * Returns the live FUSE mount on it, if one serves there (the caller takes over or refuses);
 * the emptiness check does not apply then.
 */
export function prepareMountpoint(mountpoint: string, allowNonEmpty: boolean, log: Logger): MountEntry | null {
  // A crashed instance can leave several dead mounts stacked on one another.
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      const stats = statSync(mountpoint);
      if (!stats.isDirectory()) throw new StartupError(`mountpoint ${mountpoint} is not a directory`);
      break;
    } catch (err) {
      if (err instanceof StartupError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        mkdirSync(mountpoint, { recursive: true, mode: 0o755 });
        log.info({ mountpoint }, 'created the mountpoint');
        continue;
      }
      if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
        const result = unmount(mountpoint, true);
        if (!result.ok) {
          throw new StartupError(
            `${mountpoint} is a dead FUSE mount and detaching it failed: ${result.message}`,
          );
        }
        log.warn(
          { mountpoint },
          'detached a dead FUSE mount left behind by an instance that stopped without unmounting',
        );
        continue;
      }
      throw new StartupError(`cannot use mountpoint ${mountpoint}: ${(err as Error).message}`);
    }
  }
  let top = mountsAt(readMountinfo(), mountpoint).at(-1);
  // stat() above can succeed on a dead FUSE mount for as long as the kernel caches the root's
  // attributes (a restart right after a crash): statfs always asks the daemon, so it tells.
  for (let attempt = 0; attempt < 8 && top?.fstype.startsWith('fuse') && probeConnectionSync(mountpoint) === 'dead'; attempt++) {
    const result = unmount(mountpoint, true);
    if (!result.ok) {
      throw new StartupError(`${mountpoint} is a dead FUSE mount and detaching it failed: ${result.message}`);
    }
    log.warn({ mountpoint }, 'detached a dead FUSE mount left behind by an instance that stopped without unmounting');
    top = mountsAt(readMountinfo(), mountpoint).at(-1);
  }
  if (top?.fstype.startsWith('fuse')) return top;
  if (!allowNonEmpty) {
    const entries = readdirSync(mountpoint);
    if (entries.length > 0) {
      throw new StartupError(
        `${mountpoint} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}): use an empty directory, or pass -o nonempty to mount over it`,
      );
    }
  }
  return null;
}

/** Why a start on a live instance's mountpoint is refused, and what to do instead. */
export function alreadyServedMessage(mountpoint: string, live: MountEntry, why: string): string {
  return `${mountpoint} is already served by a running FUSE filesystem (${live.fstype}, source ${live.source}) and ${why}; stop that instance first (or unmount it: umount -l ${mountpoint}), or pick another mountpoint`;
}

/**
 * A process reads every /proc/PID/cgroup relative to the root of its own cgroup namespace. When
 * the daemon runs in a private one (a container runtime may give one even to a privileged
 * container), cgroups outside it read as `/../..` paths: callers in other containers cannot be
 * resolved and would see the host's values. PID 1's cgroups lie outside exactly in that case
 * (in the host's pid namespace PID 1 is the host's init, at the root of every hierarchy).
 * Returns what to tell the user, or null when PID 1's cgroups are visible.
 */
export function cgroupNamespaceProblem(procRoot: string): string | null {
  let text: string;
  try {
    text = readFileSync(join(procRoot, '1', 'cgroup'), 'utf8');
  } catch {
    return null;
  }
  const outside = text.split('\n').some((line) => /^\d+:[^:]*:\/\.\.(\/|$)/.test(line));
  if (!outside) return null;
  return 'this process is in a private cgroup namespace that does not contain the cgroups of PID 1: ' +
    'other containers\' cgroups cannot be resolved and they see the host\'s values; run it in the ' +
    'host\'s cgroup namespace (LXCFS_TS_CGROUPNS=/proc/1/ns/cgroup, with hostPID, makes the launcher join it)';
}
