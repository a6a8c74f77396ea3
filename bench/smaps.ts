/**
 * Where a process's memory goes, as far as the kernel tells from outside the process:
 * /proc/PID/smaps_rollup for the totals, /proc/PID/smaps grouped by what each mapping is
 * (anonymous memory, the node binary, shared libraries, other files). V8's heaps are
 * anonymous mappings like any other, so they cannot be told apart from here.
 */
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync } from 'node:fs';

/** The smaps_rollup totals of one process, in KiB. */
export interface Rollup {
  rss: number;
  pss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
  /** Pages mapped by this process only (unique set size). */
  uss: number;
  anonymous: number;
  sharedClean: number;
  sharedDirty: number;
  swap: number;
}

const field = (text: string, key: string) =>
  Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);

export function rollup(pid: number): Rollup {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  return {
    rss: field(text, 'Rss'),
    pss: field(text, 'Pss'),
    pssAnon: field(text, 'Pss_Anon'),
    pssFile: field(text, 'Pss_File'),
    pssShmem: field(text, 'Pss_Shmem'),
    uss: field(text, 'Private_Clean') + field(text, 'Private_Dirty'),
    anonymous: field(text, 'Anonymous'),
    sharedClean: field(text, 'Shared_Clean'),
    sharedDirty: field(text, 'Shared_Dirty'),
    swap: field(text, 'Swap'),
  };
}

/** Peak resident set (VmHWM, KiB) and thread count from /proc/PID/status. */
export function status(pid: number): { peakRss: number; threads: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { peakRss: kb('VmHWM'), threads: kb('Threads') };
}

export interface MappingGroup {
  group: string;
  mappings: number;
  rss: number;
  pss: number;
}

/**
 * The process's mappings summed by kind. `binary` is the realpath of the program whose code
 * gets its own line (node for lxcfs-ts, /usr/bin/lxcfs for lxcfs).
 */
export function mappingGroups(pid: number): MappingGroup[] {
  const text = readFileSync(`/proc/${pid}/smaps`, 'latin1');
  const exe = realpathSync(`/proc/${pid}/exe`);
  const groups = new Map<string, MappingGroup>();
  let current: MappingGroup | null = null;
  for (const line of text.split('\n')) {
    // A mapping header: "start-end perms offset dev inode [path]"
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      const name = classify(header[2]!.trim(), exe);
      current = groups.get(name) ?? { group: name, mappings: 0, rss: 0, pss: 0 };
      current.mappings++;
      groups.set(name, current);
      continue;
    }
    if (!current) continue;
    const kv = /^(Rss|Pss):\s+(\d+) kB/.exec(line);
    if (kv) current[kv[1] === 'Rss' ? 'rss' : 'pss'] += Number(kv[2]);
  }
  return [...groups.values()].sort((a, b) => b.pss - a.pss);
}

function classify(path: string, exe: string): string {
  if (path === '' || path.startsWith('[anon')) return 'anonymous (heaps, stacks, JIT code)';
  if (path === '[heap]') return 'anonymous: [heap] (malloc)';
  if (path.startsWith('[stack')) return 'anonymous: [stack]';
  if (path.startsWith('[')) return `kernel ${path}`;
  const file = path.replace(/ \(deleted\)$/, '');
  if (file === exe) return `program ${file}`;
  if (/\.so(\.|$)/.test(file)) return 'shared libraries (.so)';
  if (file.startsWith('/dev/')) return `device ${file}`;
  return 'other files';
}

/**
 * How many processes on the host run the given program now: file-backed pages of a program
 * are shared (and their PSS divided) among all of them, so the agent's PSS moves with it.
 */
export function processesRunning(program: string): number {
  const target = realpathSync(program);
  let n = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === target) n++;
    } catch {
      // kernel thread, gone, or not ours to read
    }
  }
  return n;
}

/**
 * The physical pages (frame numbers) the process has resident, from /proc/PID/pagemap (root
 * only). The union over a daemon's processes is its memory with every page counted once, which,
 * unlike PSS, does not depend on how many other processes on the host run the same program.
 */
export function residentFrames(pid: number, into: Set<number> = new Set()): Set<number> {
  const ranges: [number, number][] = [];
  let range: [number, number] | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'latin1').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (header) {
      range = [parseInt(header[1]!, 16), parseInt(header[2]!, 16)];
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && range && Number(rss[1]) > 0) ranges.push(range);
  }
  const page = 4096;
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    for (const [start, end] of ranges) {
      // vsyscall and other addresses above 2^53 cannot be offsets here; they hold no process memory.
      if (end / page * 8 > Number.MAX_SAFE_INTEGER) continue;
      const pages = (end - start) / page;
      const chunk = Buffer.alloc(Math.min(pages, 65536) * 8);
      for (let done = 0; done < pages;) {
        const n = Math.min(pages - done, chunk.length / 8);
        const got = readSync(fd, chunk, 0, n * 8, ((start / page) + done) * 8);
        for (let i = 0; i + 8 <= got; i += 8) {
          const entry = chunk.readBigUInt64LE(i);
          // bit 63: present in RAM; bits 0-54: the frame number
          if (entry >> 63n) into.add(Number(entry & ((1n << 55n) - 1n)));
        }
        if (got < n * 8) break;
        done += n;
      }
    }
  } finally {
    closeSync(fd);
  }
  return into;
}
