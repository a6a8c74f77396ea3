/**
 * Mounting and unmounting a FUSE connection without libfuse: open /dev/fuse, hand the descriptor
 * to util-linux `mount -i` as its fd 3, and let the kernel attach it. Root only.
 */
import { spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';

export interface MountRequest {
  /** Descriptor of an open /dev/fuse. */
  fd: number;
  mountpoint: string;
  /** Shown as the mount's source, e.g. `lxcfs`. */
  source: string;
  /** Filesystem subtype: the mount shows as `fuse.<subtype>`. */
  subtype: string;
  /** Extra kernel mount options (e.g. `ro`, `default_permissions`). */
  options: readonly string[];
}

export class MountError extends Error {}

/** Opens /dev/fuse with a message that says what to do when it is missing. */
export function openFuseDevice(path = '/dev/fuse'): number {
  try {
    return openSync(path, 'r+');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV' || code === 'ENXIO') {
      throw new MountError(
        `${path} is missing: load the fuse kernel module (modprobe fuse); inside a container, pass the device (--device /dev/fuse) or run privileged`,
      );
    }
    if (code === 'EACCES' || code === 'EPERM')
      throw new MountError(`cannot open ${path}: permission denied (run as root)`);
    throw new MountError(`cannot open ${path}: ${(err as Error).message}`);
  }
}

/** Attaches the connection to the mountpoint. mount(2) does not wait for INIT, so this returns at once. */
export function mountFuse(req: MountRequest): void {
  const options = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', 'allow_other', ...req.options].join(
    ',',
  );
  // -i: never run a mount.fuse helper; -n: no /etc/mtab bookkeeping.
  const result = spawnSync(
    'mount',
    ['-i', '-n', '-t', `fuse.${req.subtype}`, '-o', options, req.source, req.mountpoint],
    {
      stdio: ['ignore', 'pipe', 'pipe', req.fd],
      encoding: 'utf8',
      timeout: 10_000,
    },
  );
  if (result.error) throw new MountError(`cannot run mount(8): ${result.error.message}`);
  if (result.status !== 0) {
    throw new MountError(
      `mount of ${req.mountpoint} failed: ${(result.stderr || result.stdout).trim() || `exit ${result.status}`}`,
    );
  }
}

/** Detaches a mount. `lazy` detaches now and lets the kernel finish when it is no longer busy. */
export function unmount(mountpoint: string, lazy: boolean): { ok: boolean; message: string } {
  const result = spawnSync('umount', [...(lazy ? ['-l'] : []), mountpoint], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const message = (result.stderr || result.stdout || result.error?.message || '').trim();
  return { ok: result.status === 0, message };
}
