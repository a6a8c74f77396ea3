import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ViewOptions } from '../../../src/common/options.js';

/** The checked-in fixture files (real captures and documented formats): test/fixtures/views. */
export const fixturesDir = new URL('../../../../test/fixtures/views/', import.meta.url).pathname;

export function fixture(relative: string): string {
  return readFileSync(join(fixturesDir, relative), 'latin1');
}

/** A process as /proc shows it. */
export interface ProcSpec {
  pid: number;
  /** Content of /proc/<pid>/cgroup. */
  cgroup: string;
  /** pid namespace inode (the ns/pid link reads `pid:[<inode>]`). */
  pidNs: number;
  /** NSpid line values, host pid first. */
  nspid: number[];
  ppid?: number;
  timeNs?: number;
  timeForChildrenNs?: number;
  /** Content of timens_offsets. */
  timensOffsets?: string;
  /** Start time in clock ticks after boot: writes a /proc/<pid>/stat (none otherwise). */
  startTicks?: number;
}

export interface TreeSpec {
  version: 1 | 2;
  /** Host files: keys are paths under /proc (e.g. `meminfo`, `pressure/cpu`) or `sys:<path under /sys>`. */
  host: Record<string, string>;
  /** Cgroup files: key is the cgroup directory (v1: `<controller>/<path>`; v2: `<path>`), value maps file -> content. */
  cgroups: Record<string, Record<string, string>>;
  procs: ProcSpec[];
  /** pid of the serving process itself (`/proc/self`). */
  selfPid: number;
  options?: Partial<ViewOptions>;
}

export interface Tree {
  root: string;
  options: ViewOptions;
  /** Rewrites a file in place (same inode), as the kernel's files change under an open fd. */
  write(relative: string, content: string): void;
  cleanup(): void;
}

/** Builds proc/, sys/ and cgroup/ trees in a temporary directory. */
export function buildTree(spec: TreeSpec): Tree {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-views-unit-'));
  const put = (relative: string, content: string) => {
    const path = join(root, relative);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  };
  for (const [name, content] of Object.entries(spec.host)) {
    if (name.startsWith('sys:')) put(join('sys', name.slice(4)), content);
    else put(join('proc', name), content);
  }
  if (spec.version === 2) put('cgroup/cgroup.controllers', 'cpuset cpu io memory hugetlb pids rdma misc\n');
  for (const [dir, files] of Object.entries(spec.cgroups)) {
    mkdirSync(join(root, 'cgroup', dir), { recursive: true });
    for (const [file, content] of Object.entries(files)) put(join('cgroup', dir, file), content);
  }
  for (const p of spec.procs) writeProc(root, p);
  symlinkSync(String(spec.selfPid), join(root, 'proc', 'self'));
  const options: ViewOptions = {
    enableLoadavg: false,
    enableCfs: false,
    disableSwap: false,
    uptime: 'container',
    procRoot: join(root, 'proc'),
    sysRoot: join(root, 'sys'),
    cgroupRoot: join(root, 'cgroup'),
    ...spec.options,
  };
  return {
    root,
    options,
    write: (relative, content) => writeFileSync(join(root, relative), content),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export function writeProc(root: string, p: ProcSpec): void {
  const dir = join(root, 'proc', String(p.pid));
  mkdirSync(join(dir, 'ns'), { recursive: true });
  writeFileSync(join(dir, 'cgroup'), p.cgroup);
  writeFileSync(join(dir, 'oom_score_adj'), '0\n');
  writeFileSync(
    join(dir, 'status'),
    `Name:\tproc${p.pid}\nState:\tS (sleeping)\nTgid:\t${p.pid}\nPid:\t${p.pid}\nPPid:\t${p.ppid ?? 1}\n` +
    `NSpid:\t${p.nspid.join('\t')}\nThreads:\t1\n`,
  );
  if (p.startTicks !== undefined) {
    // The name may hold spaces and ')': fields are counted after the last ')'.
    const after = ['S', p.ppid ?? 1, ...Array<number>(17).fill(0), p.startTicks, 0, 0];
    writeFileSync(join(dir, 'stat'), `${p.pid} (a) b) ${after.join(' ')}\n`);
  }
  symlinkSync(`pid:[${p.pidNs}]`, join(dir, 'ns', 'pid'));
  const time = p.timeNs ?? hostTimeNs;
  symlinkSync(`time:[${time}]`, join(dir, 'ns', 'time'));
  symlinkSync(`time:[${p.timeForChildrenNs ?? time}]`, join(dir, 'ns', 'time_for_children'));
  writeFileSync(
    join(dir, 'timens_offsets'),
    p.timensOffsets ?? 'monotonic           0         0\nboottime            0         0\n',
  );
}

export const hostPidNs = 4026531836;
export const hostTimeNs = 4026531834;

/** The real captures of this machine's host files (cgroup v1, 2 CPUs, 24 GiB). */
export function capturedHost(): Record<string, string> {
  const h = (f: string) => fixture(`v1-captured/host/${f}`);
  return {
    meminfo: h('meminfo'),
    stat: h('stat'),
    cpuinfo: h('cpuinfo'),
    uptime: h('uptime'),
    loadavg: h('loadavg'),
    diskstats: h('diskstats'),
    swaps: h('swaps'),
    slabinfo: h('slabinfo'),
    'pressure/cpu': h('pressure/cpu'),
    'pressure/memory': h('pressure/memory'),
    'pressure/io': h('pressure/io'),
    'sys:devices/system/cpu/online': h('cpu-online'),
    'sys:devices/system/cpu/possible': h('cpu-possible'),
    'sys:devices/system/cpu/present': h('cpu-present'),
  };
}

/** A 4-CPU host (real file bodies extended to 4 CPUs), for cpuset filtering and renumbering. */
export function fourCpuHost(): Record<string, string> {
  return {
    ...capturedHost(),
    cpuinfo: fixture('host-4cpu/cpuinfo'),
    stat: fixture('host-4cpu/stat'),
    diskstats: fixture('host-4cpu/diskstats'),
    'sys:devices/system/cpu/online': fixture('host-4cpu/online'),
    'sys:devices/system/cpu/possible': fixture('host-4cpu/possible'),
    'sys:devices/system/cpu/present': fixture('host-4cpu/present'),
  };
}

/** The captured v1 container cgroup files, per controller. */
export function capturedV1(controller: string): Record<string, string> {
  const files: Record<string, string[]> = {
    memory: [
      'memory.stat',
      'memory.usage_in_bytes',
      'memory.limit_in_bytes',
      'memory.memsw.usage_in_bytes',
      'memory.memsw.limit_in_bytes',
      'memory.swappiness',
      'memory.kmem.slabinfo',
    ],
    cpu: ['cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.stat'],
    cpuacct: [
      'cpuacct.usage_all',
      'cpuacct.usage_percpu',
      'cpuacct.usage_percpu_user',
      'cpuacct.usage_percpu_sys',
      'cpuacct.usage',
      'cpuacct.stat',
    ],
    cpuset: ['cpuset.cpus', 'cpuset.effective_cpus'],
    blkio: ['blkio.throttle.io_serviced_recursive', 'blkio.throttle.io_service_bytes_recursive'],
    pids: ['tasks'],
  };
  return Object.fromEntries(
    (files[controller] ?? []).map((f) => [f, fixture(`v1-captured/${controller}/${f}`)]),
  );
}

/** The documented-format v2 container files. */
export function v2Container(): Record<string, string> {
  const names = [
    'memory.stat',
    'memory.current',
    'memory.max',
    'memory.high',
    'memory.swap.current',
    'memory.swap.max',
    'memory.zswap.current',
    'cpu.stat',
    'cpu.max',
    'cpu.weight',
    'cpuset.cpus',
    'cpuset.cpus.effective',
    'io.stat',
    'cpu.pressure',
    'memory.pressure',
    'io.pressure',
    'cgroup.procs',
    'cgroup.threads',
  ];
  return Object.fromEntries(names.map((f) => [f, fixture(`v2-container/${f}`)]));
}

/** A v1 /proc/<pid>/cgroup listing with one path for the six controllers (as runc writes it). */
export function v1ProcCgroup(path: string, memoryPath = path): string {
  return (
    `12:pids:${path}\n11:blkio:${path}\n10:freezer:${path}\n9:devices:${path}\n` +
    `8:memory:${memoryPath}\n7:cpuset:${path}\n6:cpuacct:${path}\n5:cpu:${path}\n1:name=systemd:${path}\n0::/\n`
  );
}

export function v2ProcCgroup(path: string): string {
  return `0::${path}\n`;
}
