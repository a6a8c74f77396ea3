import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState, createSysinfoViews } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import { avenrunFromLoadavg } from '../../../src/container/container-figures.js';
import { composeSysinfo } from '../../../src/syscall/sysinfo-answer.js';
import { fixture, type Tree } from '../helpers/fixture-tree.js';
import { callerPid, field, v1Container, v1Scenario, v2Scenario } from '../helpers/scenarios.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

/** What the same caller's files say, next to what its sysinfo says. */
function bothViews(t: Tree, pid = callerPid) {
  const shared = createSharedViewState(t.options);
  const files = createContainerViewSource(t.options, shared, silentLogger);
  const figures = createSysinfoViews(t.options, shared, silentLogger).figures(pid);
  return {
    meminfo: files.content('proc/meminfo', pid).toString('latin1'),
    uptime: files.content('proc/uptime', pid).toString('latin1'),
    loadavg: files.content('proc/loadavg', pid).toString('latin1'),
    sysinfo: figures === null ? null : composeSysinfo(figures),
  };
}

function assertAgrees(v: ReturnType<typeof bothViews>): void {
  assert.ok(v.sysinfo, 'the caller is served');
  const s = v.sysinfo;
  assert.equal(s.totalram, field(v.meminfo, 'MemTotal') * 1024);
  assert.equal(s.freeram, field(v.meminfo, 'MemFree') * 1024);
  assert.equal(s.sharedram, field(v.meminfo, 'Shmem') * 1024);
  assert.equal(s.bufferram, field(v.meminfo, 'Buffers') * 1024);
  assert.equal(s.totalswap, field(v.meminfo, 'SwapTotal') * 1024);
  assert.equal(s.freeswap, field(v.meminfo, 'SwapFree') * 1024);
  assert.equal(s.uptime, Math.ceil(Number(v.uptime.split(' ')[0])));
  // getloadavg() divides by 65536; /proc/loadavg rounds to 1/100: they agree to that rounding.
  const shown = v.loadavg.split(' ').slice(0, 3).map(Number);
  s.loads.forEach((load, i) => assert.ok(Math.abs(load / 65536 - shown[i]!) <= 0.005 + 1e-9, `load ${i}`));
}

describe('sysinfo(2) agrees with the files of the same caller', () => {
  it('cgroup v1 (files captured on this machine): memory, swap, uptime, loads', () => {
    tree = v1Scenario();
    const v = bothViews(tree);
    assertAgrees(v);
    assert.equal(v.sysinfo!.totalram, 256 * 1048576, 'the container\'s limit, not the host\'s');
    const tasks = fixture('v1-captured/pids/tasks').trim().split('\n').length;
    assert.equal(v.sysinfo!.procs, tasks, 'procs counts the container\'s threads');
  });

  it('--uptime: the uptime is the container\'s age (default) or the host\'s, as in /proc/uptime', () => {
    tree = v1Scenario({ initStartTicks: 100050 });
    const container = bothViews(tree);
    assertAgrees(container);
    assert.equal(container.sysinfo!.uptime, 137); // 1136.83 - 1000.50, rounded up as the kernel does
    tree.cleanup();
    tree = v1Scenario({ initStartTicks: 100050, options: { uptime: 'host' } });
    const host = bothViews(tree);
    assertAgrees(host);
    assert.equal(host.sysinfo!.uptime, 1137);
  });

  it('cgroup v2: memory.max and swap of a nested container', () => {
    tree = v2Scenario();
    const v = bothViews(tree);
    assertAgrees(v);
    assert.ok(v.sysinfo!.totalram < 1024 ** 3, `the container's limit (${v.sysinfo!.totalram})`);
    const threads = fixture('v2-container/cgroup.threads').trim().split('\n').length;
    assert.equal(v.sysinfo!.procs, threads);
  });

  it('--disable-swap: no swap in either view', () => {
    tree = v1Scenario();
    const options = { ...tree.options, disableSwap: true };
    const v = bothViews({ ...tree, options });
    assertAgrees(v);
    assert.equal(v.sysinfo!.totalswap, 0);
  });

  it('a caller that cannot be resolved is left to the kernel (null)', () => {
    tree = v1Scenario();
    assert.equal(bothViews(tree, 99999).sysinfo, null);
  });

  it('a container without a readable memory cgroup is left to the kernel', () => {
    tree = v1Scenario({ cgroups: { [`memory${v1Container}`]: {} } });
    assert.equal(bothViews(tree).sysinfo, null);
  });
});

describe('composeSysinfo', () => {
  it('scales the kernel\'s 11-bit averages to sysinfo\'s 16 bits and rounds the uptime up', () => {
    const s = composeSysinfo({
      memory: { totalKb: 262144, freeKb: 1000, sharedKb: 4, buffersKb: 0, swapTotalKb: 8, swapFreeKb: 2 },
      uptimeSec: 41.01,
      avenrun: [2048, 1024, 0],
      threads: 12,
    });
    assert.deepEqual(s.loads, [65536, 32768, 0]);
    assert.equal(s.uptime, 42);
    assert.equal(s.totalram, 268435456);
    assert.equal(s.freeswap, 2048);
    assert.equal(s.procs, 12);
  });
  it('reads the host\'s /proc/loadavg back into fixed point', () => {
    assert.deepEqual(avenrunFromLoadavg('0.44 1.00 12.50 3/120 999\n'), [901, 2048, 25600]);
    assert.equal(avenrunFromLoadavg('garbage'), null);
  });
});
