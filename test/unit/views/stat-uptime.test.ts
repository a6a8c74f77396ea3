import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ViewSource } from '../../../src/container/view-source.js';
import { parseHostStat, renderStat } from '../../../src/views/stat.js';
import { renderUptime } from '../../../src/views/uptime.js';
import {
  capturedV1,
  fixture,
  hostPidNs,
  type Tree,
  v2ProcCgroup,
} from '../helpers/fixture-tree.js';
import {
  agentPid,
  callerPid,
  containerPidNs,
  initPid,
  v1Container,
  v1Scenario,
  v2ContainerPath,
  v2Scenario,
} from '../helpers/scenarios.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

const cpuLines = (stat: string) =>
  stat
    .split('\n')
    .filter((l) => l.startsWith('cpu'))
    .map((l) => l.split(/\s+/));
const ticks = (line: string[]) => line.slice(1).map(Number);

function source(t: Tree): ViewSource {
  return createContainerViewSource(t.options, createSharedViewState(t.options), silentLogger);
}

describe('proc/stat', () => {
  it('v1: per-CPU time from cpuacct.usage_percpu split by usage_all (captured), idle from the uptime, host lines kept', () => {
    tree = v1Scenario();
    const out = source(tree).content('proc/stat', callerPid).toString();
    const lines = cpuLines(out);
    assert.deepEqual(
      lines.map((l) => l[0]),
      ['cpu', 'cpu0', 'cpu1'],
    );
    // cpuacct.usage_percpu (exact): cpu0 38926383 ns, cpu1 1694682086 ns; cpuacct.usage_all
    // (tick-sampled, 1.5 ms less in all): cpu0 user 12000000 system 15985423, cpu1 user 1538858557
    // system 191978500. The exact time is shown, split in usage_all's proportion.
    const split = (exact: number, user: number, system: number) => {
      const u = (exact * user) / (user + system);
      return [Math.floor(u / 1e7), 0, Math.floor((exact - u) / 1e7)];
    };
    assert.deepEqual(ticks(lines[1]!).slice(0, 3), split(38926383, 12000000, 15985423));
    assert.deepEqual(ticks(lines[2]!).slice(0, 3), split(1694682086, 1538858557, 191978500));
    assert.deepEqual(ticks(lines[2]!).slice(0, 3), [150, 0, 18]);
    // idle = uptime (1136.83 s, captured) minus the CPU's busy time
    const uptime = 1136.83;
    assert.equal(ticks(lines[1]!)[3], Math.floor((uptime - 0.038926383) * 100));
    assert.equal(ticks(lines[2]!)[3], Math.floor((uptime - 1.694682086) * 100));
    assert.deepEqual(ticks(lines[1]!).slice(4), [0, 0, 0, 0, 0, 0]);
    assert.match(out, /^cpu {2}\d/);
    const host = fixture('v1-captured/host/stat');
    const rest = (text: string) => text.split('\n').filter((l) => !l.startsWith('cpu'));
    assert.deepEqual(rest(out), rest(host));
  });

  it('v1 without cpuacct.usage_percpu: the tick-sampled usage_all as it is', () => {
    const { 'cpuacct.usage_percpu': _exact, ...sampledOnly } = capturedV1('cpuacct');
    tree = v1Scenario({ cgroups: { [`cpuacct${v1Container}`]: sampledOnly } });
    const lines = cpuLines(source(tree).content('proc/stat', callerPid).toString());
    assert.deepEqual(ticks(lines[1]!).slice(0, 3), [1, 0, 1]);
    assert.deepEqual(ticks(lines[2]!).slice(0, 3), [153, 0, 19]);
  });

  it('with --enable-cfs and a 1-CPU quota: one cpu line that absorbs the work done on the other CPU', () => {
    tree = v1Scenario({ options: { enableCfs: true } });
    const lines = cpuLines(source(tree).content('proc/stat', callerPid).toString());
    assert.deepEqual(
      lines.map((l) => l[0]),
      ['cpu', 'cpu0'],
    );
    const [user, , system] = ticks(lines[1]!);
    // cpuacct.usage = the sum of usage_percpu: every ns of both CPUs, on the one visible CPU
    assert.ok(Math.abs(user! + system! - 1733608469 / 1e7) <= 2, `${user} + ${system}`);
  });

  it('v2: splits cpu.stat over the visible CPUs; counters never go backwards across reads and threads', async () => {
    tree = v2Scenario({ options: { enableCfs: true } });
    const shared = createSharedViewState(tree.options);
    // two sources sharing the state stand for two FUSE worker threads
    const a = createContainerViewSource(tree.options, shared, silentLogger);
    const b = createContainerViewSource(tree.options, shared, silentLogger);
    const first = cpuLines(a.content('proc/stat', callerPid).toString());
    assert.deepEqual(
      first.map((l) => l[0]),
      ['cpu', 'cpu0', 'cpu1'],
    );
    // cpu.stat: user 61.283104 s, system 23.440415 s split over 2 CPUs
    assert.equal(ticks(first[0]!)[0], 6128);
    assert.equal(ticks(first[0]!)[2], 2344);
    const dir = `cgroup${v2ContainerPath}`;
    tree.write(`${dir}/cpu.stat`, 'usage_usec 94723519\nuser_usec 69283104\nsystem_usec 25440415\n');
    await new Promise((r) => setTimeout(r, 30));
    const second = cpuLines(b.content('proc/stat', callerPid).toString());
    for (let i = 0; i < first.length; i++) {
      const before = ticks(first[i]!);
      const after = ticks(second[i]!);
      assert.ok(
        after.every((v, k) => v >= before[k]!),
        `${first[i]} -> ${second[i]}`,
      );
    }
    assert.equal(ticks(second[0]!)[0], 6928);
    // in-place resize to 1 CPU: cpu1 disappears, nothing decreases
    tree.write(`cgroup${v2ContainerPath}/cpu.max`, '100000 100000\n');
    await new Promise((r) => setTimeout(r, 1100));
    const third = cpuLines(a.content('proc/stat', callerPid).toString());
    assert.deepEqual(
      third.map((l) => l[0]),
      ['cpu', 'cpu0'],
    );
    assert.ok(ticks(third[0]!).every((v, k) => v >= ticks(second[0]!)[k]!));
    assert.ok(ticks(third[1]!).every((v, k) => v >= ticks(second[1]!)[k]!));
  });

  it('render: btime shift and container procs lines', () => {
    const host = parseHostStat(fixture('v1-captured/host/stat'));
    const mem = new Float64Array(64);
    const out = renderStat(host, mem, 0, 2, {
      visibleCount: 1,
      btimeShiftSec: 1000,
      procs: { running: 3, blocked: 1 },
    }).toString();
    assert.match(out, /^btime 1795317770$/m);
    assert.match(out, /^procs_running 3$/m);
    assert.match(out, /^procs_blocked 1$/m);
    assert.match(out, /^ctxt 3515868$/m);
    assert.equal(cpuLines(out).length, 2);
  });
});

describe('proc/uptime and the time rule', () => {
  it('formats like the kernel (truncated centiseconds)', () => {
    assert.equal(renderUptime(1136.839, 5.005), '1136.83 5.00\n');
    assert.equal(renderUptime(0.07, 0), '0.07 0.00\n');
  });

  it('a caller without a time namespace sees the host uptime and the container idle', () => {
    tree = v1Scenario();
    const s = source(tree);
    const [up, idle] = s.content('proc/uptime', callerPid).toString().trim().split(' ').map(Number);
    assert.equal(up, 1136.83);
    // idle = sum over the 2 visible CPUs of (uptime - busy)
    const busy = (12000000 + 15985423 + 1538858557 + 191978500) / 1e9;
    assert.ok(Math.abs(idle! - (2 * 1136.83 - busy)) < 0.02, `idle ${idle}`);
    // and it agrees with the aggregate idle of /proc/stat
    const statIdle = Number(s.content('proc/stat', callerPid).toString().split('\n')[0]!.split(/\s+/)[4]);
    assert.ok(Math.abs(statIdle / 100 - idle!) < 0.05);
  });

  it('a caller in a time namespace sees its shifted uptime, and btime moves the other way', () => {
    const offsets = 'monotonic           0         0\nboottime        -1000         0\n';
    tree = v2Scenario({
      procs: [
        { pid: agentPid, cgroup: v2ProcCgroup('/'), pidNs: hostPidNs, nspid: [agentPid] },
        {
          pid: initPid,
          cgroup: v2ProcCgroup(v2ContainerPath),
          pidNs: containerPidNs,
          nspid: [initPid, 1],
          timeNs: 4026533001,
          timensOffsets: offsets,
        },
        {
          pid: callerPid,
          cgroup: v2ProcCgroup(v2ContainerPath),
          pidNs: containerPidNs,
          nspid: [callerPid, 7],
          ppid: initPid,
          timeNs: 4026533001,
          timensOffsets: offsets,
        },
      ],
    });
    const s = source(tree);
    assert.equal(s.content('proc/uptime', callerPid).toString().split(' ')[0], '136.83');
    assert.match(s.content('proc/stat', callerPid).toString(), /^btime 1795317770$/m);
    // the host (agent) keeps the real values
    assert.equal(s.content('proc/uptime', agentPid).toString().split(' ')[0], '1136.83');
  });

  describe('--uptime (a caller without a time namespace)', () => {
    /** The v1 container with its PID 1 started 1000.5 s after the host's boot (uptime 1136.83). */
    const withInitStart = (options: Parameters<typeof v1Scenario>[0] = {}) =>
      v1Scenario({ ...options, initStartTicks: 100050 });
    const hostBtime = /^btime (\d+)$/m.exec(fixture('v1-captured/host/stat'))![1];

    it('container (default): the container\'s age from its PID 1\'s start; btime stays the host\'s', () => {
      tree = withInitStart();
      const s = source(tree);
      assert.equal(s.content('proc/uptime', callerPid).toString().split(' ')[0], '136.33');
      assert.match(s.content('proc/stat', callerPid).toString(), new RegExp(`^btime ${hostBtime}$`, 'm'));
      // The idle counters start from that age too: idle <= 2 CPUs x age.
      const idle = Number(s.content('proc/uptime', callerPid).toString().split(' ')[1]);
      assert.ok(idle <= 2 * 136.33, `idle ${idle}`);
      // The host itself keeps the host's uptime.
      assert.equal(s.content('proc/uptime', agentPid).toString().split(' ')[0], '1136.83');
    });

    it('host: the host\'s uptime, as before', () => {
      tree = withInitStart({ options: { uptime: 'host' } });
      assert.equal(source(tree).content('proc/uptime', callerPid).toString().split(' ')[0], '1136.83');
    });

    it('container, with the start of PID 1 unknown: the host\'s uptime', () => {
      tree = v1Scenario();
      assert.equal(source(tree).content('proc/uptime', callerPid).toString().split(' ')[0], '1136.83');
    });
  });

  it('in a time namespace, --uptime container keeps the namespace\'s uptime (the kernel\'s start times agree with it)', () => {
    const offsets = 'monotonic           0         0\nboottime        -1000         0\n';
    const ns = { timeNs: 4026533001, timensOffsets: offsets };
    tree = v2Scenario({
      procs: [
        { pid: agentPid, cgroup: v2ProcCgroup('/'), pidNs: hostPidNs, nspid: [agentPid] },
        {
          pid: initPid,
          cgroup: v2ProcCgroup(v2ContainerPath),
          pidNs: containerPidNs,
          nspid: [initPid, 1],
          startTicks: 100050,
          ...ns,
        },
        {
          pid: callerPid,
          cgroup: v2ProcCgroup(v2ContainerPath),
          pidNs: containerPidNs,
          nspid: [callerPid, 7],
          ppid: initPid,
          ...ns,
        },
      ],
    });
    assert.equal(source(tree).content('proc/uptime', callerPid).toString().split(' ')[0], '136.83');
  });

  it('without CPU accounting files: host stat, and uptime with the host idle', () => {
    tree = v1Scenario({ cgroups: { [`cpuacct${v1Container}`]: {} } });
    // the container's cpuacct files are gone: host content, never an empty file
    const s = source(tree);
    assert.equal(s.content('proc/stat', callerPid).toString(), fixture('v1-captured/host/stat'));
    assert.equal(s.content('proc/uptime', callerPid).toString(), fixture('v1-captured/host/uptime'));
  });
});
