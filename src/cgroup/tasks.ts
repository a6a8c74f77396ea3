import { readdirSync, statSync } from 'node:fs';
import type { CgroupLayout, Controller } from './layout.js';
import type { PreadFiles } from './pread-files.js';

/** Threads of a cgroup subtree by scheduler state. */
export interface TaskCounts {
  /** State R (running or runnable). */
  runnable: number;
  /** State D (uninterruptible sleep; the kernel's load average counts these too). */
  blocked: number;
  threads: number;
  /** Highest host thread id seen. */
  maxTid: number;
}

/** Controllers whose hierarchy lists a container's tasks, in order of preference (cpu: as LXCFS). */
export const taskControllers: readonly Controller[] = ['cpu', 'pids', 'cpuacct', 'memory'];

/**
 * Counts the threads of a cgroup and all its descendants by state, for the load average. Thread
 * ids come from the cgroup's thread list (v1 `tasks`, v2 `cgroup.threads`), one file per cgroup,
 * so no /proc/<pid>/task directory is listed; each thread's state is the third field of
 * /proc/<tid>/stat, read through a persistent fd (pread; an fd left from an exited thread fails
 * and is reopened, so a reused tid is read fresh). Sub-cgroups are listed only when the kernel's
 * link count says the directory has any (kernfs: nlink = 2 + subdirectories).
 */
export class TaskCounter {
  /** Threads whose stat fd is open, and those counted since the last sweep. */
  private readonly openTids = new Set<number>();
  private readonly seen = new Set<number>();
  private tidsScratch: number[] = [];

  constructor(
    private readonly procRoot: string,
    private readonly layout: CgroupLayout,
    private readonly cgroupFiles: PreadFiles,
    private readonly statFiles: PreadFiles,
    private readonly maxDepth = 16,
  ) {}

  /** The cgroup's hierarchy directory for `controller`, or null when not mounted. */
  hierarchyOf(controller: Controller): string | null {
    return this.layout.hierarchy[controller];
  }

  /** Counts for the subtree at `dir`, or null when the cgroup does not exist (any more). */
  count(dir: string): TaskCounts | null {
    const counts: TaskCounts = { runnable: 0, blocked: 0, threads: 0, maxTid: 0 };
    return this.countInto(dir, counts, 0) ? counts : null;
  }

  /**
   * Closes the stat fds of threads not seen since the last call (they exited), so fds do not
   * accumulate. Call once per sampling round, after counting every cgroup.
   */
  sweep(): void {
    for (const tid of this.openTids) {
      if (this.seen.has(tid)) continue;
      this.statFiles.close(this.statPath(tid));
      this.openTids.delete(tid);
    }
    this.seen.clear();
  }

  private countInto(dir: string, counts: TaskCounts, depth: number): boolean {
    const listName = this.layout.version === 1 ? 'tasks' : 'cgroup.threads';
    const n = this.cgroupFiles.read(`${dir}/${listName}`);
    if (n < 0) return false;
    const tids = this.parseTids(this.cgroupFiles.buffer, n);
    for (const tid of tids) {
      counts.threads++;
      if (tid > counts.maxTid) counts.maxTid = tid;
      const state = this.state(tid);
      if (state === 0x52) counts.runnable++;
      else if (state === 0x44) counts.blocked++;
    }
    if (depth >= this.maxDepth) return true;
    let nlink = 2;
    try {
      nlink = statSync(dir).nlink;
    } catch {
      return true;
    }
    if (nlink <= 2) return true;
    let children: string[];
    try {
      children = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch {
      return true;
    }
    for (const child of children) this.countInto(`${dir}/${child}`, counts, depth + 1);
    return true;
  }

  /** The state letter of a thread (R, S, D, ...) as a byte, or 0 when it is gone. */
  private state(tid: number): number {
    const path = this.statPath(tid);
    const n = this.statFiles.read(path);
    if (n < 0) {
      this.openTids.delete(tid);
      return 0;
    }
    this.openTids.add(tid);
    this.seen.add(tid);
    const buf = this.statFiles.buffer;
    // "pid (comm) S ...": comm may contain spaces and parentheses, so take the last ')'.
    const paren = buf.lastIndexOf(0x29, n - 1);
    return paren >= 0 && paren + 2 < n ? buf[paren + 2]! : 0;
  }

  private statPath(tid: number): string {
    return `${this.procRoot}/${tid}/stat`;
  }

  private parseTids(buf: Buffer, len: number): number[] {
    const tids = this.tidsScratch;
    tids.length = 0;
    let v = 0;
    let digits = 0;
    for (let i = 0; i < len; i++) {
      const c = buf[i]!;
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
        digits++;
      } else {
        if (digits > 0) tids.push(v);
        v = 0;
        digits = 0;
      }
    }
    if (digits > 0) tids.push(v);
    // The list is reused by the recursion: hand out a copy.
    return tids.slice();
  }
}
