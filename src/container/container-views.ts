/**
 * A caller's container view: resolves the calling process to its cgroups, reads the limits and
 * usage the files need (cached briefly, so a burst of reads costs one cgroup read), and renders
 * each view file and the sysinfo figures from the same reads. One instance per FUSE worker thread
 * and one for the syscall thread; what they must agree on lives in the shared tables.
 */
import { performance } from 'node:perf_hooks';
import { type CallerContext, CallerResolver } from '../cgroup/caller-identity.js';
import { type CpuLimits, CpuReader, visibleCpuList } from '../cgroup/cpu.js';
import { readDeviceIo } from '../cgroup/io.js';
import { type CgroupLayout, cgroupDir, detectCgroupLayout } from '../cgroup/layout.js';
import { MemoryReader } from '../cgroup/memory.js';
import { PreadFiles } from '../cgroup/pread-files.js';
import { taskControllers } from '../cgroup/tasks.js';
import { parseCpuList } from '../common/cpu-list.js';
import type { Logger } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { ViewSource } from './view-source.js';
import { findViewFile } from '../views/catalog.js';
import { renderCpuListFile } from '../views/cpu-files.js';
import { type HostCpuinfo, parseHostCpuinfo, renderCpuinfo } from '../views/cpuinfo.js';
import { renderDiskstats } from '../views/diskstats.js';
import { renderLoadavg } from '../views/loadavg.js';
import {
  containerMemTotalKb,
  type HostMeminfo,
  meminfoHeadline,
  parseHostMeminfo,
  renderMeminfo,
} from '../views/meminfo.js';
import { cgroupPressure } from '../views/pressure.js';
import { cgroupSlabinfo } from '../views/slabinfo.js';
import { type HostStat, parseHostStat, renderStat } from '../views/stat.js';
import {
  advanceCounters,
  aggregateCounters,
  CounterLayout,
  type CpuSample,
  counterRegionSize,
} from '../views/stat-counters.js';
import { avenrunFromLoadavg, type ContainerFigures } from './container-figures.js';
import { computeSwap, noSwap, renderSwaps } from '../views/swaps.js';
import { parseUptime, renderUptime } from '../views/uptime.js';
import { LoadSlot, loadavgKey } from './loadavg-table.js';
import {
  allocateSharedTable,
  type EntryRef,
  hashString,
  SharedTable,
  type SharedTableBuffers,
} from './shared-table.js';

/**
 * State shared by every FUSE worker thread and the main thread. Plain data around
 * SharedArrayBuffers, so it survives structured cloning into workers.
 */
export interface SharedViewState {
  /** Per-container /proc/stat counters that must never go backwards, whichever thread serves. */
  readonly cpuCounters: SharedTableBuffers;
  /** Per-container load averages written by the sampler (main thread), read by the workers. */
  readonly loadavg: SharedTableBuffers;
  /** Host CPU slots each cpuCounters entry holds. */
  readonly cpuSlots: number;
}

/** USER_HZ, the unit of /proc/<pid>/stat start times: 100 on every Linux architecture we run on. */
const clockTicksPerSecond = 100;

/** How stale host-wide content may be (ms): passthrough lines of meminfo and stat. */
const hostTtlMs = 100;
/** cpuinfo is costly to generate (25 µs for 2 CPUs) and changes only in `cpu MHz`. */
const cpuinfoTtlMs = 1000;
/** Limits and the host's CPU topology are re-read at least this often (in-place resize). */
const limitTtlMs = 1000;

/** Longest table key kept verbatim; longer cgroup paths are keyed by a prefix plus two hashes. */
const keyChars = 512;

export function createSharedViewState(options: ViewOptions): SharedViewState {
  const cpuSlots = Math.max(1, hostCpuSlots(options));
  // Per container: counters for every host CPU slot plus bookkeeping (see stat-counters.ts),
  // with room for 4096 containers but no more than 32 MiB on hosts with many CPUs. Pages of the
  // buffers that no container uses are never touched, so they cost address space, not memory.
  const counterDoubles = counterRegionSize(cpuSlots);
  const maxEntries = Math.max(256, Math.min(4096, Math.floor((32 * 1024 * 1024) / (8 * counterDoubles))));
  return {
    cpuCounters: allocateSharedTable(maxEntries, keyChars, counterDoubles),
    loadavg: allocateSharedTable(4096, keyChars, 16),
    cpuSlots,
  };
}

/** A cgroup path as a table key: verbatim when short enough. */
export function tableKey(key: string): string {
  if (key.length <= keyChars) return key;
  return `${key.slice(0, keyChars - 40)}#${hashString(key).toString(16)}.${hashString(`${key}\0`).toString(16)}`;
}

function hostCpuSlots(options: ViewOptions): number {
  const reader = new PreadFiles(4);
  try {
    const possible = parseCpuList(reader.readText(`${options.sysRoot}/devices/system/cpu/possible`) ?? '');
    if (possible.length > 0) return possible[possible.length - 1]! + 1;
    const online = parseCpuList(reader.readText(`${options.sysRoot}/devices/system/cpu/online`) ?? '');
    return online.length > 0 ? online[online.length - 1]! + 1 : 1;
  } finally {
    reader.closeAll();
  }
}

export function createContainerViewSource(
  options: ViewOptions,
  shared: SharedViewState,
  log: Logger,
): ViewSource {
  return new ContainerViews(options, shared, log);
}

/** What the syscall view needs of a caller's container: the figures its files show right now. */
export interface SysinfoViews {
  /** Null when the caller is not served (unresolvable, or no container figures). */
  figures(callerPid: number): ContainerFigures | null;
}

export function createSysinfoViews(options: ViewOptions, shared: SharedViewState, log: Logger): SysinfoViews {
  const views = new ContainerViews(options, shared, log);
  return { figures: (pid) => views.sysinfoFigures(pid) };
}

interface Timed<T> {
  at: number;
  value: T;
}

/** Whether an entry of the shared counters table is still initialized (first read pending). */
function counterInitialized(table: SharedTable, ref: EntryRef): boolean {
  return table.payload[ref.slot * table.payloadDoubles + CounterLayout.initialized] === 1;
}

/**
 * The ViewSource the FUSE tree serves: resolves the caller, reads its container's cgroups and
 * renders each file with the pure functions of src/views. One instance per worker thread; every
 * call is synchronous and never throws (any failure falls back to the host's content).
 */
class ContainerViews implements ViewSource {
  private readonly layout: CgroupLayout;
  private readonly files = new PreadFiles();
  private readonly resolver: CallerResolver;
  private readonly memory: MemoryReader;
  private readonly cpu: CpuReader;
  private readonly counters: SharedTable;
  private readonly loads: SharedTable;
  private readonly entryRefs = new Map<string, EntryRef>();
  private hostMeminfo: Timed<HostMeminfo> | null = null;
  private hostStat: Timed<HostStat> | null = null;
  private hostCpuinfo: Timed<HostCpuinfo | null> | null = null;
  private readonly cpuinfoCache = new Map<string, Buffer>();
  /** Thread counts for sysinfo's `procs`, reused for as long as host-wide content is. */
  private readonly threadCounts = new Map<string, Timed<number>>();
  private hostOnline: Timed<readonly number[]> | null = null;
  private readonly visibleCache = new WeakMap<
    CpuLimits,
    { online: readonly number[]; cpus: readonly number[] }
  >();

  private readonly sample: CpuSample = {
    wallUs: 0,
    sinceBootUs: 0,
    userUs: 0,
    systemUs: 0,
    perCpu: null,
    perCpuCount: 0,
    visible: [],
  };

  private readonly sums = { user: 0, system: 0, idle: 0 };
  /** Caller thread ids in their own pid namespace (a context lives until its next refresh). */
  private readonly callerNsTids = new WeakMap<CallerContext, number>();
  private readonly translatedTids = new Map<string, number>();
  private warnedFull = false;

  constructor(
    private readonly options: ViewOptions,
    private readonly shared: SharedViewState,
    private readonly log: Logger,
  ) {
    this.layout = detectCgroupLayout(options.cgroupRoot);
    this.resolver = new CallerResolver(options.procRoot, this.layout.version, log);
    this.memory = new MemoryReader(this.layout, this.files, limitTtlMs);
    this.cpu = new CpuReader(this.layout, this.files, limitTtlMs);
    this.counters = new SharedTable(shared.cpuCounters);
    this.loads = new SharedTable(shared.loadavg);
  }

  content(path: string, callerPid: number): Buffer {
    try {
      const caller = this.resolver.resolve(callerPid);
      if (caller === null) {
        this.log.debug({ path, pid: callerPid }, 'caller not resolvable: serving host content');
        return this.host(path);
      }
      const out = this.render(path, caller);
      if (out !== null) return out;
      this.log.debug(
        { path, pid: callerPid, paths: caller.paths },
        'no container data: serving host content',
      );
    } catch (err) {
      this.log.warn({ path, pid: callerPid, err }, 'view failed: serving host content');
    }
    return this.host(path);
  }

  /**
   * The figures sysinfo(2) is composed from, exactly those this caller's files are rendered from
   * now; null when the caller cannot be resolved or its container has no memory figures (the
   * kernel then answers with the host's, as the file would show the host's).
   */
  sysinfoFigures(callerPid: number): ContainerFigures | null {
    try {
      const caller = this.resolver.resolve(callerPid);
      if (caller === null) return null;
      const path = caller.paths.memory;
      const host = this.parsedMeminfo();
      if (path === null || host === null) return null;
      const mem = this.memory.read(path, !this.options.disableSwap && host.swapTotalKb > 0);
      if (mem === null) return null;
      const total = containerMemTotalKb(host, mem);
      const swap = computeSwap(mem, total.kb, host.swapTotalKb, this.options.disableSwap);
      const uptimeSec = this.callerUptimeSec(caller);
      const avenrun = this.averages(caller);
      const threads = this.threadCount(caller);
      if (!Number.isFinite(uptimeSec) || avenrun === null || threads === null) return null;
      return { memory: meminfoHeadline(host, mem, swap), uptimeSec, avenrun, threads };
    } catch (err) {
      this.log.warn({ pid: callerPid, err }, 'sysinfo view failed: the kernel answers instead');
      return null;
    }
  }

  /** The averages /proc/loadavg shows this caller: the sampler's with `-l`, else the host's. */
  private averages(caller: CallerContext): [number, number, number] | null {
    if (!this.options.enableLoadavg) {
      const host = this.files.readText(`${this.options.procRoot}/loadavg`);
      return host === null ? null : avenrunFromLoadavg(host);
    }
    const key = loadavgKey(this.layout, caller.paths);
    const ref = key === null ? null : this.entry(this.loads, key);
    if (ref === null) return null;
    return this.loads.withEntry(ref, (slot) => {
      const at = slot * this.loads.payloadDoubles;
      const p = this.loads.payload;
      return [p[at + LoadSlot.avg1]!, p[at + LoadSlot.avg5]!, p[at + LoadSlot.avg15]!] as [number, number, number];
    });
  }

  /** Threads of the caller's own cgroup, at most 100 ms old (the load-average sampler counts sub-cgroups too). */
  private threadCount(caller: CallerContext): number | null {
    const now = performance.now();
    for (const controller of taskControllers) {
      const path = caller.paths[controller];
      const hierarchy = this.layout.hierarchy[controller];
      if (path === null || hierarchy === null) continue;
      const file = `${cgroupDir(hierarchy, path)}/${this.layout.version === 1 ? 'tasks' : 'cgroup.threads'}`;
      const cached = this.threadCounts.get(file);
      if (cached !== undefined && now - cached.at < hostTtlMs) return cached.value;
      const n = this.files.read(file);
      if (n < 0) continue;
      const buf = this.files.buffer;
      let lines = 0;
      for (let i = 0; i < n; i++) if (buf[i] === 0x0a) lines++;
      const value = Math.max(1, lines);
      if (this.threadCounts.size > 4096) this.threadCounts.clear();
      this.threadCounts.set(file, { at: now, value });
      return value;
    }
    return null;
  }

  visibleCpus(callerPid: number): readonly number[] | null {
    try {
      const caller = this.resolver.resolve(callerPid);
      if (caller === null) return null;
      const cpus = this.visible(caller);
      return cpus === null || sameList(cpus, this.onlineCpus()) ? null : cpus;
    } catch (err) {
      this.log.warn({ pid: callerPid, err }, 'visibleCpus failed: showing host CPUs');
      return null;
    }
  }

  /** The rendered file, or null when the container has no data for it (host content then). */
  private render(path: string, caller: CallerContext): Buffer | null {
    switch (path) {
      case 'proc/meminfo':
        return this.meminfo(caller);
      case 'proc/cpuinfo':
        return this.cpuinfo(caller);
      case 'proc/stat':
        return this.stat(caller);
      case 'proc/uptime':
        return this.uptime(caller);
      case 'proc/loadavg':
        return this.loadavg(caller);
      case 'proc/diskstats':
        return this.diskstats(caller);
      case 'proc/swaps':
        return this.swaps(caller);
      case 'proc/slabinfo':
        return this.slabinfo(caller);
      case 'proc/pressure/cpu':
        return this.pressure(caller, 'cpu');
      case 'proc/pressure/memory':
        return this.pressure(caller, 'memory');
      case 'proc/pressure/io':
        return this.pressure(caller, 'io');
      case 'sys/devices/system/cpu/online':
      case 'sys/devices/system/cpu/possible':
      case 'sys/devices/system/cpu/present':
        return this.cpuListFile(caller);
      default:
        return null;
    }
  }

  private meminfo(caller: CallerContext): Buffer | null {
    const path = caller.paths.memory;
    if (path === null) return null;
    const host = this.parsedMeminfo();
    if (host === null) return null;
    const mem = this.memory.read(path, !this.options.disableSwap && host.swapTotalKb > 0);
    if (mem === null) return null;
    const total = containerMemTotalKb(host, mem);
    return renderMeminfo(host, mem, computeSwap(mem, total.kb, host.swapTotalKb, this.options.disableSwap));
  }

  private swaps(caller: CallerContext): Buffer | null {
    const hostText = this.files.readText(`${this.options.procRoot}/swaps`);
    if (hostText === null) return null;
    if (this.options.disableSwap) return Buffer.from(renderSwaps(hostText, noSwap), 'latin1');
    const path = caller.paths.memory;
    const host = this.parsedMeminfo();
    if (path === null || host === null) return null;
    const mem = this.memory.read(path);
    if (mem === null) return null;
    const total = containerMemTotalKb(host, mem);
    return Buffer.from(renderSwaps(hostText, computeSwap(mem, total.kb, host.swapTotalKb, false)), 'latin1');
  }

  private cpuinfo(caller: CallerContext): Buffer | null {
    const visible = this.visible(caller);
    const host = this.parsedCpuinfo();
    if (visible === null || host === null) return null;
    const key = visible.join(',');
    let out = this.cpuinfoCache.get(key);
    if (out === undefined) {
      out = Buffer.from(renderCpuinfo(host, visible), 'latin1');
      if (this.cpuinfoCache.size > 256) this.cpuinfoCache.clear();
      this.cpuinfoCache.set(key, out);
    }
    return out;
  }

  private cpuListFile(caller: CallerContext): Buffer | null {
    const visible = this.visible(caller);
    if (visible === null) return null;
    // A caller who sees every host CPU gets the host's own file (it may list offline CPUs too).
    if (sameList(visible, this.onlineCpus())) return null;
    return Buffer.from(renderCpuListFile(visible.length), 'latin1');
  }

  /**
   * /proc/stat: advance the container's shared counters with a fresh usage sample, then render
   * them (under the entry lock, so the snapshot is consistent).
   */
  private stat(caller: CallerContext): Buffer | null {
    const host = this.parsedStat();
    const visible = this.visible(caller);
    if (host === null || visible === null) return null;
    const procs = this.procsFromSampler(caller);
    return this.withCounters(caller, visible, (mem, base) =>
      renderStat(host, mem, base, this.shared.cpuSlots, {
        visibleCount: visible.length,
        btimeShiftSec: -caller.boottimeOffset,
        procs,
      }),
    );
  }

  /**
   * /proc/uptime: the caller's own uptime (time-namespace aware) and the container's idle time
   * (the host's when the container's CPU usage cannot be read).
   */
  private uptime(caller: CallerContext): Buffer | null {
    const text = this.files.readText(`${this.options.procRoot}/uptime`);
    if (text === null) return null;
    const host = parseUptime(text);
    if (!Number.isFinite(host.uptime)) return null;
    const uptime = this.uptimeFor(caller, host.uptime);
    const visible = this.visible(caller);
    const idleUs =
      visible === null
        ? null
        : this.withCounters(caller, visible, (mem, base) => {
            aggregateCounters(mem, base, this.shared.cpuSlots, this.sums);
            return this.sums.idle;
          });
    return Buffer.from(renderUptime(uptime, idleUs === null ? host.idle : idleUs / 1e6), 'latin1');
  }

  /**
   * Runs `fn` on the container's CPU counters after advancing them with a fresh sample.
   * Null when the container's CPU usage cannot be read.
   */
  private withCounters<T>(
    caller: CallerContext,
    visible: readonly number[],
    fn: (mem: Float64Array, base: number) => T,
  ): T | null {
    const v1 = this.layout.version === 1;
    const controller = v1 ? (caller.paths.cpuacct !== null ? 'cpuacct' : 'cpu') : 'cpu';
    const path = caller.paths[controller];
    if (path === null) return null;
    const usage = this.cpu.readUsage(path);
    if (usage === null) return null;
    const ref = this.entry(this.counters, `${controller}:${path}`);
    if (ref === null) return null;
    const s = this.sample;
    s.wallUs = monotonicUs();
    s.userUs = usage.user;
    s.systemUs = usage.system;
    s.perCpu = usage.perCpu;
    s.perCpuCount = usage.perCpuCount;
    s.visible = visible;
    s.sinceBootUs = counterInitialized(this.counters, ref) ? 0 : this.callerUptimeSec(caller) * 1e6;
    return this.counters.withEntry(ref, (slot) => {
      const base = slot * this.counters.payloadDoubles;
      advanceCounters(this.counters.payload, base, this.shared.cpuSlots, s);
      return fn(this.counters.payload, base);
    });
  }

  /** The uptime this caller's /proc/uptime shows now (sysinfo(2) and the idle counters use it too). */
  private callerUptimeSec(caller: CallerContext): number {
    const text = this.files.readText(`${this.options.procRoot}/uptime`);
    if (text === null) return Number.NaN;
    return this.uptimeFor(caller, parseUptime(text).uptime);
  }

  /**
   * The uptime rule (`--uptime`): in a time namespace, what the kernel shows the caller (the
   * host's, shifted by the namespace's boot offset), as the namespace's per-process start times
   * agree with it. Outside one, `host` shows the host's; `container` the container's age, the
   * host's uptime minus its PID 1's start (host callers, and containers whose PID 1 is unknown,
   * get the host's). btime stays the host's, so start dates (ps START) remain right.
   */
  private uptimeFor(caller: CallerContext, hostUptimeSec: number): number {
    if (caller.boottimeOffset !== 0 || this.options.uptime === 'host' || !Number.isFinite(caller.initStartTicks)) {
      return Math.max(0, hostUptimeSec + caller.boottimeOffset);
    }
    return Math.max(0, hostUptimeSec - caller.initStartTicks / clockTicksPerSecond);
  }

  /**
   * procs_running / procs_blocked for /proc/stat with `-l`: the sampler's last count of the
   * container. A container that reads /proc/stat is registered with the sampler (which counts it
   * within 250 ms), so `vmstat` gets its r and b columns without the container ever reading
   * /proc/loadavg. The caller counts as running (it is, while it reads: the kernel's count
   * includes the reader too); until the first count it is the one running thread.
   */
  private procsFromSampler(caller: CallerContext): { running: number; blocked: number } | null {
    if (!this.options.enableLoadavg) return null;
    const key = loadavgKey(this.layout, caller.paths);
    if (key === null) return null;
    const ref = this.entry(this.loads, key);
    if (ref === null) return null;
    return this.loads.withEntry(ref, (slot) => {
      const at = slot * this.loads.payloadDoubles;
      const p = this.loads.payload;
      return p[at + LoadSlot.sampledAtMs] === 0
        ? { running: 1, blocked: 0 }
        : { running: Math.max(1, p[at + LoadSlot.runnable]!), blocked: p[at + LoadSlot.blocked]! };
    });
  }

  /**
   * /proc/loadavg with `-l`: the sampler's averages for the container, its runnable/total threads
   * and the newest thread's pid as the caller's pid namespace numbers it.
   */
  private loadavg(caller: CallerContext): Buffer | null {
    if (!this.options.enableLoadavg) return null;
    const key = loadavgKey(this.layout, caller.paths);
    if (key === null) return null;
    const ref = this.entry(this.loads, key);
    if (ref === null) return null;
    const values = this.loads.withEntry(ref, (slot) => {
      const at = slot * this.loads.payloadDoubles;
      return Array.from(this.loads.payload.subarray(at, at + 16));
    });
    if (values === null) return null;
    const sampled = values[LoadSlot.sampledAtMs]! > 0;
    const avg = [values[LoadSlot.avg1]!, values[LoadSlot.avg5]!, values[LoadSlot.avg15]!];
    // The caller is a running thread of the container while it reads, as the kernel counts it.
    const running = Math.max(1, sampled ? values[LoadSlot.runnable]! : 0);
    const threads = Math.max(running, sampled ? values[LoadSlot.threads]! : 1);
    return Buffer.from(
      renderLoadavg(
        avg,
        running,
        threads,
        this.lastPid(caller, values[LoadSlot.maxTid]!, values[LoadSlot.sampledAtMs]!),
      ),
      'latin1',
    );
  }

  /**
   * The kernel's last field is the last pid allocated in the caller's pid namespace. Host callers
   * get the host's; container callers the newer of their own id and the container's newest
   * thread (from the last count), as their namespace numbers it.
   */
  private lastPid(caller: CallerContext, maxTid: number, sampledAtMs: number): number {
    if (caller.hostPidNs) {
      const host = this.files.readText(`${this.options.procRoot}/loadavg`);
      const last = host === null ? Number.NaN : Number(host.trim().split(/\s+/)[4]);
      return Number.isFinite(last) ? last : caller.tid;
    }
    let own = this.callerNsTids.get(caller);
    if (own === undefined) {
      own = this.nsPidOf(caller.tid, caller.pidNsLevel);
      this.callerNsTids.set(caller, own);
    }
    let newest = own;
    if (maxTid > 0) {
      // the sampler's newest thread, translated once per sample
      const key = `${maxTid}:${caller.pidNsLevel}:${sampledAtMs}`;
      let translated = this.translatedTids.get(key);
      if (translated === undefined) {
        translated = this.nsPidOf(maxTid, caller.pidNsLevel);
        if (this.translatedTids.size > 1024) this.translatedTids.clear();
        this.translatedTids.set(key, translated);
      }
      if (translated > newest || !(newest > 0)) newest = translated;
    }
    return newest > 0 ? newest : 1;
  }

  /** A host thread id as pid namespace level `level` numbers it (NaN when unknown). */
  private nsPidOf(tid: number, level: number): number {
    const status = this.files.readText(`${this.options.procRoot}/${tid}/status`);
    const nspid = status === null ? null : /\nNSpid:\s*([^\n]*)/.exec(status);
    return nspid ? Number(nspid[1]!.trim().split(/\s+/)[level]) : Number.NaN;
  }

  private diskstats(caller: CallerContext): Buffer | null {
    const path = caller.paths.blkio;
    if (path === null) return null;
    const devices = readDeviceIo(this.layout, this.files, path);
    if (devices === null) return null;
    const host = this.files.readText(`${this.options.procRoot}/diskstats`);
    if (host === null) return null;
    return Buffer.from(renderDiskstats(host, devices), 'latin1');
  }

  private pressure(caller: CallerContext, resource: 'cpu' | 'memory' | 'io'): Buffer | null {
    const controller = resource === 'io' ? 'blkio' : resource;
    const path = caller.paths[controller];
    const hierarchy = this.layout.hierarchy[controller];
    if (path === null || hierarchy === null) return null;
    const text = cgroupPressure(this.files.readText(`${cgroupDir(hierarchy, path)}/${resource}.pressure`));
    return text === null ? null : Buffer.from(text, 'latin1');
  }

  private slabinfo(caller: CallerContext): Buffer | null {
    const path = caller.paths.memory;
    const hierarchy = this.layout.hierarchy.memory;
    if (this.layout.version !== 1 || path === null || hierarchy === null) return null;
    const text = cgroupSlabinfo(this.files.readText(`${cgroupDir(hierarchy, path)}/memory.kmem.slabinfo`));
    return text === null ? null : Buffer.from(text, 'latin1');
  }

  /**
   * The shared-table entry for `key`, created when missing; remembered per thread and checked
   * against removal. When the table is full, entries of cgroups that no longer exist are pruned.
   */
  private entry(table: SharedTable, rawKey: string): EntryRef | null {
    const key = tableKey(rawKey);
    const known = this.entryRefs.get(key);
    if (known !== undefined && table.isCurrent(known)) return known;
    let ref = table.findOrInsert(key);
    if (ref === null) {
      this.pruneDeadEntries(table);
      ref = table.findOrInsert(key);
    }
    if (ref === null) {
      if (!this.warnedFull) this.log.warn({ entries: table.liveCount }, 'per-container state table full');
      this.warnedFull = true;
      return null;
    }
    if (this.entryRefs.size > 8192) this.entryRefs.clear();
    this.entryRefs.set(key, ref);
    return ref;
  }

  private pruneDeadEntries(table: SharedTable): void {
    for (const { ref, key } of table.entries()) {
      const colon = key.indexOf(':');
      const hierarchy = this.layout.hierarchy[key.slice(0, colon) as keyof CgroupLayout['hierarchy']];
      const path = key.slice(colon + 1);
      if (hierarchy === null || key.includes('#')) continue;
      if (this.files.read(`${cgroupDir(hierarchy, path)}/cgroup.procs`) < 0) table.remove(ref);
    }
  }

  /** The caller's visible host CPUs (policy in visibleCpuList), memoized per limits snapshot. */
  private visible(caller: CallerContext): readonly number[] | null {
    const online = this.onlineCpus();
    const limits = this.cpu.limits(caller.paths.cpuset, caller.paths.cpu);
    const cached = this.visibleCache.get(limits);
    if (cached !== undefined && cached.online === online) return cached.cpus;
    const cpus = visibleCpuList(limits, online, this.options.enableCfs);
    if (cpus.length === 0) return null;
    this.visibleCache.set(limits, { online, cpus });
    return cpus;
  }

  private onlineCpus(): readonly number[] {
    const now = performance.now();
    if (this.hostOnline !== null && now - this.hostOnline.at < limitTtlMs) return this.hostOnline.value;
    const text = this.files.readText(`${this.options.sysRoot}/devices/system/cpu/online`);
    const value = text === null ? [] : parseCpuList(text);
    this.hostOnline = { at: now, value };
    return value;
  }

  private parsedMeminfo(): HostMeminfo | null {
    const now = performance.now();
    if (this.hostMeminfo !== null && now - this.hostMeminfo.at < hostTtlMs) return this.hostMeminfo.value;
    const raw = this.files.readCopy(`${this.options.procRoot}/meminfo`);
    if (raw === null) return null;
    const value = parseHostMeminfo(raw);
    this.hostMeminfo = { at: now, value };
    return value;
  }

  private parsedStat(): HostStat | null {
    const now = performance.now();
    if (this.hostStat !== null && now - this.hostStat.at < hostTtlMs) return this.hostStat.value;
    const raw = this.files.readCopy(`${this.options.procRoot}/stat`);
    if (raw === null) return null;
    const value = parseHostStat(raw);
    this.hostStat = { at: now, value };
    return value;
  }

  private parsedCpuinfo(): HostCpuinfo | null {
    const now = performance.now();
    if (this.hostCpuinfo !== null && now - this.hostCpuinfo.at < cpuinfoTtlMs) return this.hostCpuinfo.value;
    const text = this.files.readText(`${this.options.procRoot}/cpuinfo`);
    const value = text === null ? null : parseHostCpuinfo(text);
    this.hostCpuinfo = { at: now, value };
    this.cpuinfoCache.clear();
    return value;
  }

  /** The host's own file, read fresh. Empty only when the host has no such file. */
  private host(path: string): Buffer {
    const file = findViewFile(path);
    if (file === undefined) return Buffer.alloc(0);
    const root = file.root === 'proc' ? this.options.procRoot : this.options.sysRoot;
    return this.files.readCopy(`${root}/${file.hostPath}`) ?? Buffer.alloc(0);
  }
}

/** CLOCK_MONOTONIC in µs: the same clock in every thread (performance.now() is per-thread). */
function monotonicUs(): number {
  const [sec, ns] = process.hrtime();
  return sec * 1e6 + ns / 1000;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
