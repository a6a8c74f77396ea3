import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { LoadavgSampler } from '../../../src/agent/loadavg-sampler.js';
import { silentLogger } from '../../../src/common/log.js';
import { defaultViewOptions, type ViewOptions } from '../../../src/common/options.js';
import type { ViewSource } from '../../../src/container/view-source.js';
import { viewFiles } from '../../../src/views/catalog.js';
import { field, nsPidToHost, requireRootAndV1, sleep, TestCgroups } from './real-cgroups.js';

/**
 * The views computed from a real cgroup v1 container doing real work: memory it allocated, CPU
 * time it burned under a 1-CPU quota, I/O it did under a throttle rule, tasks the loadavg sampler
 * counts. content() is called directly, with the container's host pids.
 */
const cg = new TestCgroups(`lxcfs-ts-test-views-work-${process.pid}`);
const MiB = 1024 * 1024;
const options: ViewOptions = { ...defaultViewOptions, enableCfs: true, enableLoadavg: true };
const shared = createSharedViewState(options);
let source: ViewSource;
let other: ViewSource;
let container = '';
let initPid = 0;

const cpuTicks = (stat: string) => {
  const [, user, , system, idle] = stat.split('\n')[0]!.split(/\s+/).map(Number);
  return { busy: user! + system!, idle: idle! };
};

describe('views of a real cgroup v1 container', () => {
  before(async () => {
    requireRootAndV1();
    container = cg.create();
    cg.set('memory', container, 'memory.limit_in_bytes', String(256 * MiB));
    cg.set('cpu', container, 'cpu.cfs_quota_us', '100000');
    cg.set('cpu', container, 'cpu.cfs_period_us', '100000');
    // the container's init holds 64 MiB of anonymous memory, then waits
    cg.run(
      container,
      `unshare -fp --mount-proc python3 -c "b = bytearray(${64 * MiB}); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; import time; time.sleep(120)"`,
    );
    initPid = nsPidToHost(await cg.waitForProcs(container, 2), 1);
    await sleep(1500);
    source = createContainerViewSource(options, shared, silentLogger);
    other = createContainerViewSource(options, shared, silentLogger);
  });
  after(async () => {
    await cg.cleanup();
  });

  it('meminfo: the limit, and used memory that matches the cgroup', () => {
    const out = source.content('proc/meminfo', initPid).toString();
    assert.equal(field(out, 'MemTotal'), 262144);
    const used = field(out, 'MemTotal') - field(out, 'MemFree');
    const usage =
      Number(readFileSync(`/sys/fs/cgroup/memory${container}/memory.usage_in_bytes`, 'latin1')) / 1024;
    assert.ok(used >= 64 * 1024, `used ${used} kB`);
    assert.ok(Math.abs(used - usage) < 4096, `used ${used} kB vs usage ${usage} kB`);
    assert.ok(field(out, 'AnonPages') >= 64 * 1024);
    assert.ok(field(out, 'MemAvailable') <= field(out, 'MemTotal'));
  });

  it('stat: CPU time accounted matches the work done within the quota, monotonic across threads', async () => {
    // cpuacct.usage in ticks: the exact run time of the cgroup, which /proc/stat shows (split into
    // user and system as the tick-sampled cpuacct.usage_all splits it)
    const usage = () => Number(readFileSync(`/sys/fs/cgroup/cpuacct${container}/cpuacct.usage`, 'latin1')) / 1e7;
    const u0 = usage();
    const t0 = cpuTicks(source.content('proc/stat', initPid).toString());
    // two busy loops for 2 s under a 1-CPU quota: about 200 ticks of busy time, not 400
    const started = performance.now();
    execFileSync('sh', [
      '-c',
      `for c in cpu cpuacct; do echo $$ > /sys/fs/cgroup/$c${container}/cgroup.procs; done; ` +
      'timeout 2 sh -c "while :; do :; done" & timeout 2 sh -c "while :; do :; done" & wait',
    ]);
    const wallTicks = (performance.now() - started) / 10;
    const t1 = cpuTicks(other.content('proc/stat', initPid).toString());
    const busy = t1.busy - t0.busy;
    const accounted = usage() - u0;
    // what the kernel accounted to the cgroup, within rounding of the two reads
    assert.ok(Math.abs(busy - accounted) <= 3, `busy ${busy} ticks vs cpuacct ${accounted}`);
    // and within the quota: at most 1 CPU over the wall time (CFS enforces it on this exact time;
    // a few ticks of slack for the reads around the work)
    assert.ok(
      busy > 20 && busy <= wallTicks * 1.03 + 5,
      `busy ${busy} ticks in ${wallTicks} ticks of wall time`,
    );
    assert.ok(t1.idle >= t0.idle);
    const lines = source.content('proc/stat', initPid).toString().split('\n');
    assert.equal(
      lines.filter((l) => /^cpu\d/.test(l)).length,
      1,
      'one CPU with --enable-cfs and a 1-CPU quota',
    );
  });

  it('uptime idle agrees with the stat counters', () => {
    const [, idle] = source.content('proc/uptime', initPid).toString().trim().split(' ').map(Number);
    const statIdle = cpuTicks(other.content('proc/stat', initPid).toString()).idle / 100;
    assert.ok(Math.abs(idle! - statIdle) < 0.2, `uptime idle ${idle} vs stat ${statIdle}`);
  });

  it('loadavg: the sampler counts the container busy loops and averages them', async () => {
    const sampler = new LoadavgSampler(options, shared, silentLogger);
    try {
      const busy = cg.run(
        container,
        'sh -c "timeout 20 sh -c \\"while :; do :; done\\" & timeout 20 sh -c \\"while :; do :; done\\" & wait"',
      );
      await sleep(300);
      source.content('proc/loadavg', initPid);
      for (let i = 0; i < 3; i++) {
        sampler.round();
        await sleep(100);
      }
      const [a1, , , tasks] = source.content('proc/loadavg', initPid).toString().trim().split(' ');
      const [running, threads] = tasks!.split('/').map(Number);
      assert.ok(running! >= 1 && running! <= 2, `running ${running}`);
      assert.ok(threads! >= 5, `threads ${threads}`);
      assert.ok(Number(a1) > 0, `load ${a1}`);
      busy.kill('SIGKILL');
    } finally {
      sampler.close();
    }
  });

  it('every view file has content for the container, and a second read never errors', () => {
    for (const f of viewFiles) {
      const out = source.content(f.path, initPid);
      assert.ok(out.length > 0, `${f.path} is empty`);
      assert.ok(source.content(f.path, initPid).length > 0);
    }
  });
});
