import { performance } from 'node:perf_hooks';
import { parseCpuList } from '../common/cpu-list.js';
import { KeyValueSchema, parseSingleNumber } from './key-value.js';
import { type CgroupLayout, cgroupDir, parentCgroup } from './layout.js';
import type { PreadFiles } from './pread-files.js';

/** CPU limits of a container; re-read at most once per TTL. */
export interface CpuLimits {
  /** Host CPUs of the effective cpuset, ascending; null when no cpuset applies (all online CPUs). */
  readonly cpuset: readonly number[] | null;
  /** The tightest CFS quota over the cgroup and its ancestors, in CPUs (quota/period); +Infinity if none. */
  readonly quotaCpus: number;
}

/** CPU time a container used since its cgroup was created, in microseconds. */
export interface CpuUsage {
  user: number;
  system: number;
  /**
   * Per host CPU, `[user0, system0, user1, system1, ...]` in µs (cgroup v1 cpuacct.usage_all);
   * null when only totals exist (cgroup v2 cpu.stat).
   */
  perCpu: Float64Array | null;
  /** Number of host CPUs described in perCpu. */
  perCpuCount: number;
}

const cpuStatSchema = new KeyValueSchema(['usage_usec', 'user_usec', 'system_usec']);

export class CpuReader {
  private readonly limitCache = new Map<string, CpuLimits & { at: number }>();
  private readonly stat = new Float64Array(3);
  private readonly usage: CpuUsage = { user: 0, system: 0, perCpu: null, perCpuCount: 0 };
  private perCpuScratch = new Float64Array(2 * 64);
  private exactScratch = new Float64Array(64);

  constructor(
    private readonly layout: CgroupLayout,
    private readonly files: PreadFiles,
    private readonly limitTtlMs = 1000,
  ) {}

  /** cpuset and quota for a container whose cpuset and cpu cgroups are given (either may be null). */
  limits(cpusetPath: string | null, cpuPath: string | null): CpuLimits {
    const key = `${cpusetPath ?? ''}\0${cpuPath ?? ''}`;
    const now = performance.now();
    const cached = this.limitCache.get(key);
    if (cached !== undefined && now - cached.at < this.limitTtlMs) return cached;
    const fresh = { at: now, cpuset: this.readCpuset(cpusetPath), quotaCpus: this.readQuota(cpuPath) };
    if (this.limitCache.size > 4096) this.limitCache.clear();
    this.limitCache.set(key, fresh);
    return fresh;
  }

  /** Fresh CPU usage of the cgroup holding CPU accounting, or null when unreadable. Reused object. */
  readUsage(path: string): CpuUsage | null {
    const v1 = this.layout.version === 1;
    const hierarchy = this.layout.hierarchy[v1 ? 'cpuacct' : 'cpu'];
    if (hierarchy === null) return null;
    const dir = cgroupDir(hierarchy, path);
    return v1 ? this.readCpuacct(dir) : this.readCpuStat(dir);
  }

  private readCpuStat(dir: string): CpuUsage | null {
    const n = this.files.read(`${dir}/cpu.stat`);
    if (n < 0) return null;
    cpuStatSchema.parse(this.files.buffer, n, this.stat);
    const [usage, user, system] = this.stat;
    if (!Number.isFinite(usage) && !Number.isFinite(user)) return null;
    const u = this.usage;
    u.perCpu = null;
    u.perCpuCount = 0;
    if (Number.isFinite(user) && Number.isFinite(system)) {
      u.user = user!;
      u.system = system!;
    } else {
      u.user = usage!;
      u.system = 0;
    }
    return u;
  }

  /**
   * cpuacct.usage_all: a `cpu user system` header, then `<cpu> <user ns> <system ns>` per CPU.
   * On current kernels (since a late-2021 cpuacct fix) its user and system columns are the
   * scheduler-tick samples (a whole tick goes to whoever runs when it fires), which overstated a
   * throttled container on a busy 2-CPU host by 10-30 % here; cpuacct.usage_percpu is the exact
   * run time per CPU (what CFS enforces the quota on). So each CPU's exact time is split into user
   * and system in the proportion usage_all gives.
   * Older kernels lack usage_all: usage_percpu_{user,sys}, then usage_percpu (totals counted as user).
   */
  private readCpuacct(dir: string): CpuUsage | null {
    const u = this.usage;
    let n = this.files.read(`${dir}/cpuacct.usage_all`);
    if (n >= 0 && this.parseUsageAll(n)) {
      n = this.files.read(`${dir}/cpuacct.usage_percpu`);
      if (n >= 0) this.splitExactTotals(n);
      return u;
    }
    n = this.files.read(`${dir}/cpuacct.usage_percpu_user`);
    if (n >= 0) {
      const users = parseNumberList(this.files.buffer, n);
      n = this.files.read(`${dir}/cpuacct.usage_percpu_sys`);
      const systems = n >= 0 ? parseNumberList(this.files.buffer, n) : [];
      return this.fillPerCpu(users, systems);
    }
    n = this.files.read(`${dir}/cpuacct.usage_percpu`);
    if (n >= 0) return this.fillPerCpu(parseNumberList(this.files.buffer, n), []);
    return null;
  }

  private parseUsageAll(len: number): boolean {
    const buf = this.files.buffer;
    let i = buf.indexOf(0x0a);
    if (i < 0 || i >= len) return false;
    i++;
    let count = 0;
    let user = 0;
    let system = 0;
    const fields = [0, 0, 0];
    while (i < len) {
      let f = 0;
      fields[0] = fields[1] = fields[2] = 0;
      while (i < len && buf[i] !== 0x0a) {
        const c = buf[i]!;
        if (c === 0x20) {
          if (f < 2) f++;
        } else if (c >= 0x30 && c <= 0x39) {
          fields[f] = fields[f]! * 10 + (c - 0x30);
        }
        i++;
      }
      i++;
      if (f < 2) continue;
      const cpu = fields[0]!;
      if (cpu >= 65536) continue;
      this.ensurePerCpu(cpu + 1);
      const cu = fields[1]! / 1000;
      const cs = fields[2]! / 1000;
      this.perCpuScratch[2 * cpu] = cu;
      this.perCpuScratch[2 * cpu + 1] = cs;
      if (cpu + 1 > count) count = cpu + 1;
      user += cu;
      system += cs;
    }
    if (count === 0) return false;
    const u = this.usage;
    u.user = user;
    u.system = system;
    u.perCpu = this.perCpuScratch;
    u.perCpuCount = count;
    return true;
  }

  /**
   * Replaces the per-CPU user/system of `usage` (from usage_all) by the exact per-CPU totals of
   * cpuacct.usage_percpu (space-separated ns, `len` bytes in the read buffer), split in the same
   * user:system proportion; a CPU without any sampled tick counts as user time. A list shorter
   * than usage_all's leaves the sampled values (mixing the two would distort the split).
   */
  private splitExactTotals(len: number): void {
    const buf = this.files.buffer;
    const u = this.usage;
    const count = u.perCpuCount;
    if (this.exactScratch.length < count) this.exactScratch = new Float64Array(2 * count);
    const exact = this.exactScratch;
    let cpu = 0;
    for (let i = 0; i < len && cpu < count;) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) {
        i++;
        continue;
      }
      let ns = 0;
      while (i < len && buf[i]! >= 0x30 && buf[i]! <= 0x39) ns = ns * 10 + (buf[i++]! - 0x30);
      exact[cpu++] = ns / 1000;
    }
    if (cpu < count) return;
    const per = this.perCpuScratch;
    let user = 0;
    let system = 0;
    for (let h = 0; h < count; h++) {
      const sampledUser = per[2 * h]!;
      const sampled = sampledUser + per[2 * h + 1]!;
      const cu = sampled > 0 ? (exact[h]! * sampledUser) / sampled : exact[h]!;
      per[2 * h] = cu;
      per[2 * h + 1] = exact[h]! - cu;
      user += cu;
      system += exact[h]! - cu;
    }
    u.user = user;
    u.system = system;
  }

  private fillPerCpu(users: number[], systems: number[]): CpuUsage | null {
    if (users.length === 0) return null;
    this.ensurePerCpu(users.length);
    let user = 0;
    let system = 0;
    for (let cpu = 0; cpu < users.length; cpu++) {
      const cu = users[cpu]! / 1000;
      const cs = (systems[cpu] ?? 0) / 1000;
      this.perCpuScratch[2 * cpu] = cu;
      this.perCpuScratch[2 * cpu + 1] = cs;
      user += cu;
      system += cs;
    }
    const u = this.usage;
    u.user = user;
    u.system = system;
    u.perCpu = this.perCpuScratch;
    u.perCpuCount = users.length;
    return u;
  }

  private ensurePerCpu(count: number): void {
    if (this.perCpuScratch.length < 2 * count) {
      const bigger = new Float64Array(2 * Math.max(count, this.perCpuScratch.length));
      bigger.set(this.perCpuScratch);
      this.perCpuScratch = bigger;
    }
  }

  /**
   * The effective cpuset: the cgroup's effective list (already the intersection with its
   * ancestors), else its configured list, else the nearest ancestor's.
   */
  private readCpuset(path: string | null): readonly number[] | null {
    const hierarchy = this.layout.hierarchy.cpuset;
    if (hierarchy === null || path === null) return null;
    const names =
      this.layout.version === 1
        ? ['cpuset.effective_cpus', 'cpuset.cpus.effective', 'cpuset.cpus']
        : ['cpuset.cpus.effective', 'cpuset.cpus'];
    for (let p: string | null = path; p !== null; p = parentCgroup(p)) {
      const dir = cgroupDir(hierarchy, p);
      for (const name of names) {
        const text = this.files.readText(`${dir}/${name}`);
        if (text === null) continue;
        const cpus = parseCpuList(text);
        if (cpus.length > 0) return cpus;
      }
    }
    return null;
  }

  /** min over the cgroup and its ancestors of quota/period, in CPUs; +Infinity when none is set. */
  private readQuota(path: string | null): number {
    const hierarchy = this.layout.hierarchy.cpu;
    if (hierarchy === null || path === null) return Number.POSITIVE_INFINITY;
    let min = Number.POSITIVE_INFINITY;
    for (let p: string | null = path; p !== null; p = parentCgroup(p)) {
      const dir = cgroupDir(hierarchy, p);
      let cpus = Number.NaN;
      if (this.layout.version === 1) {
        const quota = this.readNumber(`${dir}/cpu.cfs_quota_us`);
        const period = this.readNumber(`${dir}/cpu.cfs_period_us`);
        if (quota > 0 && period > 0) cpus = quota / period;
      } else {
        const text = this.files.readText(`${dir}/cpu.max`);
        if (text !== null) {
          const [quota, period] = text.trim().split(/\s+/);
          const q = Number(quota);
          const per = Number(period);
          if (q > 0 && per > 0) cpus = q / per;
        }
      }
      if (cpus > 0) min = Math.min(min, cpus);
    }
    return min;
  }

  private readNumber(path: string): number {
    const n = this.files.read(path);
    return n < 0 ? Number.NaN : parseSingleNumber(this.files.buffer, n);
  }
}

function parseNumberList(buf: Buffer, len: number): number[] {
  return buf
    .toString('latin1', 0, len)
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '')
    .map(Number)
    .filter((v) => Number.isFinite(v));
}

/**
 * The CPU count policy (one N everywhere): the CPUs of the effective cpuset (or the host's online
 * CPUs), and with `--enable-cfs` no more than ceil(quota/period). Never derived from shares/weight.
 * Returns the visible host CPUs; the i-th is presented as cpu<i>.
 */
export function visibleCpuList(
  limits: CpuLimits,
  hostOnline: readonly number[],
  enableCfs: boolean,
): readonly number[] {
  let cpus = limits.cpuset ?? hostOnline;
  if (limits.cpuset !== null && hostOnline.length > 0) {
    const online = new Set(hostOnline);
    const filtered = cpus.filter((c) => online.has(c));
    if (filtered.length > 0) cpus = filtered;
  }
  if (enableCfs && Number.isFinite(limits.quotaCpus)) {
    const n = Math.max(1, Math.ceil(limits.quotaCpus - 1e-9));
    if (n < cpus.length) cpus = cpus.slice(0, n);
  }
  return cpus;
}
