/**
 * Containers reach a restarted view through its parent directory, which they get with
 * HostToContainer (rslave) propagation: mounts made later under the parent on the host appear in
 * them. That only works if, on the host, the parent directory is on a shared mount. In
 * Kubernetes the DaemonSet's Bidirectional mount of the parent makes it one; on a plain host
 * whose root is private (Docker's `MountFlags=slave`, some distributions, many test machines) the
 * daemon makes it one: it binds the parent onto itself and marks the bind shared. This stays after
 * the daemon stops, on purpose: containers started against this peer group keep receiving the
 * next daemon's view, which a new peer group would not reach.
 */
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import type { Logger } from '../common/log.js';
import type { MountEntry } from './mountinfo.js';
import { readMountinfo } from './mountinfo.js';
import { isCovered } from './repair/view-mounts.js';

export type ParentPropagation =
  | { readonly action: 'none'; readonly mount: string }
  | { readonly action: 'make-shared' }
  | { readonly action: 'bind-and-share' }
  | { readonly action: 'root-not-shared' };

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

/** What it takes for the directory `parent` to be on a shared mount. */
export function parentPropagation(entries: readonly MountEntry[], parent: string): ParentPropagation {
  const holder = mountHolding(entries, parent);
  if (holder?.propagation.some((field) => field.startsWith('shared:'))) {
    return { action: 'none', mount: holder.mountpoint };
  }
  // The host's root is the administrator's to configure, never ours to re-mount.
  if (parent === '/') return { action: 'root-not-shared' };
  return holder?.mountpoint === parent ? { action: 'make-shared' } : { action: 'bind-and-share' };
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
  const plan = parentPropagation(readMountinfo(), parent);
  try {
    switch (plan.action) {
      case 'none':
        log.debug({ parent, mount: plan.mount }, 'the view\'s parent directory is on a shared mount');
        return;
      case 'root-not-shared':
        log.warn(
          { parent },
          'the view\'s parent directory is / and / is not a shared mount: containers will not see a restarted view, so their binds cannot be repaired; put the mountpoint in a directory of its own (e.g. /var/lib/lxcfs-ts/view)',
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
