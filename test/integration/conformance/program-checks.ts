/**
 * The checks of the conformance suite, apart from where the programs ran: the v1 tier runs
 * test/fixtures/conformance/programs.sh in `lxcfs-ts run` on this machine, the v2 tier in a QEMU
 * guest on cgroup v2; both assert the same things on what the programs printed. A variant is the
 * set of limits one sandbox ran under; the machine is the one the sandbox ran on (its MemTotal,
 * swap and the modes of its own /proc files).
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import {
  assertMonotonic,
  busyIdle,
  cpuList,
  type CpuLines,
  isPsItself,
  meminfoFields,
  numberIn,
  parseFree,
  parseLoadavg,
  parseLscpu,
  parsePs,
  parseTop,
  parseUptimeCommand,
  parseVmstat,
  section,
} from './program-output.js';

const MiB = 1024 * 1024;

export interface Variant {
  /** `run` options. */
  args: string[];
  /** The CPU count N every file must show. */
  n: number;
  /** CPUs the sandbox's processes may run on (sched_getaffinity). */
  affinity: number;
  /** CFS quota in CPUs, when set. */
  quotaCpus: number | null;
  memoryBytes: number | null;
  busySeconds: number;
  busyProcs: number;
}

export interface Machine {
  /** The machine's own /proc/meminfo, in kB. */
  meminfo: Map<string, number>;
  /** Node's os.totalmem() outside any sandbox. */
  totalmem: number;
  /** The mode bits of one of the machine's own files. */
  mode(file: string): number;
}

export interface ConformanceCheck {
  title(v: Variant): string;
  run(out: Map<string, string>, v: Variant, m: Machine, t: TestContext): void;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);

export const conformanceChecks: ConformanceCheck[] = [
  {
    title: (v) => `one CPU count N = ${v.n} in cpuinfo, /proc/stat, online, possible, present and the cpuN directories`,
    run: (out, v, _m, _t) => {
      assert.deepEqual(section(out, 'cpuinfo-processors').split('\n'), range(v.n).map(String));
      assert.deepEqual(section(out, 'stat-cpu-lines').split('\n'), range(v.n).map((i) => `cpu${i}`));
      for (const file of ['online', 'possible', 'present']) assert.deepEqual(cpuList(section(out, file)), range(v.n), file);
      assert.deepEqual(section(out, 'cpu-dirs').split('\n'), range(v.n).map((i) => `cpu${i}`));
    },
  },

  {
    title: () => `getconf, Python, Node and lscpu count N CPUs; nproc counts the affinity mask`,
    run: (out, v, _m, _t) => {
      assert.equal(numberIn(out, 'getconf-conf'), v.n, 'getconf _NPROCESSORS_CONF (glibc: possible)');
      assert.equal(numberIn(out, 'getconf-onln'), v.n, 'getconf _NPROCESSORS_ONLN (glibc: online)');
      assert.equal(numberIn(out, 'python-cpu-count'), v.n, 'Python os.cpu_count()');
      const node = JSON.parse(section(out, 'node')) as Record<string, number>;
      assert.equal(node.cpus, v.n, 'Node os.cpus().length (/proc/stat + /proc/cpuinfo)');
      const lscpu = parseLscpu(section(out, 'lscpu'));
      assert.equal(Number(lscpu.get('CPU(s)')), v.n);
      assert.deepEqual(cpuList(lscpu.get('On-line CPU(s) list')!), range(v.n));
      const topology = ['Thread(s) per core', 'Core(s) per socket', 'Socket(s)'].map((k) => Number(lscpu.get(k)));
      assert.equal(topology.reduce((a, b) => a * b, 1), v.n, `lscpu topology ${topology.join(' x ')}`);
      // sched_getaffinity is the kernel's, not a file: coreutils 9.1 nproc and libuv's
      // availableParallelism follow the cpuset but not a quota (documented in docs/views.md).
      assert.equal(numberIn(out, 'affinity'), v.affinity);
      assert.equal(numberIn(out, 'nproc'), v.affinity);
      assert.equal(node.availableParallelism, v.affinity);
      // nproc --all reads `possible` but takes the affinity mask when that is larger (gnulib
      // distrusts counts of 1 or 2, which /sys-less containers report)
      assert.equal(numberIn(out, 'nproc-all'), Math.max(v.n, v.affinity));
    },
  },

  {
    title: () => `free, top, vmstat, /proc/meminfo and Node agree on the memory limit; memory adds up`,
    run: (out, v, m, t) => {
      const totalBytes = v.memoryBytes ?? m.meminfo.get('MemTotal')! * 1024;
      const meminfo = meminfoFields(section(out, 'meminfo'));
      assert.equal(meminfo.get('MemTotal'), totalBytes / 1024);
      assert.ok(meminfo.get('MemTotal')! >= meminfo.get('MemAvailable')!, 'MemTotal >= MemAvailable');
      assert.ok(meminfo.get('MemTotal')! >= meminfo.get('MemFree')!, 'MemTotal >= MemFree');
      assert.ok(meminfo.get('MemFree')! > 0 && meminfo.get('MemAvailable')! > 0);
      assert.ok(meminfo.get('SwapTotal')! <= m.meminfo.get('SwapTotal')!, 'no more swap than the host has');
      assert.ok(meminfo.get('SwapFree')! <= meminfo.get('SwapTotal')!);
      const freeB = parseFree(section(out, 'free-b'));
      assert.equal(freeB.mem.total, totalBytes);
      assert.ok(freeB.mem.free <= freeB.mem.total && freeB.mem.available <= freeB.mem.total);
      assert.ok(freeB.mem.used >= 0 && freeB.mem.used <= freeB.mem.total);
      assert.equal(parseFree(section(out, 'free-m')).mem.total, Math.floor(totalBytes / MiB));
      const top = parseTop(section(out, 'top'));
      near(top.memMiB.total, totalBytes / MiB, 0.1, 'top MiB Mem total');
      assert.ok(top.memMiB.free <= top.memMiB.total && top.memMiB.used <= top.memMiB.total);
      assert.ok(top.swapMiB.availMem <= top.memMiB.total);
      // %MEM is RES against the container's MemTotal
      for (const p of top.processes) near(p.memPercent, (p.res / (totalBytes / 1024)) * 100, 0.1, `top %MEM of ${p.command}`);
      const vmstat = parseVmstat(section(out, 'vmstat'));
      assert.ok(vmstat.get('free')! <= totalBytes / 1024, `vmstat free ${vmstat.get('free')} KiB`);
      const node = JSON.parse(section(out, 'node')) as Record<string, number>;
      assert.equal(node.totalmem, v.memoryBytes ?? m.totalmem);
      assert.ok(node.freemem! > 0 && node.freemem! <= node.totalmem!);
      // glibc's _SC_PHYS_PAGES asks sysinfo(2), which no file view reaches without the syscall view (docs/views.md).
      t.diagnostic(`sysconf(_SC_PHYS_PAGES) * page size = ${section(out, 'sysinfo')} (sysinfo(2): the host's)`);
    },
  },

  {
    title: () => `uptime, top, ps and Node agree: container uptime, no start time in the future, no negative elapsed time`,
    run: (out, v, _m, _t) => {
      const [uptime, idle] = section(out, 'proc-uptime').split(' ').map(Number);
      const now = numberIn(out, 'now-epoch');
      const lifetime = now - numberIn(out, 'start-epoch');
      // the sandbox's time namespace starts its uptime at ~0
      // (the namespace is made a moment before PID 1 starts: more on a loaded host)
      assert.ok(uptime! >= lifetime - 1 && uptime! <= lifetime + 5, `uptime ${uptime} s, sandbox alive ${lifetime} s`);
      assert.ok(idle! >= 0 && idle! <= v.n * uptime! + 0.1, `idle ${idle} of ${v.n} CPUs over ${uptime} s`);
      assert.equal(parseUptimeCommand(section(out, 'uptime-cmd')).up, '0 min');
      assert.equal(parseTop(section(out, 'top')).up, '0 min');
      const boot = Date.parse(`${section(out, 'uptime-since').trim().replace(' ', 'T')}Z`) / 1000;
      near(boot, now - uptime!, 2, 'uptime -s vs now - /proc/uptime');
      const rows = parsePs(section(out, 'ps'));
      assert.ok(rows.length >= 3 && rows.length < 10, `ps lists the sandbox's processes only:\n${section(out, 'ps')}`);
      for (const row of rows) {
        assert.ok(row.lstart <= now + 1, `ps: ${row.args} starts in the future (${row.lstart} > ${now})`);
        assert.ok(row.lstart >= boot - 2, `ps: ${row.args} started before the container's boot`);
        if (isPsItself(row)) continue;
        assert.ok(row.etimes >= 0 && row.etimes <= uptime! + 1, `ps: ${row.args} elapsed ${row.etimes} s`);
        assert.equal(row.etime, row.etimes, 'ETIME and ETIMES');
      }
      const init = rows.find((r) => r.pid === 1);
      const late = rows.find((r) => r.pid === numberIn(out, 'late-pid'));
      assert.ok(init && late, 'ps shows PID 1 and the late process');
      near(init.etimes, lifetime, 2, 'ps ETIME of PID 1 vs the sandbox age');
      // the late process started after the busy phase, seconds after PID 1; ps and /proc agree on it
      const ticksApart = (numberIn(out, 'late-starttime') - numberIn(out, 'pid1-starttime')) / 100;
      assert.ok(ticksApart >= v.busySeconds - 0.5, `late process started ${ticksApart} s after PID 1`);
      near(late.lstart - init.lstart, ticksApart, 1.5, 'ps STARTED difference');
      near(init.etimes - late.etimes, ticksApart, 1.5, 'ps ELAPSED difference');
      assert.ok(numberIn(out, 'late-starttime') / 100 <= uptime!, 'a start time after the uptime');
      const node = JSON.parse(section(out, 'node')) as Record<string, number>;
      const nodeLate = JSON.parse(section(out, 'node-late')) as { uptime: number };
      assert.ok(node.uptime! >= 0 && node.uptime! <= nodeLate.uptime && nodeLate.uptime <= uptime! + 0.01);
    },
  },

  {
    title: () => `CPU time in /proc/stat is the work done, within the quota; busy + idle tracks N x wall; nothing goes backwards`,
    run: (out, v, _m, t) => {
      const busy = JSON.parse(section(out, 'busy')) as {
        wall: number;
        childrenCpu: number;
        selfCpu: number;
        statBefore: CpuLines;
        statAfter: CpuLines;
        uptimeBefore: number[];
        uptimeAfter: number[];
        samples: CpuLines[];
      };
      const before = busyIdle(busy.statBefore[0]!);
      const after = busyIdle(busy.statAfter[0]!);
      const accounted = after.busy - before.busy;
      const idle = after.idle - before.idle;
      const work = busy.childrenCpu + busy.selfCpu;
      t.diagnostic(
        `wall ${busy.wall.toFixed(2)} s, work ${work.toFixed(2)} s, /proc/stat busy ${accounted.toFixed(2)} s idle ${idle.toFixed(2)} s`,
      );
      // the work really ran (other work on the host may slow it down a lot, never to nothing)
      const ceiling = Math.min(v.busyProcs, v.quotaCpus ?? Infinity, v.affinity);
      assert.ok(work >= 0.1 * ceiling * busy.wall, `only ${work} s of work in ${busy.wall} s`);
      near(accounted, work, 0.05 * work + 0.1, '/proc/stat busy time vs the CPU time of the work');
      if (v.quotaCpus !== null) {
        assert.ok(accounted <= v.quotaCpus * busy.wall * 1.05 + 0.1, `busy ${accounted} s > quota ${v.quotaCpus} x ${busy.wall} s`);
      }
      near(accounted + idle, v.n * busy.wall, 0.05 * v.n * busy.wall + 0.15, 'busy + idle vs N x wall');
      // the visible CPUs carry the work, wherever on the host it ran
      const perCpuBusy = range(v.n).reduce(
        (sum, i) => sum + busyIdle(busy.statAfter[i + 1]!).busy - busyIdle(busy.statBefore[i + 1]!).busy,
        0,
      );
      near(perCpuBusy, accounted, 0.02 * (v.n + 1), 'per-CPU lines sum to the cpu line');
      // (reads around the work take a moment, longer on a loaded host)
      near(busy.uptimeAfter[0]! - busy.uptimeBefore[0]!, busy.wall, 0.3, '/proc/uptime advance');
      assert.ok(
        busy.uptimeAfter[1]! >= after.idle - 0.02 && busy.uptimeAfter[1]! <= after.idle + 0.3 * v.n,
        `/proc/uptime idle ${busy.uptimeAfter[1]} vs /proc/stat idle ${after.idle} read just before`,
      );
      const end = section(out, 'stat-end')
        .split('\n')
        .filter((l) => l.startsWith('cpu'))
        .map((l) => l.split(/\s+/));
      assertMonotonic([busy.statBefore, ...busy.samples, busy.statAfter, end], '/proc/stat');
      assert.ok(busy.samples.length >= 10, `${busy.samples.length} samples`);
    },
  },

  {
    title: () => `load average: the container's, the same in /proc/loadavg, uptime, top and Node; vmstat r/b are the container's`,
    run: (out, v, _m, _t) => {
      const before = parseLoadavg(section(out, 'loadavg-before'));
      const after = parseLoadavg(section(out, 'loadavg-after'));
      const same = (avg: number[], what: string) =>
        assert.ok(
          [before.avg, after.avg].some((ref) => ref.every((x, i) => Math.abs(x - avg[i]!) < 0.005)),
          `${what} ${avg} vs /proc/loadavg ${before.avg} / ${after.avg}`,
        );
      same(parseTop(section(out, 'top')).loadavg, 'top');
      same(parseUptimeCommand(section(out, 'uptime-cmd')).loadavg, 'uptime');
      same((JSON.parse(section(out, 'node-late')) as { loadavg: number[] }).loadavg, 'Node os.loadavg()');
      // the container's threads, not the host's hundreds
      assert.ok(after.total >= 2 && after.total < 20, `loadavg threads ${after.total}`);
      const vmstat = parseVmstat(section(out, 'vmstat'));
      assert.ok(vmstat.get('r')! <= v.busyProcs + 3 && vmstat.get('b')! <= 3, `vmstat r ${vmstat.get('r')} b ${vmstat.get('b')}`);
      if (v.busySeconds > 5.2) {
      // at least one 5 s sampling round saw the busy processes
        assert.ok(before.avg[0]! >= 0.05, `1-minute load ${before.avg[0]} after ${v.busyProcs} busy processes`);
      }
    },
  },

  {
    title: () => `an unprivileged process reads what it could read on the host: every view file but slabinfo`,
    run: (out, _v, m, _t) => {
      for (const line of section(out, 'unprivileged').split('\n')) {
        const [file, verdict] = line.split(' ');
        // the host's own file, as a user other than its owner would find it
        const othersMayRead = (m.mode(file!) & 0o004) !== 0;
        assert.equal(verdict, othersMayRead ? 'readable' : 'denied', `${file} as uid 65534`);
      }
      assert.match(section(out, 'unprivileged'), /^\/proc\/slabinfo denied$/m);
    },
  },

  {
    title: () => `no view file is empty`,
    run: (out, _v, _m, _t) => {
      const sizes = section(out, 'sizes').split('\n');
      assert.equal(sizes.length, 14);
      for (const line of sizes) {
        const [file, size] = line.split(' ');
        assert.ok(Number(size) > 0, `${file}: ${size}`);
      }
    },
  }];

/** The checks that need only the CPU-count and memory sections (no busy, load or time phases). */
export const cpuAndMemoryChecks = conformanceChecks.slice(0, 3);
