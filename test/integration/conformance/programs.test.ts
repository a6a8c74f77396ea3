/**
 * Conformance: the programs users run inside a container, run for real inside `lxcfs-ts run`
 * (its private lxcfs-ts daemon: `--enable-cfs -l`), and what they print checked against the
 * sandbox's limits, plus the invariants every view must keep together: one CPU count N
 * everywhere, counters that never go backwards, memory that adds up, times that agree, CPU time
 * accounted as the work really done within the quota, no empty file.
 *
 * One sandbox per limit set runs test/fixtures/conformance/programs.sh, which prints every
 * program's output in a section of its own; the checks below parse those sections.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { requireRoot, runLxcfsTs } from '../sandbox/helpers.js';
import {
  assertMonotonic,
  busyIdle,
  conformanceFixtures,
  cpuList,
  type CpuLines,
  isPsItself,
  meminfoFields,
  numberIn,
  parseFree,
  parseLoadavg,
  parseLscpu,
  parsePs,
  parseSections,
  parseTop,
  parseUptimeCommand,
  parseVmstat,
  section,
} from './program-output.js';

const hostOnline = cpuList(readFileSync('/sys/devices/system/cpu/online', 'latin1'));
const hostMeminfo = meminfoFields(readFileSync('/proc/meminfo', 'latin1'));
const MiB = 1024 * 1024;

interface Variant {
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

const lastCpu = hostOnline[hostOnline.length - 1]!;
const variants: Variant[] = [
  // The reference case: two busy processes against a 1-CPU quota, long enough (> 5 s) for
  // the load average sampler to count them.
  {
    args: ['--memory', '512M', '--cpus', '1'],
    n: 1,
    affinity: hostOnline.length,
    quotaCpus: 1,
    memoryBytes: 512 * MiB,
    busySeconds: 5.5,
    busyProcs: 2,
  },
  // A cpuset of the host's last CPU: shown as cpu0 everywhere.
  {
    args: ['--memory', '512M', '--cpuset', String(lastCpu)],
    n: 1,
    affinity: 1,
    quotaCpus: null,
    memoryBytes: 512 * MiB,
    busySeconds: 3,
    busyProcs: 1,
  },
  // A fractional quota and no memory limit: N = ceil(1.5) = 2, busy time bounded by 1.5 CPUs.
  {
    args: ['--cpus', '1.5'],
    n: 2,
    affinity: hostOnline.length,
    quotaCpus: 1.5,
    memoryBytes: null,
    busySeconds: 3,
    busyProcs: 2,
  },
];

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);

for (const v of variants) {
  describe(`conformance: real programs in lxcfs-ts run ${v.args.join(' ')}`, () => {
    let out = new Map<string, string>();
    before(async () => {
      if (process.getuid?.() !== 0) return;
      assert.ok(hostOnline.length >= 2, 'the conformance suite needs a host with at least 2 CPUs');
      const script = join(conformanceFixtures, 'programs.sh');
      const result = await runLxcfsTs(
        ['run', ...v.args, '--', 'sh', script, process.execPath, conformanceFixtures, String(v.busySeconds), String(v.busyProcs)],
        90_000,
      );
      assert.equal(result.code, 0, `run failed (${result.code}): ${result.stderr}`);
      out = parseSections(result.stdout);
      assert.ok(out.has('end'), `the script did not finish:\n${result.stdout}\n${result.stderr}`);
    });

    it(`one CPU count N = ${v.n} in cpuinfo, /proc/stat, online, possible, present and the cpuN directories`, (t) => {
      if (!requireRoot(t)) return;
      assert.deepEqual(section(out, 'cpuinfo-processors').split('\n'), range(v.n).map(String));
      assert.deepEqual(section(out, 'stat-cpu-lines').split('\n'), range(v.n).map((i) => `cpu${i}`));
      for (const file of ['online', 'possible', 'present']) assert.deepEqual(cpuList(section(out, file)), range(v.n), file);
      assert.deepEqual(section(out, 'cpu-dirs').split('\n'), range(v.n).map((i) => `cpu${i}`));
    });

    it('getconf, Python, Node and lscpu count N CPUs; nproc counts the affinity mask', (t) => {
      if (!requireRoot(t)) return;
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
    });

    it('free, top, vmstat, /proc/meminfo and Node agree on the memory limit; memory adds up', (t) => {
      if (!requireRoot(t)) return;
      const totalBytes = v.memoryBytes ?? hostMeminfo.get('MemTotal')! * 1024;
      const meminfo = meminfoFields(section(out, 'meminfo'));
      assert.equal(meminfo.get('MemTotal'), totalBytes / 1024);
      assert.ok(meminfo.get('MemTotal')! >= meminfo.get('MemAvailable')!, 'MemTotal >= MemAvailable');
      assert.ok(meminfo.get('MemTotal')! >= meminfo.get('MemFree')!, 'MemTotal >= MemFree');
      assert.ok(meminfo.get('MemFree')! > 0 && meminfo.get('MemAvailable')! > 0);
      assert.ok(meminfo.get('SwapTotal')! <= hostMeminfo.get('SwapTotal')!, 'no more swap than the host has');
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
      assert.equal(node.totalmem, v.memoryBytes ?? totalmem());
      assert.ok(node.freemem! > 0 && node.freemem! <= node.totalmem!);
      // glibc's _SC_PHYS_PAGES asks sysinfo(2), which no file view reaches without the syscall view (docs/views.md).
      t.diagnostic(`sysconf(_SC_PHYS_PAGES) * page size = ${section(out, 'sysinfo')} (sysinfo(2): the host's)`);
    });

    it('uptime, top, ps and Node agree: container uptime, no start time in the future, no negative elapsed time', (t) => {
      if (!requireRoot(t)) return;
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
    });

    it('CPU time in /proc/stat is the work done, within the quota; busy + idle tracks N x wall; nothing goes backwards', (t) => {
      if (!requireRoot(t)) return;
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
    });

    it('load average: the container\'s, the same in /proc/loadavg, uptime, top and Node; vmstat r/b are the container\'s', (t) => {
      if (!requireRoot(t)) return;
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
    });

    it('an unprivileged process reads what it could read on the host: every view file but slabinfo', (t) => {
      if (!requireRoot(t)) return;
      for (const line of section(out, 'unprivileged').split('\n')) {
        const [file, verdict] = line.split(' ');
        // the host's own file, as a user other than its owner would find it
        const othersMayRead = (statSync(file!).mode & 0o004) !== 0;
        assert.equal(verdict, othersMayRead ? 'readable' : 'denied', `${file} as uid 65534`);
      }
      assert.match(section(out, 'unprivileged'), /^\/proc\/slabinfo denied$/m);
    });

    it('no view file is empty', (t) => {
      if (!requireRoot(t)) return;
      const sizes = section(out, 'sizes').split('\n');
      assert.equal(sizes.length, 14);
      for (const line of sizes) {
        const [file, size] = line.split(' ');
        assert.ok(Number(size) > 0, `${file}: ${size}`);
      }
    });
  });
}

describe('conformance: without a time namespace (Kubernetes today), lxcfs-ts run --no-timens --uptime host --cpus 1', () => {
  it('uptime and btime are the host\'s, so ps start and elapsed times stay consistent', async (t) => {
    if (!requireRoot(t)) return;
    const hostUptime = () => Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    const hostBtime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))![1];
    const script = [
      'echo "=== start-epoch"; date +%s',
      'echo "=== proc-uptime"; cat /proc/uptime',
      'echo "=== btime"; grep ^btime /proc/stat',
      'echo "=== uptime-cmd"; uptime',
      'echo "=== ps"; TZ=UTC ps -eo pid,etimes,etime,lstart,args',
      'echo "=== now-epoch"; date +%s',
    ].join('\n');
    const before = hostUptime();
    const result = await runLxcfsTs(['run', '--no-timens', '--uptime', 'host', '--cpus', '1', '--', 'sh', '-c', script]);
    const after = hostUptime();
    assert.equal(result.code, 0, result.stderr);
    const out = parseSections(result.stdout);
    const [uptime, idle] = section(out, 'proc-uptime').split(' ').map(Number);
    assert.ok(uptime! >= before - 0.01 && uptime! <= after + 0.01, `uptime ${uptime} outside the host's ${before}..${after}`);
    assert.ok(idle! >= 0 && idle! <= uptime!, `idle ${idle} of 1 CPU over ${uptime} s`);
    assert.equal(section(out, 'btime'), `btime ${hostBtime}`);
    assert.notEqual(parseUptimeCommand(section(out, 'uptime-cmd')).up, '0 min');
    const now = numberIn(out, 'now-epoch');
    const lifetime = now - numberIn(out, 'start-epoch');
    for (const row of parsePs(section(out, 'ps'))) {
      assert.ok(row.lstart <= now + 1, `ps: ${row.args} starts in the future`);
      if (isPsItself(row)) continue;
      assert.ok(row.etimes >= 0 && row.etimes <= lifetime + 2, `ps: ${row.args} elapsed ${row.etimes} s in a ${lifetime} s old sandbox`);
    }
  });
});

describe('conformance: without a time namespace, --uptime container (the default), lxcfs-ts run --no-timens', () => {
  it('/proc/uptime is the sandbox\'s age and btime the host\'s, so ps START of PID 1 is its real start', async (t) => {
    if (!requireRoot(t)) return;
    const hostUptime = () => Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    const hostBtime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))![1]);
    const script = [
      'echo "=== start-epoch"; date +%s',
      'sleep 2',
      // PID 1 is this sh: its start in clock ticks after the host's boot (no time namespace).
      'echo "=== init-start"; cut -d" " -f22 /proc/1/stat',
      'echo "=== proc-uptime"; cat /proc/uptime',
      'echo "=== btime"; grep ^btime /proc/stat',
      'echo "=== uptime-since"; TZ=UTC uptime -s',
      'echo "=== ps"; TZ=UTC ps -eo pid,etimes,etime,lstart,args',
      'echo "=== now-epoch"; date +%s',
    ].join('\n');
    const before = hostUptime();
    const result = await runLxcfsTs(['run', '--no-timens', '--', 'sh', '-c', script]);
    const after = hostUptime();
    assert.equal(result.code, 0, result.stderr);
    const out = parseSections(result.stdout);
    const initStartSec = numberIn(out, 'init-start') / 100;
    const [uptime] = section(out, 'proc-uptime').split(' ').map(Number);
    // The host's uptime at the read, minus PID 1's start: the sandbox's age, to the centisecond.
    assert.ok(
      uptime! >= before - initStartSec - 0.02 && uptime! <= after - initStartSec + 0.02,
      `uptime ${uptime}, PID 1 started at ${initStartSec} s, host uptime ${before}..${after}`,
    );
    const lifetime = numberIn(out, 'now-epoch') - numberIn(out, 'start-epoch');
    assert.ok(uptime! >= 2 && uptime! <= lifetime + 1, `uptime ${uptime} in a ${lifetime} s old sandbox`);
    assert.equal(section(out, 'btime'), `btime ${hostBtime}`);
    const pid1 = parsePs(section(out, 'ps')).find((row) => row.pid === 1)!;
    const realStart = hostBtime + initStartSec;
    assert.ok(Math.abs(pid1.lstart - realStart) <= 1, `ps START of PID 1 ${pid1.lstart}, real ${realStart}`);
    assert.ok(Math.abs(pid1.lstart - numberIn(out, 'start-epoch')) <= 1, 'ps START of PID 1 is when the script began');
    // uptime -s (now - uptime): the sandbox's start too.
    const since = Date.parse(`${section(out, 'uptime-since').replace(' ', 'T')}Z`) / 1000;
    assert.ok(Math.abs(since - realStart) <= 1, `uptime -s ${section(out, 'uptime-since')}, real start ${realStart}`);
  });
});
