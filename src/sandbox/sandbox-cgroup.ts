/**
 * What the rest of `run` needs from the sandbox's cgroup(s), whatever the cgroup version, and the
 * removal steps both versions share. Only directories this module created are ever removed.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.js';
import type { CpuQuota } from './quantities.js';
import { errnoCode, RunError } from './run-error.js';

export interface CgroupLimits {
  readonly memoryBytes?: number;
  /** Memory plus swap, in bytes, or 'unlimited'. */
  readonly memorySwap?: number | 'unlimited';
  readonly cpuQuota?: CpuQuota;
  readonly cpuset?: readonly number[];
}

export interface SandboxCgroup {
  /** The leaf directories, one per hierarchy (v1) or a single one (v2). */
  readonly leaves: readonly string[];
  /** The `cgroup.procs` files a process writes its pid to so that it and its children are confined. */
  readonly procsFiles: readonly string[];
  /** Pids of every process still in the sandbox's cgroup(s). */
  pids(): number[];
  /** Kills whatever is left in the cgroup(s), waits (bounded) until they are empty, and removes them. */
  remove(): Promise<void>;
}

/**
 * The file operations the cgroup code uses. The kernel gives cgroupfs its own rules (mkdir
 * creates the control files, a write to cgroup.subtree_control merges, rmdir works on a directory
 * full of control files); tests substitute a directory tree that follows the same rules.
 */
export interface CgroupFs {
  mkdir(dir: string): void;
  rmdir(dir: string): void;
  exists(path: string): boolean;
  read(file: string): string;
  write(file: string, value: string): void;
}

export const realCgroupFs: CgroupFs = {
  mkdir: (dir) => mkdirSync(dir),
  rmdir: (dir) => rmdirSync(dir),
  exists: (path) => existsSync(path),
  read: (file) => readFileSync(file, 'utf8'),
  write: (file, value) => writeFileSync(file, value),
};

/** The name of the directory every sandbox cgroup is created under, per hierarchy. */
export const sandboxCgroupParent = 'lxcfs-ts';

/** Writes one cgroup control file, turning the kernel's bare errno into a message naming file and value. */
export function writeCgroupFile(fs: CgroupFs, file: string, value: string): void {
  try {
    fs.write(file, value);
  } catch (err) {
    throw new RunError(
      `cannot write '${value}' to ${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

/**
 * mkdir of a sandbox leaf under the shared parent directory, making the parent first when needed.
 * Another sandbox may remove the parent between the two calls when it finishes: the leaf's mkdir
 * then fails with ENOENT and the parent is simply made again. `prepareParent` runs every time the
 * parent may be new (v1 cpuset values, v2 controllers).
 */
export function makeLeaf(fs: CgroupFs, parent: string, leaf: string, prepareParent: () => void): void {
  for (let attempt = 1; ; attempt++) {
    try {
      fs.mkdir(parent);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    prepareParent();
    try {
      fs.mkdir(leaf);
      return;
    } catch (err) {
      if (errnoCode(err) === 'EEXIST')
        throw new RunError(`cgroup ${leaf} already exists; another sandbox uses it`);
      if (errnoCode(err) !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
}

export function readPids(fs: CgroupFs, procsFile: string): number[] {
  try {
    return fs
      .read(procsFile)
      .split('\n')
      .filter((line) => line !== '')
      .map(Number);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** How long removal waits for killed processes to leave their cgroup before giving up. */
const emptyWaitMs = 10_000;

/**
 * Kills every process listed in the given cgroups (they can only be the sandbox's own, since the
 * cgroups are) until none is left, then removes the leaves. `killAll` may use a faster kernel
 * mechanism (v2's cgroup.kill); the pid loop below is the fallback either way.
 */
export async function emptyAndRemove(
  fs: CgroupFs,
  leaves: readonly string[],
  procsFiles: readonly string[],
  log: Logger,
  killAll?: () => void,
): Promise<void> {
  const deadline = Date.now() + emptyWaitMs;
  killAll?.();
  for (;;) {
    const pids = procsFiles.flatMap((file) => readPids(fs, file));
    if (pids.length === 0) break;
    if (Date.now() > deadline) {
      log.warn({ pids, leaves }, 'processes did not leave the sandbox cgroup; leaving it in place');
      return;
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (err) {
        if (errnoCode(err) !== 'ESRCH') throw err;
      }
    }
    await sleep(20);
  }
  for (const leaf of leaves) await removeLeaf(fs, leaf, deadline, log);
}

/** rmdir of a cgroup directory, retried while the kernel still counts an exiting task in it (EBUSY). */
async function removeLeaf(fs: CgroupFs, dir: string, deadline: number, log: Logger): Promise<void> {
  for (;;) {
    try {
      fs.rmdir(dir);
      log.debug({ dir }, 'removed cgroup');
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > deadline) {
        log.warn({ dir, err: String(err) }, 'could not remove the sandbox cgroup');
        return;
      }
    }
    await sleep(20);
  }
}

/**
 * Removes the shared parent directory when no other sandbox uses it any more; while one does,
 * the kernel refuses with EBUSY and the directory stays.
 */
export function removeParentIfUnused(fs: CgroupFs, dir: string, log: Logger): void {
  try {
    fs.rmdir(dir);
    log.debug({ dir }, 'removed the unused sandbox cgroup parent');
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EBUSY' && code !== 'ENOTEMPTY' && code !== 'ENOENT') {
      log.warn({ dir, err: String(err) }, 'could not remove the sandbox cgroup parent');
    }
  }
}
