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
import { conformanceChecks, type Machine, type Variant } from './program-checks.js';
import {
  conformanceFixtures,
  cpuList,
  isPsItself,
  meminfoFields,
  numberIn,
  parsePs,
  parseSections,
  parseUptimeCommand,
  section,
} from './program-output.js';

const MiB = 1024 * 1024;
const hostOnline = cpuList(readFileSync('/sys/devices/system/cpu/online', 'latin1'));
const host: Machine = {
  meminfo: meminfoFields(readFileSync('/proc/meminfo', 'latin1')),
  totalmem: totalmem(),
  mode: (file) => statSync(file).mode,
};

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

    for (const check of conformanceChecks) {
      it(check.title(v), (t) => {
        if (!requireRoot(t)) return;
        check.run(out, v, host, t);
      });
    }
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
