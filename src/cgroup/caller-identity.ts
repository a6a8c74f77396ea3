import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../common/log.js';
import { type CgroupPaths, controllers, isSameOrBelow, parseProcCgroup } from './layout.js';

/** What a caller is, as far as the views care. */
export interface CallerContext {
  /** Per controller, the cgroup whose files describe what this caller sees (null: not resolvable). */
  readonly paths: CgroupPaths;
  /** True when the caller shares our (the host's) pid namespace. */
  readonly hostPidNs: boolean;
  /** Host pid of PID 1 of the caller's pid namespace; 0 for host callers or when it was not found. */
  readonly initPid: number;
  /** How many pid namespaces the caller sits below ours: its index in an `NSpid:` line. */
  readonly pidNsLevel: number;
  /** The caller's thread id in our (the host's) pid namespace. */
  readonly tid: number;
  /** CLOCK_BOOTTIME offset of the caller's time namespace, in seconds (0 outside one). */
  readonly boottimeOffset: number;
  /**
   * When that PID 1 started: clock ticks after boot, as our /proc/<pid>/stat reports it (the
   * container's start); NaN for host callers or when it could not be read.
   */
  readonly initStartTicks: number;
}

interface CallerEntry {
  aliveFd: number;
  resolvedAt: number;
  context: CallerContext;
  /** Inputs kept so a refresh re-reads only what can change. */
  pidNs: string;
  initEntry: InitEntry | null;
}

interface InitEntry {
  pid: number;
  /** Length of its NSpid line: how many pid namespaces deep it is, counting ours. */
  depth: number;
  aliveFd: number;
  paths: CgroupPaths;
  pathsAt: number;
  /** Its start time in clock ticks after boot (NaN if unreadable); fixed for the process's life. */
  startTicks: number;
}

export interface CallerResolverOptions {
  /** How long a resolution is trusted before the caller's cgroup is re-read (ms). */
  refreshMs: number;
  /** At most this many callers are remembered (each holds one fd). */
  maxCallers: number;
}

const defaultOptions: CallerResolverOptions = { refreshMs: 1000, maxCallers: 1024 };

/** After a namespace's PID 1 could not be found, look again only after this long (ms). */
const initMissRetryMs = 10_000;

/**
 * Maps a caller's thread id (host pid namespace, from the FUSE request header) to the cgroups
 * whose files describe its container:
 *  - a caller in our own pid namespace (host processes, hostPID pods) uses its own cgroups;
 *  - a caller in another pid namespace uses the cgroup of that namespace's PID 1 (the container's
 *    init) when its own cgroup is that cgroup or below it (sub-cgroups the container created);
 *  - otherwise (its cgroup is not under the init's, e.g. shareProcessNamespace pods whose PID 1 is
 *    the pause container in a sibling cgroup) it uses its own cgroups.
 *
 * Pid reuse: every remembered caller and init holds an open fd on a tiny file of its
 * /proc/<pid> directory. Such an fd stays bound to the process it was opened for: once that
 * process is gone, reading it fails with ESRCH even if the number now belongs to another process.
 * Each lookup reads that fd (about 1 µs) before trusting anything remembered.
 */
export class CallerResolver {
  private readonly callers = new Map<number, CallerEntry>();
  private readonly inits = new Map<string, InitEntry>();
  /** Namespaces whose PID 1 was searched for and not found, with when (a full scan is costly). */
  private readonly initMisses = new Map<string, number>();
  private readonly options: CallerResolverOptions;
  private readonly probe = Buffer.allocUnsafe(64);
  private ownPidNs: string | null | undefined;
  private ownTimeNs: string | null | undefined;

  constructor(
    private readonly procRoot: string,
    private readonly cgroupVersion: 1 | 2,
    private readonly log: Logger,
    options: Partial<CallerResolverOptions> = {},
  ) {
    this.options = { ...defaultOptions, ...options };
  }

  /** The caller's context, or null when it cannot be resolved (pid 0, exited, unreadable). */
  resolve(tid: number): CallerContext | null {
    if (!(tid > 0)) return null;
    const now = performance.now();
    const entry = this.callers.get(tid);
    if (entry !== undefined) {
      if (!this.alive(entry.aliveFd)) {
        this.forget(tid, entry);
      } else if (now - entry.resolvedAt < this.options.refreshMs) {
        return entry.context;
      } else {
        return this.refresh(tid, entry, now);
      }
    }
    return this.resolveNew(tid, now);
  }

  /** Drops every remembered caller and init (closing their fds). */
  clear(): void {
    for (const [tid, entry] of this.callers) this.forget(tid, entry);
    for (const [ns, init] of this.inits) this.forgetInit(ns, init);
  }

  get size(): number {
    return this.callers.size;
  }

  private resolveNew(tid: number, now: number): CallerContext | null {
    // Open the liveness fd first: every later read by path is then checked against it.
    const aliveFd = this.openAlive(tid);
    if (aliveFd < 0) return null;
    const ownCgroup = this.readCgroup(tid);
    const pidNs = this.readNs(tid, 'pid');
    if (ownCgroup === null || pidNs === null) {
      closeQuietly(aliveFd);
      return null;
    }
    const hostPidNs = pidNs === this.ownNs('pid');
    let initEntry: InitEntry | null = null;
    let level = 0;
    if (!hostPidNs) {
      // A namespace already known needs no /proc/<tid>/status read (the costliest step here):
      // the caller sits at the depth of that namespace's init.
      initEntry = this.knownInit(pidNs);
      if (initEntry === null) {
        const nspid = this.readNsPid(tid);
        level = nspid === null ? 0 : nspid.length - 1;
        initEntry = this.findInit(tid, pidNs, nspid, now);
      } else {
        level = initEntry.depth - 1;
      }
    }
    const boottimeOffset = this.readBoottimeOffset(tid, initEntry);
    if (!this.alive(aliveFd)) {
      // It exited while we looked: what we read may already belong to a successor.
      closeQuietly(aliveFd);
      return null;
    }
    const context: CallerContext = {
      paths: initEntry ? containerPaths(ownCgroup, initEntry.paths) : ownCgroup,
      hostPidNs,
      initPid: initEntry?.pid ?? 0,
      pidNsLevel: level,
      tid,
      boottimeOffset,
      initStartTicks: initEntry?.startTicks ?? Number.NaN,
    };
    if (this.callers.size >= this.options.maxCallers) this.evictOldest();
    this.callers.set(tid, { aliveFd, resolvedAt: now, context, pidNs, initEntry });
    return context;
  }

  /** Re-reads what may change during a process's life: its cgroup (it can be moved) and its init's. */
  private refresh(tid: number, entry: CallerEntry, now: number): CallerContext | null {
    const ownCgroup = this.readCgroup(tid);
    if (ownCgroup === null || !this.alive(entry.aliveFd)) {
      this.forget(tid, entry);
      return null;
    }
    let init = entry.initEntry;
    if (init !== null && !this.alive(init.aliveFd)) {
      this.forgetInit(entry.pidNs, init);
      init = null;
    }
    if (init === null && !entry.context.hostPidNs) {
      init = this.findInit(tid, entry.pidNs, this.readNsPid(tid), now);
    }
    if (init !== null && now - init.pathsAt >= this.options.refreshMs) {
      const paths = this.readCgroup(init.pid);
      if (paths !== null && this.alive(init.aliveFd)) {
        init.paths = paths;
        init.pathsAt = now;
      }
    }
    const context: CallerContext = {
      ...entry.context,
      paths: init ? containerPaths(ownCgroup, init.paths) : ownCgroup,
      initPid: init?.pid ?? 0,
      boottimeOffset: this.readBoottimeOffset(tid, init),
      initStartTicks: init?.startTicks ?? Number.NaN,
    };
    entry.context = context;
    entry.initEntry = init;
    entry.resolvedAt = now;
    return context;
  }

  /**
   * PID 1 of the namespace `pidNs`. First the caller's ancestors (the usual case: the container's
   * processes descend from its init), then every process (callers that entered with setns, like
   * `kubectl exec`, have parents outside the namespace). Remembered per namespace.
   */
  private findInit(tid: number, pidNs: string, nspid: number[] | null, now: number): InitEntry | null {
    const known = this.knownInit(pidNs);
    if (known !== null) return known;
    const missedAt = this.initMisses.get(pidNs);
    if (missedAt !== undefined && now - missedAt < initMissRetryMs) return null;
    const depth = nspid?.length ?? 0;
    let pid = this.isInitOf(tid, depth) ? tid : 0;
    for (let p = this.readPpid(tid), steps = 0; pid === 0 && p > 1 && steps < 64; steps++) {
      const status = this.readStatus(p);
      if (status === null || status.nspid.length < depth) break;
      if (status.nspid.length === depth && status.nspid[depth - 1] === 1 && this.readNs(p, 'pid') === pidNs)
        pid = p;
      p = status.ppid;
    }
    if (pid === 0) pid = this.scanForInit(pidNs, depth);
    if (pid === 0) {
      if (this.initMisses.size > 1024) this.initMisses.clear();
      this.initMisses.set(pidNs, now);
      this.log.debug({ tid, pidNs }, 'no PID 1 found for the caller pid namespace; using its own cgroups');
      return null;
    }
    const aliveFd = this.openAlive(pid);
    if (aliveFd < 0) return null;
    const paths = this.readCgroup(pid);
    const startTicks = this.readStartTicks(pid);
    if (paths === null || !this.alive(aliveFd) || this.readNs(pid, 'pid') !== pidNs) {
      closeQuietly(aliveFd);
      return null;
    }
    const entry: InitEntry = { pid, depth, aliveFd, paths, pathsAt: now, startTicks };
    this.inits.set(pidNs, entry);
    return entry;
  }

  /** The remembered init of `pidNs` if it is still alive. */
  private knownInit(pidNs: string): InitEntry | null {
    const known = this.inits.get(pidNs);
    if (known === undefined) return null;
    if (this.alive(known.aliveFd)) return known;
    this.forgetInit(pidNs, known);
    return null;
  }

  private isInitOf(pid: number, depth: number): boolean {
    const status = this.readStatus(pid);
    return status !== null && status.nspid.length === depth && status.nspid[depth - 1] === 1;
  }

  private scanForInit(pidNs: string, depth: number): number {
    let names: string[];
    try {
      names = readdirSync(this.procRoot);
    } catch {
      return 0;
    }
    const pids = names
      .map((n) => (n.charCodeAt(0) >= 0x30 && n.charCodeAt(0) <= 0x39 ? Number(n) : 0))
      .filter((p) => p > 0)
      .sort((a, b) => a - b);
    for (const p of pids) {
      if (this.readNs(p, 'pid') === pidNs && this.isInitOf(p, depth)) return p;
    }
    return 0;
  }

  /**
   * The boottime offset the kernel applies for this caller: its time namespace's, when the caller
   * lives in one (the namespace it is in, not the one for its future children).
   */
  private readBoottimeOffset(tid: number, init: InitEntry | null): number {
    const timeNs = this.readNs(tid, 'time');
    if (timeNs === null || timeNs === this.ownNs('time')) return 0;
    let source = tid;
    if (this.readNs(tid, 'time_for_children') !== timeNs) {
      // The caller unshared a time namespace for its children: its offsets file describes that
      // one. Its init (same namespace) usually can tell.
      if (init === null || this.readNs(init.pid, 'time') !== timeNs) return 0;
      source = init.pid;
    }
    try {
      const text = readFileSync(`${this.procRoot}/${source}/timens_offsets`, 'latin1');
      const match = /^boottime\s+(-?\d+)\s+(\d+)/m.exec(text);
      return match ? Number(match[1]) + Number(match[2]) / 1e9 : 0;
    } catch {
      return 0;
    }
  }

  private ownNs(kind: 'pid' | 'time'): string | null {
    if (kind === 'pid') {
      if (this.ownPidNs === undefined) this.ownPidNs = this.readNsOf('self', 'pid');
      return this.ownPidNs;
    }
    if (this.ownTimeNs === undefined) this.ownTimeNs = this.readNsOf('self', 'time');
    return this.ownTimeNs;
  }

  private readNs(pid: number, kind: string): string | null {
    return this.readNsOf(String(pid), kind);
  }

  private readNsOf(pid: string, kind: string): string | null {
    try {
      return readlinkSync(`${this.procRoot}/${pid}/ns/${kind}`);
    } catch {
      return null;
    }
  }

  private readCgroup(pid: number): CgroupPaths | null {
    try {
      return parseProcCgroup(readFileSync(`${this.procRoot}/${pid}/cgroup`, 'latin1'), this.cgroupVersion);
    } catch {
      return null;
    }
  }

  /** Field 22 of /proc/<pid>/stat (starttime); the fields are counted after the name, which may hold spaces or ')'. */
  private readStartTicks(pid: number): number {
    try {
      const stat = readFileSync(`${this.procRoot}/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[19]);
      return Number.isFinite(ticks) && fields[19] !== '' ? ticks : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }

  private readStatus(pid: number): { ppid: number; nspid: number[] } | null {
    try {
      return parseStatus(readFileSync(`${this.procRoot}/${pid}/status`, 'latin1'));
    } catch {
      return null;
    }
  }

  private readNsPid(pid: number): number[] | null {
    return this.readStatus(pid)?.nspid ?? null;
  }

  private readPpid(pid: number): number {
    return this.readStatus(pid)?.ppid ?? 0;
  }

  private openAlive(pid: number): number {
    try {
      return openSync(`${this.procRoot}/${pid}/oom_score_adj`, 'r');
    } catch {
      return -1;
    }
  }

  private alive(fd: number): boolean {
    try {
      readSync(fd, this.probe, 0, this.probe.length, 0);
      return true;
    } catch {
      return false;
    }
  }

  private forget(tid: number, entry: CallerEntry): void {
    this.callers.delete(tid);
    closeQuietly(entry.aliveFd);
  }

  private forgetInit(pidNs: string, init: InitEntry): void {
    if (this.inits.get(pidNs) === init) this.inits.delete(pidNs);
    closeQuietly(init.aliveFd);
    init.aliveFd = -1;
  }

  private evictOldest(): void {
    let toDrop = Math.max(1, this.options.maxCallers >> 2);
    for (const [tid, entry] of this.callers) {
      if (toDrop-- <= 0) break;
      this.forget(tid, entry);
    }
    // Inits no caller refers to any more are dropped too; they are found again on demand.
    const used = new Set<InitEntry>();
    for (const entry of this.callers.values()) if (entry.initEntry) used.add(entry.initEntry);
    for (const [ns, init] of this.inits) if (!used.has(init)) this.forgetInit(ns, init);
  }
}

/** Per controller: the init's cgroup when the caller is in it or below it, else the caller's own. */
export function containerPaths(caller: CgroupPaths, init: CgroupPaths): CgroupPaths {
  const out = {} as Record<(typeof controllers)[number], string | null>;
  for (const c of controllers) {
    const own = caller[c];
    const container = init[c];
    out[c] = own !== null && container !== null && isSameOrBelow(own, container) ? container : own;
  }
  return out;
}

/** The `PPid:` and `NSpid:` lines of /proc/<pid>/status. */
export function parseStatus(text: string): { ppid: number; nspid: number[] } {
  const ppidAt = text.indexOf('\nPPid:');
  const ppid =
    ppidAt < 0 ? 0 : Number.parseInt(text.slice(ppidAt + 6, text.indexOf('\n', ppidAt + 1)).trim(), 10);
  const nspidAt = text.indexOf('\nNSpid:');
  let nspid: number[] = [];
  if (nspidAt >= 0) {
    const end = text.indexOf('\n', nspidAt + 1);
    nspid = text
      .slice(nspidAt + 7, end < 0 ? text.length : end)
      .trim()
      .split(/\s+/)
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  }
  return { ppid: Number.isInteger(ppid) ? ppid : 0, nspid };
}

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    // nothing to release
  }
}
