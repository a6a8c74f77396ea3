/**
 * Containers reach a restarted view through its parent directory, which they get with
 * HostToContainer (rslave) propagation: mounts made later under the parent on the host appear in
 * them. That only works if, on the host, the parent directory is on a shared mount. systemd makes
 * `/` shared, and in Kubernetes the DaemonSet's Bidirectional mount of the parent makes it one.
 * On a host whose root is private (Docker's `MountFlags=slave`, some distributions, many test
 * machines) the daemon makes it one, if the parent is a directory of its own (it holds only the
 * mountpoint): it binds the parent onto itself and marks the bind shared. A shared directory like
 * /var/lib is never re-mounted: changing how mounts propagate under it would change it for
 * everything else kept there (a container runtime's own mounts). The bind stays after the daemon
 * stops, on purpose: containers started against this peer group keep receiving the next
 * daemon's view, which a new peer group would not reach.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../common/log.js';
import type { MountEntry } from './mountinfo.js';
import { readMountinfo } from './mountinfo.js';
import { RECORD_DIRECTORY } from './repair/unbind-record.js';
import { isCovered } from './repair/view-mounts.js';

export type ParentPropagation =
  | { readonly action: 'none'; readonly mount: string }
  | { readonly action: 'make-shared' }
  | { readonly action: 'bind-and-share' }
  | { readonly action: 'root-not-shared' }
  | { readonly action: 'not-dedicated' };

/** The visible mount that holds `path`: the deepest mount point above it. */
export function mountHolding(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const mp = entry.mountpoint;
    const holds = mp === path || mp === '/' || path.startsWith(`${mp}/`);
    if (!holds || isCovered(entries, entry)) continue;
    if (!best || mp.length > best.mountpoint.length) best = entry;
  }
  return best;
}

/**
 * What it takes for the directory `parent` to be on a shared mount. `dedicated`: the directory
 * holds nothing but the view's mountpoint (and the planned-stop record), so it may be re-mounted.
 */
export function parentPropagation(
  entries: readonly MountEntry[],
  parent: string,
  dedicated: boolean,
): ParentPropagation {
  const holder = mountHolding(entries, parent);
  if (holder?.propagation.some((field) => field.startsWith('shared:'))) {
    return { action: 'none', mount: holder.mountpoint };
  }
  // The host's root is the administrator's to configure, never ours to re-mount.
  if (parent === '/') return { action: 'root-not-shared' };
  if (!dedicated) return { action: 'not-dedicated' };
  return holder?.mountpoint === parent ? { action: 'make-shared' } : { action: 'bind-and-share' };
}

/** Whether `parent` holds nothing but the mountpoint and our own state directory. */
function isDedicated(parent: string, mountpoint: string): boolean {
  const allowed = new Set([basename(mountpoint), RECORD_DIRECTORY]);
  return readdirSync(parent).every((name) => allowed.has(name));
}

function mountCommand(argv: string[]): void {
  const result = spawnSync('mount', argv, { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) {
    throw new Error(`mount ${argv.join(' ')}: ${(result.stderr || result.error?.message || '').trim()}`);
  }
}

/**
 * Makes the mountpoint's parent directory a shared mount if it is not on one already.
 * Idempotent; failures are logged (the view works without it, only repairs cannot reach containers).
 */
export function ensureSharedParent(mountpoint: string, log: Logger): void {
  const parent = dirname(mountpoint);
  const plan = parentPropagation(readMountinfo(), parent, isDedicated(parent, mountpoint));
  try {
    switch (plan.action) {
      case 'none':
        log.debug({ parent, mount: plan.mount }, 'the view\'s parent directory is on a shared mount');
        return;
      case 'root-not-shared':
      case 'not-dedicated':
        log.warn(
          { parent },
          `the view's parent directory ${parent} is not on a shared mount, and holds other things than the view (so it is left as it is): containers will not see a restarted view, and their binds cannot be repaired after a restart. Put the mountpoint in a directory of its own (e.g. /var/lib/lxcfs-ts/view), which is then made a shared mount, or make ${parent} one (mount --make-shared)`,
        );
        return;
      case 'bind-and-share':
        // rbind: anything already mounted below the parent stays visible through the new bind.
        mountCommand(['--rbind', parent, parent]);
        mountCommand(['--make-shared', parent]);
        break;
      case 'make-shared':
        mountCommand(['--make-shared', parent]);
        break;
    }
    log.info(
      { parent, action: plan.action },
      'made the view\'s parent directory a shared mount, so containers that have it (rslave) see a restarted view',
    );
  } catch (err) {
    log.warn(
      { parent, err: (err as Error).message },
      'could not make the view\'s parent directory a shared mount: containers will not see a restarted view',
    );
  }
}
