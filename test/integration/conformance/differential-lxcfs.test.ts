/**
 * Differential: Debian's lxcfs (5.0.3, `--enable-cfs -l`) and lxcfs-ts on the same machine, for
 * the same limits, where the two must agree (MemTotal, SwapTotal, the CPU count of cpuinfo and
 * /proc/stat, online) and where they differ on purpose (docs/views.md).
 *
 * Two levels:
 *  - files: one real container (cgroups + pid namespace) reads every file through lxcfs; our views
 *    are computed in-process for the same container;
 *  - programs: the same script of real programs (test/fixtures/conformance/programs.sh) runs in
 *    `lxcfs-ts run --view <lxcfs>` and in `lxcfs-ts run` (its private lxcfs-ts daemon) with the
 *    same limits, and what the programs print is compared.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import { defaultViewOptions, type ViewOptions } from '../../../src/common/options.js';
import { field, nsPidToHost, requireRootAndV1, sleep, TestCgroups } from '../cgroup/real-cgroups.js';
import { type LxcfsView, runLxcfsTs, startLxcfsView } from '../sandbox/helpers.js';
import {
  busyIdle,
  conformanceFixtures,
  cpuList,
  type CpuLines,
  isPsItself,
  meminfoFields,
  numberIn,
  parseFree,
  parseLscpu,
  parsePs,
  parseSections,
  section,
} from './program-output.js';

const MiB = 1024 * 1024;
const near = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);
const hostOnline = cpuList(readFileSync('/sys/devices/system/cpu/online', 'latin1'));
let lxcfs: LxcfsView | null = null;

describe('differential: Debian lxcfs and lxcfs-ts', () => {
  before(async () => {
    requireRootAndV1();
    lxcfs = await startLxcfsView('conformance-diff');
  });
  after(async () => {
    await lxcfs?.stop();
  });

  describe('files of one container: read through lxcfs, computed by our views', () => {
    const cg = new TestCgroups(`lxcfs-ts-test-views-diff-${process.pid}`);
    const options: ViewOptions = { ...defaultViewOptions, enableCfs: true };
    const files = ['proc/meminfo', 'proc/cpuinfo', 'sys/devices/system/cpu/online', 'proc/swaps', 'proc/stat'];
    let theirs: Record<string, string> = {};
    let initPid = 0;

    before(async () => {
      const mnt = lxcfs!.viewDir;
      const container = cg.create();
      cg.set('memory', container, 'memory.limit_in_bytes', String(256 * MiB));
      cg.set('memory', container, 'memory.memsw.limit_in_bytes', String(384 * MiB));
      cg.set('cpu', container, 'cpu.cfs_quota_us', '100000');
      cg.set('cpu', container, 'cpu.cfs_period_us', '100000');
      // The container's init reads every file through lxcfs, then stays for our reads.
      const reads = files.map((f) => `echo "=== ${f}"; cat ${mnt}/${f}`).join('; ');
      const child = cg.run(container, `unshare -fp --mount-proc sh -c '${reads}; exec sleep 120'`);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString('latin1');
      });
      initPid = nsPidToHost(await cg.waitForProcs(container, 2), 1);
      for (let i = 0; i < 100 && !out.includes(`=== ${files[files.length - 1]}`); i++) await sleep(50);
      await sleep(200);
      theirs = Object.fromEntries(
        out
          .split('=== ')
          .filter((part) => part !== '')
          .map((part) => [part.slice(0, part.indexOf('\n')), part.slice(part.indexOf('\n') + 1)]),
      );
    });
    after(async () => {
      await cg.cleanup();
    });

    it('agrees on MemTotal, SwapTotal, the cpuinfo CPU count and online', () => {
      const ours = createContainerViewSource(options, createSharedViewState(options), silentLogger);
      const mine = (f: string) => ours.content(f, initPid).toString();
      assert.equal(field(mine('proc/meminfo'), 'MemTotal'), field(theirs['proc/meminfo']!, 'MemTotal'));
      assert.equal(field(mine('proc/meminfo'), 'MemTotal'), 262144);
      assert.equal(field(mine('proc/meminfo'), 'SwapTotal'), field(theirs['proc/meminfo']!, 'SwapTotal'));
      const count = (cpuinfo: string) => (cpuinfo.match(/^processor\t: /gm) ?? []).length;
      assert.equal(count(mine('proc/cpuinfo')), count(theirs['proc/cpuinfo']!));
      assert.equal(count(mine('proc/cpuinfo')), 1);
      assert.equal(mine('sys/devices/system/cpu/online'), theirs['sys/devices/system/cpu/online']);
      const cpuLines = (stat: string) => stat.split('\n').filter((l) => /^cpu\d/.test(l)).length;
      assert.equal(cpuLines(mine('proc/stat')), cpuLines(theirs['proc/stat']!));
    });

    it('differs where documented: swaps layout, stat counters from the cgroup history', () => {
      const ours = createContainerViewSource(options, createSharedViewState(options), silentLogger);
      const swaps = ours.content('proc/swaps', initPid).toString();
      // header: the kernel's (double tabs between Size, Used, Priority); LXCFS writes single tabs
      assert.equal(swaps.split('\n')[0], readFileSync('/proc/swaps', 'latin1').split('\n')[0]);
      assert.notEqual(theirs['proc/swaps']!.split('\n')[0], swaps.split('\n')[0]);
      // stat: LXCFS (cpuview) starts a new container at all zeros; ours starts from the cgroup's
      // history and the container's uptime (its age: no time namespace, --uptime container), so
      // busy + idle of the N CPUs matches N x uptime
      const idle = Number(ours.content('proc/stat', initPid).toString().split(/\s+/)[4]);
      const uptime = Number(ours.content('proc/uptime', initPid).toString().split(' ')[0]);
      const stat = readFileSync(`/proc/${initPid}/stat`, 'latin1');
      const age = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]) -
        Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) / 100;
      assert.ok(Math.abs(uptime - age) < 0.5, `uptime ${uptime} s vs the container's age ${age} s`);
      assert.ok(Math.abs(idle / 100 - uptime) < 2, `idle ${idle / 100} s vs uptime ${uptime} s`);
    });
  });

  describe('programs in lxcfs-ts run --memory 512M --cpus 1: --view <lxcfs> vs the private lxcfs-ts daemon', () => {
    const limits = ['--memory', '512M', '--cpus', '1'];
    let theirs = new Map<string, string>();
    let ours = new Map<string, string>();

    const runPrograms = async (viewArgs: string[]) => {
      const script = join(conformanceFixtures, 'programs.sh');
      const result = await runLxcfsTs(
        ['run', ...viewArgs, ...limits, '--', 'sh', script, process.execPath, conformanceFixtures, '2', '2'],
        90_000,
      );
      assert.equal(result.code, 0, `run ${viewArgs.join(' ')} failed (${result.code}): ${result.stderr}`);
      const sections = parseSections(result.stdout);
      assert.ok(sections.has('end'), `the script did not finish:\n${result.stdout}`);
      return sections;
    };

    before(async () => {
      assert.ok(hostOnline.length >= 2, 'the differential test needs a host with at least 2 CPUs');
      theirs = await runPrograms(['--view', lxcfs!.viewDir]);
      ours = await runPrograms([]);
    });

    it('agree: memory totals (meminfo, free, Node), swap, and the CPU count of cpuinfo, /proc/stat, online, getconf, Python, Node', () => {
      const both = (f: (s: Map<string, string>) => unknown, what: string, expected?: unknown) => {
        assert.deepEqual(f(ours), f(theirs), `${what}: lxcfs-ts vs lxcfs`);
        if (expected !== undefined) assert.deepEqual(f(ours), expected, what);
      };
      both((s) => meminfoFields(section(s, 'meminfo')).get('MemTotal'), 'MemTotal', 524288);
      both((s) => meminfoFields(section(s, 'meminfo')).get('SwapTotal'), 'SwapTotal');
      both((s) => parseFree(section(s, 'free-b')).mem.total, 'free -b total', 512 * MiB);
      both((s) => parseFree(section(s, 'free-b')).swap.total, 'free -b swap total');
      both((s) => (JSON.parse(section(s, 'node')) as { totalmem: number }).totalmem, 'Node os.totalmem()', 512 * MiB);
      both((s) => section(s, 'cpuinfo-processors'), 'cpuinfo processors', '0');
      both((s) => section(s, 'stat-cpu-lines'), '/proc/stat cpu lines', 'cpu0');
      both((s) => section(s, 'online'), 'online', '0');
      both((s) => numberIn(s, 'getconf-onln'), 'getconf _NPROCESSORS_ONLN', 1);
      both((s) => numberIn(s, 'python-cpu-count'), 'Python os.cpu_count()', 1);
      both((s) => (JSON.parse(section(s, 'node')) as { cpus: number }).cpus, 'Node os.cpus().length', 1);
    });

    it('CPU time of two busy loops against the 1-CPU quota, as each /proc/stat accounts it (reported, not compared)', (t) => {
      for (const [name, s] of [['lxcfs-ts', ours], ['lxcfs', theirs]] as const) {
        const busy = JSON.parse(section(s, 'busy')) as { wall: number; childrenCpu: number; selfCpu: number; statBefore: CpuLines; statAfter: CpuLines };
        const accounted = busyIdle(busy.statAfter[0]!).busy - busyIdle(busy.statBefore[0]!).busy;
        const idle = busyIdle(busy.statAfter[0]!).idle - busyIdle(busy.statBefore[0]!).idle;
        t.diagnostic(
          `${name}: wall ${busy.wall.toFixed(2)} s, work ${(busy.childrenCpu + busy.selfCpu).toFixed(2)} s, /proc/stat busy ${accounted.toFixed(2)} s, idle ${idle.toFixed(2)} s`,
        );
        if (name === 'lxcfs-ts') near(accounted, busy.childrenCpu + busy.selfCpu, 0.05 * busy.wall + 0.1, 'lxcfs-ts busy vs work');
      }
    });

    it('differ as documented: possible, present and the cpuN directories (LXCFS: the host\'s), so getconf _NPROCESSORS_CONF and lscpu', () => {
      const host = hostOnline.length;
      assert.deepEqual(cpuList(section(theirs, 'possible')), cpuList(readFileSync('/sys/devices/system/cpu/possible', 'latin1')));
      assert.deepEqual(cpuList(section(theirs, 'present')), cpuList(readFileSync('/sys/devices/system/cpu/present', 'latin1')));
      assert.equal(section(ours, 'possible'), '0');
      assert.equal(section(ours, 'present'), '0');
      assert.equal(section(theirs, 'cpu-dirs').split('\n').length, host);
      assert.deepEqual(section(ours, 'cpu-dirs').split('\n'), ['cpu0']);
      assert.equal(numberIn(theirs, 'getconf-conf'), host);
      assert.equal(numberIn(ours, 'getconf-conf'), 1);
      const lscpuTheirs = parseLscpu(section(theirs, 'lscpu'));
      const lscpuOurs = parseLscpu(section(ours, 'lscpu'));
      assert.equal(Number(lscpuTheirs.get('CPU(s)')), host);
      assert.ok(lscpuTheirs.has('Off-line CPU(s) list'), 'lscpu under LXCFS: CPUs present but offline');
      assert.equal(Number(lscpuOurs.get('CPU(s)')), 1);
      assert.ok(!lscpuOurs.has('Off-line CPU(s) list'));
    });

    it('differ as documented: slabinfo is root\'s only, as on the host (LXCFS: readable by any user)', () => {
      const slabinfo = (s: Map<string, string>) =>
        section(s, 'unprivileged').split('\n').find((l) => l.startsWith('/proc/slabinfo '));
      assert.equal(slabinfo(ours), '/proc/slabinfo denied');
      assert.equal(slabinfo(theirs), '/proc/slabinfo readable');
    });

    it('differ as documented: /proc/swaps layout', () => {
      const hostHeader = readFileSync('/proc/swaps', 'latin1').split('\n')[0];
      const sizes = (s: Map<string, string>) =>
        new Map(section(s, 'sizes').split('\n').map((l) => l.split(' ') as [string, string]));
      // the kernel's header (40 bytes with its tabs) vs LXCFS's single-tab one
      assert.equal(Number(sizes(ours).get('/proc/swaps')), hostHeader!.length + 1);
      assert.notEqual(Number(sizes(theirs).get('/proc/swaps')), hostHeader!.length + 1);
    });

    it('differ as documented: time. Ours keeps ps consistent with /proc/uptime; LXCFS shows the init\'s age and the host\'s btime', (t) => {
      const uptime = (s: Map<string, string>) => Number(section(s, 'proc-uptime').split(' ')[0]);
      const pid1Start = (s: Map<string, string>) => numberIn(s, 'pid1-starttime') / 100;
      const init = (s: Map<string, string>) => parsePs(section(s, 'ps')).find((r) => r.pid === 1)!;
      const outOfRange = (s: Map<string, string>) =>
        parsePs(section(s, 'ps'))
          .filter((r) => !isPsItself(r))
          .filter((r) => r.etimes > uptime(s) + 1 || r.lstart > numberIn(s, 'now-epoch') + 1);
      // ours: the kernel's uptime in the sandbox's time namespace and the btime that goes with it,
      // so ps dates PID 1 to when the sandbox started
      assert.ok(uptime(ours) >= pid1Start(ours), `uptime ${uptime(ours)} < PID 1 start ${pid1Start(ours)}`);
      assert.deepEqual(outOfRange(ours), []);
      assert.ok(Math.abs(init(ours).lstart - numberIn(ours, 'start-epoch')) <= 2, 'ps STARTED of PID 1 (lxcfs-ts)');
      // LXCFS: the age of the container's init as uptime, and the host's btime, not the time
      // namespace's: ps dates PID 1 to the host's boot (and, without a time namespace, its
      // elapsed times go negative: LXCFS #189)
      const lifetime = numberIn(theirs, 'now-epoch') - numberIn(theirs, 'start-epoch');
      assert.ok(Math.abs(uptime(theirs) - lifetime) <= 2, `lxcfs uptime ${uptime(theirs)} vs init age ${lifetime}`);
      const hostBoot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'))![1]);
      assert.ok(Math.abs(init(theirs).lstart - hostBoot) <= 2, `ps STARTED of PID 1 under LXCFS: ${init(theirs).lstart}, host boot ${hostBoot}`);
      t.diagnostic(`lxcfs: uptime ${uptime(theirs)} s, PID 1 started at ${pid1Start(theirs)} s of the kernel's uptime; ps rows out of range: ${outOfRange(theirs).length}`);
    });
  });
});
