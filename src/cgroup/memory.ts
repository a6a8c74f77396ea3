import { performance } from 'node:perf_hooks';
import { KeyValueSchema, parseSingleNumber } from './key-value.js';
import { type CgroupLayout, cgroupDir, parentCgroup } from './layout.js';
import type { PreadFiles } from './pread-files.js';

/** memory.stat fields the views use, normalized across cgroup v1 (`total_*`) and v2 names. */
export const MemStat = {
  /** page cache incl. tmpfs: v1 total_cache, v2 file */
  cache: 0,
  /** anonymous memory: v1 total_rss, v2 anon */
  anon: 1,
  anonHuge: 2,
  shmem: 3,
  mapped: 4,
  dirty: 5,
  writeback: 6,
  swapCached: 7,
  activeAnon: 8,
  inactiveAnon: 9,
  activeFile: 10,
  inactiveFile: 11,
  unevictable: 12,
  slab: 13,
  slabReclaimable: 14,
  slabUnreclaimable: 15,
  kernelStack: 16,
  pageTables: 17,
  secPageTables: 18,
  percpu: 19,
  shmemHuge: 20,
  fileHuge: 21,
  zswap: 22,
  zswapped: 23,
  /** v1 only: the kernel's own minimum over the ancestry */
  hierarchicalLimit: 24,
  hierarchicalMemswLimit: 25,
} as const;
const memStatSize = 26;

const v1Keys: [string, number][] = [
  ['total_cache', MemStat.cache],
  ['total_rss', MemStat.anon],
  ['total_rss_huge', MemStat.anonHuge],
  ['total_shmem', MemStat.shmem],
  ['total_mapped_file', MemStat.mapped],
  ['total_dirty', MemStat.dirty],
  ['total_writeback', MemStat.writeback],
  ['total_swapcached', MemStat.swapCached],
  ['total_active_anon', MemStat.activeAnon],
  ['total_inactive_anon', MemStat.inactiveAnon],
  ['total_active_file', MemStat.activeFile],
  ['total_inactive_file', MemStat.inactiveFile],
  ['total_unevictable', MemStat.unevictable],
  ['hierarchical_memory_limit', MemStat.hierarchicalLimit],
  ['hierarchical_memsw_limit', MemStat.hierarchicalMemswLimit],
];

const v2Keys: [string, number][] = [
  ['file', MemStat.cache],
  ['anon', MemStat.anon],
  ['anon_thp', MemStat.anonHuge],
  ['shmem', MemStat.shmem],
  ['file_mapped', MemStat.mapped],
  ['file_dirty', MemStat.dirty],
  ['file_writeback', MemStat.writeback],
  ['swapcached', MemStat.swapCached],
  ['active_anon', MemStat.activeAnon],
  ['inactive_anon', MemStat.inactiveAnon],
  ['active_file', MemStat.activeFile],
  ['inactive_file', MemStat.inactiveFile],
  ['unevictable', MemStat.unevictable],
  ['slab', MemStat.slab],
  ['slab_reclaimable', MemStat.slabReclaimable],
  ['slab_unreclaimable', MemStat.slabUnreclaimable],
  ['kernel_stack', MemStat.kernelStack],
  ['pagetables', MemStat.pageTables],
  ['sec_pagetables', MemStat.secPageTables],
  ['percpu', MemStat.percpu],
  ['shmem_thp', MemStat.shmemHuge],
  ['file_thp', MemStat.fileHuge],
  ['zswap', MemStat.zswap],
  ['zswapped', MemStat.zswapped],
];

function schema(keys: [string, number][]): KeyValueSchema {
  return new KeyValueSchema(
    keys.map(([k]) => k),
    keys.map(([, slot]) => slot),
    memStatSize,
  );
}
const v1Schema = schema(v1Keys);
const v2Schema = schema(v2Keys);

/** A container's memory, in bytes. Unknown values are NaN; "no limit" is +Infinity. */
export interface MemorySnapshot {
  version: 1 | 2;
  /** RAM limit: the minimum over the cgroup and all its ancestors. */
  limit: number;
  /** RAM in use (v1 memory.usage_in_bytes, v2 memory.current), page cache included. */
  usage: number;
  /**
   * v1: memory+swap limit (memory.memsw.limit_in_bytes, minimum over the ancestry);
   * v2: swap-only limit (memory.swap.max, minimum over the ancestry).
   * NaN when the kernel does not account swap (no memsw / swap files).
   */
  swapLimit: number;
  /** v1: memory+swap in use; v2: swap in use. NaN when not accounted. */
  swapUsage: number;
  /** v1 memory.swappiness (v2 has none): NaN when unknown. */
  swappiness: number;
  /** memory.stat, indexed by MemStat. */
  stat: Float64Array;
}

interface CachedLimits {
  at: number;
  limit: number;
  swapLimit: number;
  swappiness: number;
}

/** v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages). */
const unlimitedThreshold = 2 ** 62;

function asLimit(value: number): number {
  return value >= unlimitedThreshold ? Number.POSITIVE_INFINITY : value;
}

interface CachedStat {
  at: number;
  values: Float64Array;
}

/**
 * Reads a memory cgroup.
 *  - usage (memory.current / memory.usage_in_bytes, an exact page counter) and swap usage: fresh
 *    on every call;
 *  - memory.stat: re-read when older than `statTtlMs` (100 ms). It is the costliest file (9 µs of
 *    kernel time for a v1 read here, most of a meminfo request) and the kernel itself serves it
 *    from lazily flushed per-CPU counters that may lag by up to 2 s (memcg rstat flushes on a
 *    threshold or every 2 s), so a 100 ms reuse adds no meaningful staleness; a reader polling
 *    less than 10 times a second always gets a fresh read;
 *  - limits that need a walk up the ancestry: at most every `limitTtlMs` (1 s), so in-place
 *    resizes show up within a second. On v1 the kernel reports the ancestry minimum in memory.stat
 *    (`hierarchical_memory_limit`), so there the limit is as fresh as memory.stat.
 */
export class MemoryReader {
  private readonly limits = new Map<string, CachedLimits>();
  private readonly stats = new Map<string, CachedStat>();
  private readonly snapshot: MemorySnapshot;

  constructor(
    private readonly layout: CgroupLayout,
    private readonly files: PreadFiles,
    private readonly limitTtlMs = 1000,
    private readonly statTtlMs = 100,
  ) {
    this.snapshot = {
      version: layout.version,
      limit: Number.NaN,
      usage: Number.NaN,
      swapLimit: Number.NaN,
      swapUsage: Number.NaN,
      swappiness: Number.NaN,
      stat: new Float64Array(memStatSize),
    };
  }

  /**
   * The snapshot of cgroup `path`, or null when its memory files cannot be read (no memory
   * controller, cgroup removed). The returned object is reused by the next call. `withSwap`
   * false skips the swap usage read (a host without swap shows no swap anyway).
   */
  read(path: string, withSwap = true): MemorySnapshot | null {
    const hierarchy = this.layout.hierarchy.memory;
    if (hierarchy === null) return null;
    const dir = cgroupDir(hierarchy, path);
    const s = this.snapshot;
    const v1 = this.layout.version === 1;
    s.usage = this.readNumber(`${dir}/${v1 ? 'memory.usage_in_bytes' : 'memory.current'}`);
    if (Number.isNaN(s.usage)) return null;
    if (!this.readStat(dir)) return null;
    const limits = this.cachedLimits(hierarchy, path);
    if (v1) {
      const hierarchical = s.stat[MemStat.hierarchicalLimit]!;
      s.limit = Number.isFinite(hierarchical) ? asLimit(hierarchical) : limits.limit;
      s.swapUsage = withSwap ? this.readNumber(`${dir}/memory.memsw.usage_in_bytes`) : Number.NaN;
      const hierarchicalSw = s.stat[MemStat.hierarchicalMemswLimit]!;
      s.swapLimit = Number.isNaN(s.swapUsage)
        ? Number.NaN
        : Number.isFinite(hierarchicalSw)
          ? asLimit(hierarchicalSw)
          : limits.swapLimit;
    } else {
      s.limit = limits.limit;
      s.swapUsage = withSwap ? this.readNumber(`${dir}/memory.swap.current`) : Number.NaN;
      s.swapLimit = Number.isNaN(s.swapUsage) ? Number.NaN : limits.swapLimit;
    }
    s.swappiness = limits.swappiness;
    return s;
  }

  /** memory.stat into snapshot.stat, from the short-lived cache when recent enough. */
  private readStat(dir: string): boolean {
    const now = performance.now();
    let cached = this.stats.get(dir);
    if (cached !== undefined && now - cached.at < this.statTtlMs) {
      this.snapshot.stat.set(cached.values);
      return true;
    }
    const n = this.files.read(`${dir}/memory.stat`);
    if (n < 0) {
      this.stats.delete(dir);
      return false;
    }
    (this.layout.version === 1 ? v1Schema : v2Schema).parse(this.files.buffer, n, this.snapshot.stat);
    if (cached === undefined) {
      if (this.stats.size > 4096) this.stats.clear();
      cached = { at: now, values: new Float64Array(memStatSize) };
      this.stats.set(dir, cached);
    }
    cached.at = now;
    cached.values.set(this.snapshot.stat);
    return true;
  }

  private cachedLimits(hierarchy: string, path: string): CachedLimits {
    const now = performance.now();
    const key = path;
    const cached = this.limits.get(key);
    if (cached !== undefined && now - cached.at < this.limitTtlMs) return cached;
    const fresh = this.walkLimits(hierarchy, path, now);
    if (this.limits.size > 4096) this.limits.clear();
    this.limits.set(key, fresh);
    return fresh;
  }

  private walkLimits(hierarchy: string, path: string, now: number): CachedLimits {
    const v1 = this.layout.version === 1;
    let limit = Number.POSITIVE_INFINITY;
    let swapLimit = Number.POSITIVE_INFINITY;
    // v2's root has no memory.max: stop below it. v1's root file exists and says "unlimited".
    for (let p: string | null = path; p !== null && (v1 || p !== '/'); p = parentCgroup(p)) {
      const dir = cgroupDir(hierarchy, p);
      const l = this.readNumber(`${dir}/${v1 ? 'memory.limit_in_bytes' : 'memory.max'}`);
      if (!Number.isNaN(l)) limit = Math.min(limit, asLimit(l));
      const sw = this.readNumber(`${dir}/${v1 ? 'memory.memsw.limit_in_bytes' : 'memory.swap.max'}`);
      if (!Number.isNaN(sw)) swapLimit = Math.min(swapLimit, asLimit(sw));
    }
    const swappiness = v1 ? this.readNumber(`${cgroupDir(hierarchy, path)}/memory.swappiness`) : Number.NaN;
    return { at: now, limit, swapLimit, swappiness };
  }

  private readNumber(path: string): number {
    const n = this.files.read(path);
    return n < 0 ? Number.NaN : parseSingleNumber(this.files.buffer, n);
  }
}
