import { performance } from 'node:perf_hooks';
import { type CallerContext, CallerResolver } from '../cgroup/caller-identity.js';
import { type CpuLimits, CpuReader, visibleCpuList } from '../cgroup/cpu.js';
import { type CgroupLayout, detectCgroupLayout } from '../cgroup/layout.js';
import { MemoryReader } from '../cgroup/memory.js';
import { PreadFiles } from '../cgroup/pread-files.js';
import { parseCpuList } from '../common/cpu-list.js';
import type { Logger } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { ViewSource } from '../fs/view-source.js';
import { findViewFile } from '../views/catalog.js';
import { renderCpuListFile } from '../views/cpu-files.js';
import { type HostCpuinfo, parseHostCpuinfo, renderCpuinfo } from '../views/cpuinfo.js';
import { containerMemTotalKb, type HostMeminfo, parseHostMeminfo, renderMeminfo } from '../views/meminfo.js';
import { computeSwap, noSwap, renderSwaps } from '../views/swaps.js';
import { allocateSharedTable, type SharedTableBuffers } from './shared-table.js';

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

/** How stale host-wide content may be (ms): passthrough lines of meminfo and stat. */
const hostTtlMs = 100;
/** cpuinfo is costly to generate (25 µs for 2 CPUs) and changes only in `cpu MHz`. */
const cpuinfoTtlMs = 1000;
/** Limits and the host's CPU topology are re-read at least this often (in-place resize). */
const limitTtlMs = 1000;

export function createSharedViewState(options: ViewOptions): SharedViewState {
  const cpuSlots = Math.max(1, hostCpuSlots(options));
  // Per container: counters for every host CPU slot plus bookkeeping (see stat-counters.ts).
  const counterDoubles = 16 + 5 * cpuSlots;
  const maxEntries = Math.max(256, Math.min(4096, Math.floor((32 * 1024 * 1024) / (8 * counterDoubles))));
  return {
    cpuCounters: allocateSharedTable(maxEntries, 1024, counterDoubles),
    loadavg: allocateSharedTable(4096, 1024, 16),
    cpuSlots,
  };
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

interface Timed<T> {
  at: number;
  value: T;
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
  private hostMeminfo: Timed<HostMeminfo> | null = null;
  private hostCpuinfo: Timed<HostCpuinfo | null> | null = null;
  private readonly cpuinfoCache = new Map<string, Buffer>();
  private hostOnline: Timed<readonly number[]> | null = null;
  private readonly visibleCache = new WeakMap<
    CpuLimits,
    { online: readonly number[]; cpus: readonly number[] }
  >();

  constructor(
    private readonly options: ViewOptions,
    _shared: SharedViewState,
    private readonly log: Logger,
  ) {
    this.layout = detectCgroupLayout(options.cgroupRoot);
    this.resolver = new CallerResolver(options.procRoot, this.layout.version, log);
    this.memory = new MemoryReader(this.layout, this.files, limitTtlMs);
    this.cpu = new CpuReader(this.layout, this.files, limitTtlMs);
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
      case 'proc/swaps':
        return this.swaps(caller);
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
    const text = this.files.readText(`${this.options.procRoot}/meminfo`);
    if (text === null) return null;
    const value = parseHostMeminfo(text);
    this.hostMeminfo = { at: now, value };
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

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
