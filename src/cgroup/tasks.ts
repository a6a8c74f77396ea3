import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
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
 * so no /proc/<pid>/task directory is listed. Sub-cgroups are listed only when the kernel's link
 * count says the directory has any (kernfs: nlink = 2 + subdirectories).
 *
 * A thread's state is the third field of its per-thread stat file (/proc/<tid>/task/<tid>/stat:
 * the per-process file would sum the times of every thread of the process, quadratic for
 * many-threaded processes). That file is the costly part (5 µs of kernel time), so it is read
 * only when the thread has been scheduled since the last round: /proc/<tid>/task/<tid>/schedstat
 * (2 µs) gives its CPU time and switch-in count, and a thread that was not switched in cannot have
 * changed state (going to sleep, waking up or stopping all happen while it runs). Kernels without
 * scheduler statistics show zeros there; then the state is always read.
 *
 * Files are read through persistent fds (pread); an fd left from an exited thread fails and is
 * reopened, so a reused thread id is read fresh.
 */
interface ThreadMemo {
  /** Persistent fds on the thread's schedstat and stat files (-1: not open). */
  schedFd: number;
  statFd: number;
  execNs: number;
  switches: number;
  state: number;
}

/** Above this many tracked threads, stat files are opened per read instead of kept open. */
const keepOpenLimit = 8192;

export class TaskCounter {
  /** What each thread looked like at the last round, and those counted since the last sweep. */
  private readonly memo = new Map<number, ThreadMemo>();
  private readonly seen = new Set<number>();
  private readonly sched = new Float64Array(3);
  private readonly buf = Buffer.allocUnsafe(1024);
  private tidsScratch: number[] = [];

  constructor(
    private readonly procRoot: string,
    private readonly layout: CgroupLayout,
    private readonly cgroupFiles: PreadFiles,
    private readonly maxDepth = 16,
  ) {}

  /** Closes every thread fd. */
  close(): void {
    for (const memo of this.memo.values()) closeMemo(memo);
    this.memo.clear();
  }

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
    for (const [tid, memo] of this.memo) {
      if (this.seen.has(tid)) continue;
      closeMemo(memo);
      this.memo.delete(tid);
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
    this.seen.add(tid);
    let memo = this.memo.get(tid);
    if (memo === undefined) {
      memo = { schedFd: -1, statFd: -1, execNs: 0, switches: 0, state: 0 };
      this.memo.set(tid, memo);
    }
    const scheduled = this.readSchedstat(tid, memo);
    if (
      scheduled === 1 &&
      memo.execNs > 0 &&
      this.sched[0] === memo.execNs &&
      this.sched[2] === memo.switches
    ) {
      return memo.state;
    }
    const n = this.pread(tid, memo, 'stat');
    if (n < 0) {
      closeMemo(memo);
      this.memo.delete(tid);
      return 0;
    }
    if (this.memo.size > keepOpenLimit) {
      closeQuietly(memo.statFd);
      memo.statFd = -1;
    }
    const buf = this.buf;
    // "tid (comm) S ...": comm may contain spaces and parentheses, so take the last ')'.
    const paren = buf.lastIndexOf(0x29, n - 1);
    memo.state = paren >= 0 && paren + 2 < n ? buf[paren + 2]! : 0;
    memo.execNs = scheduled === 1 ? this.sched[0]! : 0;
    memo.switches = scheduled === 1 ? this.sched[2]! : 0;
    return memo.state;
  }

  /** schedstat (`<cpu time ns> <run-queue wait ns> <switch-ins>`) into this.sched: 1 if read, 0 if not. */
  private readSchedstat(tid: number, memo: ThreadMemo): number {
    const n = this.pread(tid, memo, 'schedstat');
    if (n < 0) return 0;
    const buf = this.buf;
    let field = 0;
    let v = 0;
    for (let i = 0; i < n && field < 3; i++) {
      const c = buf[i]!;
      if (c >= 0x30 && c <= 0x39) {
        v = v * 10 + (c - 0x30);
      } else {
        this.sched[field++] = v;
        v = 0;
      }
    }
    return field === 3 ? 1 : 0;
  }

  /**
   * Reads one of the thread's files through its persistent fd into this.buf. A failing fd (the
   * thread exited; its id may belong to a new thread now) is reopened once.
   */
  private pread(tid: number, memo: ThreadMemo, name: 'stat' | 'schedstat'): number {
    const key = name === 'stat' ? 'statFd' : 'schedFd';
    for (let attempt = 0; attempt < 2; attempt++) {
      if (memo[key] < 0) {
        try {
          memo[key] = openSync(`${this.procRoot}/${tid}/task/${tid}/${name}`, 'r');
        } catch {
          return -1;
        }
      }
      try {
        return readSync(memo[key], this.buf, 0, this.buf.length, 0);
      } catch {
        closeQuietly(memo[key]);
        memo[key] = -1;
        // a new thread with this id must not inherit the old one's memo
        memo.execNs = 0;
      }
    }
    return -1;
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

function closeMemo(memo: ThreadMemo): void {
  closeQuietly(memo.schedFd);
  closeQuietly(memo.statFd);
  memo.schedFd = memo.statFd = -1;
}

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    // nothing to release
  }
}
