/**
 * The record a planned stop leaves for the next start: which binds of the view it removed from
 * which containers, so they can be put back. It lives in the view's parent directory, the one
 * place both the stopping and the next agent see on the host (in Kubernetes the agent's own /run
 * goes away with its pod, while the parent directory is the shared hostPath), in a directory only
 * root can read: the parent directory is visible, read-only, inside every container.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface UnboundMount {
  /** Mount namespace of the container (`mnt:[inode]`). */
  readonly namespace: string;
  /** A process of that container, with its start time: together they outlive no container. */
  readonly pid: number;
  readonly startTime: string;
  /** Where the bind was, inside the container. */
  readonly target: string;
  /** The path inside the view it showed (`/proc/meminfo`). */
  readonly root: string;
  /** Mount flags to restore (`ro`...). */
  readonly flags: readonly string[];
}

export interface UnbindRecord {
  readonly version: 1;
  /** A record from before a reboot describes processes that are gone. */
  readonly bootId: string;
  readonly mountpoint: string;
  readonly stoppedAt: string;
  readonly mounts: readonly UnboundMount[];
}

export const RECORD_DIRECTORY = '.lxcfs-ts';

/** `<parent>/.lxcfs-ts/<view name>.unbound.json`: one record per view, several views may share a parent. */
export function recordPath(mountpoint: string): string {
  return join(dirname(mountpoint), RECORD_DIRECTORY, `${basename(mountpoint)}.unbound.json`);
}

export function writeUnbindRecord(mountpoint: string, record: UnbindRecord): string {
  const path = recordPath(mountpoint);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Written whole or not at all: a stop cut short must not leave half a record.
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
  return path;
}

/** The record for this mountpoint, or null if there is none; throws with a reason if it is unusable. */
export function readUnbindRecord(mountpoint: string): UnbindRecord | null {
  let text: string;
  try {
    text = readFileSync(recordPath(mountpoint), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const record = JSON.parse(text) as Partial<UnbindRecord>;
  if (record.version !== 1 || typeof record.bootId !== 'string' || !Array.isArray(record.mounts)) {
    throw new Error('not a record this version understands');
  }
  const valid = record.mounts.every(
    (m) =>
      typeof m.namespace === 'string' &&
      Number.isInteger(m.pid) &&
      typeof m.startTime === 'string' &&
      typeof m.target === 'string' &&
      m.target.startsWith('/') &&
      typeof m.root === 'string' &&
      m.root.startsWith('/') &&
      Array.isArray(m.flags),
  );
  if (!valid) throw new Error('malformed entries');
  return record as UnbindRecord;
}

export function removeUnbindRecord(mountpoint: string): void {
  rmSync(recordPath(mountpoint), { force: true });
}
