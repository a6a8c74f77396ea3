import { type MemorySnapshot, MemStat } from '../cgroup/memory.js';
import { ByteWriter } from './byte-writer.js';
import type { SwapFigures } from './swaps.js';

const writer = new ByteWriter();

/** What a meminfo line becomes in the container view. */
enum Field {
  Host,
  MemTotal,
  MemFree,
  MemAvailable,
  Buffers,
  Cached,
  SwapCached,
  Active,
  Inactive,
  ActiveAnon,
  InactiveAnon,
  ActiveFile,
  InactiveFile,
  Unevictable,
  Mlocked,
  SwapTotal,
  SwapFree,
  Zswap,
  Zswapped,
  Dirty,
  Writeback,
  AnonPages,
  Mapped,
  Shmem,
  KReclaimable,
  Slab,
  SReclaimable,
  SUnreclaim,
  KernelStack,
  PageTables,
  SecPageTables,
  Percpu,
  AnonHugePages,
  ShmemHugePages,
  ShmemPmdMapped,
  FileHugePages,
  FilePmdMapped,
}

const fieldByKey = new Map<string, Field>([
  ['MemTotal', Field.MemTotal],
  ['MemFree', Field.MemFree],
  ['MemAvailable', Field.MemAvailable],
  ['Buffers', Field.Buffers],
  ['Cached', Field.Cached],
  ['SwapCached', Field.SwapCached],
  ['Active', Field.Active],
  ['Inactive', Field.Inactive],
  ['Active(anon)', Field.ActiveAnon],
  ['Inactive(anon)', Field.InactiveAnon],
  ['Active(file)', Field.ActiveFile],
  ['Inactive(file)', Field.InactiveFile],
  ['Unevictable', Field.Unevictable],
  ['Mlocked', Field.Mlocked],
  ['SwapTotal', Field.SwapTotal],
  ['SwapFree', Field.SwapFree],
  ['Zswap', Field.Zswap],
  ['Zswapped', Field.Zswapped],
  ['Dirty', Field.Dirty],
  ['Writeback', Field.Writeback],
  ['AnonPages', Field.AnonPages],
  ['Mapped', Field.Mapped],
  ['Shmem', Field.Shmem],
  ['KReclaimable', Field.KReclaimable],
  ['Slab', Field.Slab],
  ['SReclaimable', Field.SReclaimable],
  ['SUnreclaim', Field.SUnreclaim],
  ['KernelStack', Field.KernelStack],
  ['PageTables', Field.PageTables],
  ['SecPageTables', Field.SecPageTables],
  ['Percpu', Field.Percpu],
  ['AnonHugePages', Field.AnonHugePages],
  ['ShmemHugePages', Field.ShmemHugePages],
  ['ShmemPmdMapped', Field.ShmemPmdMapped],
  ['FileHugePages', Field.FileHugePages],
  ['FilePmdMapped', Field.FilePmdMapped],
]);

/** The host's /proc/meminfo, parsed once and reused for every container rendered from it. */
export interface HostMeminfo {
  /** The host file's bytes; lines are referenced by offset, so rendering copies, never splits. */
  readonly raw: Buffer;
  readonly count: number;
  readonly starts: Int32Array;
  /** End of each line, newline included. */
  readonly ends: Int32Array;
  readonly fields: Uint8Array;
  /** Whether a line's first 16 bytes are its label padded as the kernel pads (`Key:` + spaces). */
  readonly paddedLabel: Uint8Array;
  readonly labels: readonly string[];
  readonly memTotalKb: number;
  readonly memFreeKb: number;
  readonly memAvailableKb: number;
  readonly swapTotalKb: number;
  readonly mlockedKb: number;
}

export function parseHostMeminfo(input: string | Buffer): HostMeminfo {
  const raw = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const text = raw.toString('latin1');
  const starts: number[] = [];
  const ends: number[] = [];
  const fields: number[] = [];
  const padded: number[] = [];
  const labels: string[] = [];
  const values = new Map<string, number>();
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length - 1;
    const line = text.slice(pos, nl);
    const colon = line.indexOf(':');
    const key = colon > 0 ? line.slice(0, colon) : line;
    values.set(key, colon > 0 ? Number.parseInt(line.slice(colon + 1).trim(), 10) : Number.NaN);
    starts.push(pos);
    ends.push(nl + 1);
    fields.push(fieldByKey.get(key) ?? Field.Host);
    padded.push(
      colon > 0 && colon < 15 && line.length > 16 && line.slice(colon + 1, 16).trim() === '' ? 1 : 0,
    );
    labels.push(`${key}:`);
    pos = nl + 1;
  }
  const get = (key: string) => values.get(key) ?? Number.NaN;
  return {
    // a complete last line, even if the host file lacked its final newline
    raw: text.endsWith('\n') || text === '' ? raw : Buffer.from(`${text}\n`, 'latin1'),
    count: starts.length,
    starts: Int32Array.from(starts),
    ends: Int32Array.from(ends),
    fields: Uint8Array.from(fields),
    paddedLabel: Uint8Array.from(padded),
    labels,
    memTotalKb: get('MemTotal'),
    memFreeKb: get('MemFree'),
    memAvailableKb: get('MemAvailable'),
    swapTotalKb: get('SwapTotal'),
    mlockedKb: get('Mlocked'),
  };
}

/**
 * The container's MemTotal in kB: its limit (minimum over the ancestry), but never more than the
 * host has. `clamped` tells whether the host, not a limit, bounds the container.
 */
export function containerMemTotalKb(
  host: HostMeminfo,
  mem: MemorySnapshot,
): { kb: number; clamped: boolean } {
  const limitKb = Math.floor(mem.limit / 1024);
  if (!(limitKb > 0) || !(limitKb < host.memTotalKb)) return { kb: host.memTotalKb, clamped: true };
  return { kb: limitKb, clamped: false };
}

function statKb(mem: MemorySnapshot, slot: number): number {
  const bytes = mem.stat[slot]!;
  return bytes >= 0 && Number.isFinite(bytes) ? Math.floor(bytes / 1024) : 0;
}

/** MemTotal, MemFree and MemAvailable of the container (formulas in renderMeminfo's comment). */
function containerFreeKb(
  host: HostMeminfo,
  mem: MemorySnapshot,
): { total: { kb: number; clamped: boolean }; free: number; available: number } {
  const total = containerMemTotalKb(host, mem);
  const usageKb = Math.floor(mem.usage / 1024);
  let free = Math.max(0, total.kb - usageKb);
  const reclaimable =
    statKb(mem, MemStat.activeFile) +
    statKb(mem, MemStat.inactiveFile) +
    (mem.version === 2 ? statKb(mem, MemStat.slabReclaimable) : 0);
  let available = Math.min(total.kb, free + reclaimable);
  if (total.clamped) {
    if (host.memFreeKb >= 0) free = Math.min(free, host.memFreeKb);
    if (host.memAvailableKb >= 0) available = Math.min(available, host.memAvailableKb);
  }
  return { total, free, available };
}

/** The lines of the container's /proc/meminfo that sysinfo(2) reports, in kB, computed as renderMeminfo does. */
export interface MeminfoHeadline {
  readonly totalKb: number;
  readonly freeKb: number;
  readonly sharedKb: number;
  readonly buffersKb: number;
  readonly swapTotalKb: number;
  readonly swapFreeKb: number;
}

export function meminfoHeadline(host: HostMeminfo, mem: MemorySnapshot, swap: SwapFigures): MeminfoHeadline {
  const { total, free } = containerFreeKb(host, mem);
  return {
    totalKb: total.kb,
    freeKb: free,
    sharedKb: statKb(mem, MemStat.shmem),
    // The container's Buffers line is always 0 (block-device buffers are not charged per cgroup).
    buffersKb: 0,
    swapTotalKb: swap.totalKb,
    swapFreeKb: Math.max(0, swap.totalKb - swap.usedKb),
  };
}

/**
 * /proc/meminfo for a container: the host's file line by line, with every line that describes
 * memory use replaced by the container's value. Formulas (all kB):
 *   MemTotal     = min(limit over the ancestry, host MemTotal)
 *   MemFree      = MemTotal - usage (>= 0)
 *   MemAvailable = MemFree + file LRU (+ reclaimable slab on v2), <= MemTotal
 *   (when no limit binds, MemFree and MemAvailable are also capped by the host's own values:
 *    a container cannot get more than the host has)
 *   Buffers 0; Cached = page cache (v1 total_cache, v2 file); LRU lines from memory.stat;
 *   Dirty/Writeback/Mapped/AnonPages/Shmem/AnonHugePages from memory.stat (v1 and v2);
 *   Slab lines, KReclaimable, KernelStack, PageTables, SecPageTables, Percpu, *HugePages,
 *   Zswap/Zswapped from memory.stat on v2; on v1 (which lacks them) Slab lines and Zswap are 0 and
 *   the kernel-internal ones stay the host's, as with LXCFS;
 *   Mlocked = min(host Mlocked, container Unevictable); Swap lines from computeSwap().
 * Every other line (CommitLimit, Vmalloc*, HugePages_*, DirectMap*...) is the host's.
 */
export function renderMeminfo(host: HostMeminfo, mem: MemorySnapshot, swap: SwapFigures): Buffer {
  const v2 = mem.version === 2;
  const kb = (slot: number): number => statKb(mem, slot);
  const { total, free, available } = containerFreeKb(host, mem);
  const unevictable = kb(MemStat.unevictable);

  const out = writer.reset();
  const raw = host.raw;
  for (let i = 0; i < host.count; i++) {
    let value: number;
    switch (host.fields[i]) {
      case Field.Host:
        out.bytes(raw, host.starts[i]!, host.ends[i]!);
        continue;
      case Field.MemTotal:
        value = total.kb;
        break;
      case Field.MemFree:
        value = free;
        break;
      case Field.MemAvailable:
        value = available;
        break;
      case Field.Buffers:
        value = 0;
        break;
      case Field.Cached:
        value = Math.max(0, kb(MemStat.cache) - kb(MemStat.swapCached));
        break;
      case Field.SwapCached:
        value = kb(MemStat.swapCached);
        break;
      case Field.Active:
        value = kb(MemStat.activeAnon) + kb(MemStat.activeFile);
        break;
      case Field.Inactive:
        value = kb(MemStat.inactiveAnon) + kb(MemStat.inactiveFile);
        break;
      case Field.ActiveAnon:
        value = kb(MemStat.activeAnon);
        break;
      case Field.InactiveAnon:
        value = kb(MemStat.inactiveAnon);
        break;
      case Field.ActiveFile:
        value = kb(MemStat.activeFile);
        break;
      case Field.InactiveFile:
        value = kb(MemStat.inactiveFile);
        break;
      case Field.Unevictable:
        value = unevictable;
        break;
      case Field.Mlocked:
        value = Number.isFinite(host.mlockedKb) ? Math.min(host.mlockedKb, unevictable) : 0;
        break;
      case Field.SwapTotal:
        value = swap.totalKb;
        break;
      case Field.SwapFree:
        value = Math.max(0, swap.totalKb - swap.usedKb);
        break;
      case Field.Zswap:
        value = v2 ? kb(MemStat.zswap) : 0;
        break;
      case Field.Zswapped:
        value = v2 ? kb(MemStat.zswapped) : 0;
        break;
      case Field.Dirty:
        value = kb(MemStat.dirty);
        break;
      case Field.Writeback:
        value = kb(MemStat.writeback);
        break;
      case Field.AnonPages:
        value = kb(MemStat.anon);
        break;
      case Field.Mapped:
        value = kb(MemStat.mapped);
        break;
      case Field.Shmem:
        value = kb(MemStat.shmem);
        break;
      case Field.KReclaimable:
      case Field.SReclaimable:
        value = v2 ? kb(MemStat.slabReclaimable) : 0;
        break;
      case Field.Slab:
        value = v2 ? kb(MemStat.slab) : 0;
        break;
      case Field.SUnreclaim:
        value = v2 ? kb(MemStat.slabUnreclaimable) : 0;
        break;
      case Field.KernelStack:
        if (!v2) {
          out.bytes(raw, host.starts[i]!, host.ends[i]!);
          continue;
        }
        value = kb(MemStat.kernelStack);
        break;
      case Field.PageTables:
        if (!v2) {
          out.bytes(raw, host.starts[i]!, host.ends[i]!);
          continue;
        }
        value = kb(MemStat.pageTables);
        break;
      case Field.SecPageTables:
        if (!v2) {
          out.bytes(raw, host.starts[i]!, host.ends[i]!);
          continue;
        }
        value = kb(MemStat.secPageTables);
        break;
      case Field.Percpu:
        if (!v2) {
          out.bytes(raw, host.starts[i]!, host.ends[i]!);
          continue;
        }
        value = kb(MemStat.percpu);
        break;
      case Field.AnonHugePages:
        value = kb(MemStat.anonHuge);
        break;
      case Field.ShmemHugePages:
        value = v2 ? kb(MemStat.shmemHuge) : 0;
        break;
      case Field.FileHugePages:
        if (!v2) {
          out.bytes(raw, host.starts[i]!, host.ends[i]!);
          continue;
        }
        value = kb(MemStat.fileHuge);
        break;
      case Field.ShmemPmdMapped:
      case Field.FilePmdMapped:
        value = 0;
        break;
      default:
        value = 0;
    }
    // The kernel's layout: the label padded to 16 columns, the value right-aligned in 8, " kB".
    if (host.paddedLabel[i] === 1) {
      out.bytes(raw, host.starts[i]!, host.starts[i]! + 16);
    } else {
      out.ascii(host.labels[i]!.padEnd(15));
      out.byte(0x20);
    }
    out.uint(value, 8);
    out.ascii(' kB\n');
  }
  return out.toBuffer();
}
