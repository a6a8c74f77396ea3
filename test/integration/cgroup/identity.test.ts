import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import { defaultViewOptions } from '../../../src/common/options.js';
import type { ViewSource } from '../../../src/container/view-source.js';
import { field, nsPidToHost, procsOf, requireRootAndV1, sleep, TestCgroups } from './real-cgroups.js';

/**
 * Caller identity against real cgroup v1 hierarchies and real pid/time namespaces: content() is
 * called with the host pid of processes placed in test cgroups, as the FUSE layer will call it.
 */
const cg = new TestCgroups(`lxcfs-ts-test-views-identity-${process.pid}`);
const MiB = 1024 * 1024;
let source: ViewSource;
let container = '';
let initPid = 0;

function meminfoTotal(pid: number): number {
  return field(source.content('proc/meminfo', pid).toString(), 'MemTotal');
}
/** The processes among `pids` that live in a child pid namespace (not the nsenter/unshare parents). */
function inNamespace(pids: number[]): number[] {
  return pids.filter((p) => /\nNSpid:\s*\d+\s+\d+/.test(readFileSync(`/proc/${p}/status`, 'latin1')));
}
const hostTotal = () => field(readFileSync('/proc/meminfo', 'latin1'), 'MemTotal');

describe('caller identity on real cgroups and namespaces', () => {
  before(async () => {
    requireRootAndV1();
    container = cg.create();
    cg.set('memory', container, 'memory.limit_in_bytes', String(256 * MiB));
    cg.set('cpuset', container, 'cpuset.cpus', '0');
    cg.set('cpu', container, 'cpu.cfs_quota_us', '100000');
    cg.create('sub');
    cg.set('memory', `${container}/sub`, 'memory.limit_in_bytes', String(100 * MiB));
    cg.run(container, 'unshare -fp --mount-proc sleep 120');
    initPid = nsPidToHost(await cg.waitForProcs(container, 2), 1);
    source = createContainerViewSource(
      defaultViewOptions,
      createSharedViewState(defaultViewOptions),
      silentLogger,
    );
  });
  after(async () => {
    await cg.cleanup();
  });

  it('the container init sees its limits, one CPU, renumbered', () => {
    assert.equal(meminfoTotal(initPid), 262144);
    assert.deepEqual(source.visibleCpus(initPid), [0]);
    assert.equal(source.content('sys/devices/system/cpu/online', initPid).toString(), '0\n');
    const cpuinfo = source.content('proc/cpuinfo', initPid).toString();
    assert.deepEqual(
      [...cpuinfo.matchAll(/^processor\t: (\d+)$/gm)].map((m) => m[1]),
      ['0'],
    );
  });

  it('a process that entered the namespace from outside (exec) and one in a sub-cgroup see the container', async () => {
    const before = procsOf(`/sys/fs/cgroup/memory${container}`);
    cg.run(container, `nsenter -t ${initPid} -p -- sleep 120`);
    cg.run(container, `nsenter -t ${initPid} -p -- sleep 120`, `${container}/sub`);
    const inContainer = (await cg.waitForProcs(container, before.length + 2)).filter(
      (p) => !before.includes(p),
    );
    const inSub = await cg.waitForProcs(`${container}/sub`, 2);
    const [execd] = inNamespace(inContainer);
    const [sub] = inNamespace(inSub);
    assert.ok(execd !== undefined && sub !== undefined);
    assert.equal(meminfoTotal(execd), 262144);
    // its own cgroup allows only 100 MiB, but it belongs to the container
    assert.equal(meminfoTotal(sub), 262144);
  });

  it('shareProcessNamespace: an app whose PID 1 is a pause process in a sibling cgroup keeps its own cgroup', async () => {
    const pod = cg.create('pod');
    const pause = cg.create('pod/pause');
    const app = cg.create('pod/app');
    cg.set('memory', pause, 'memory.limit_in_bytes', String(128 * MiB));
    cg.set('memory', app, 'memory.limit_in_bytes', String(64 * MiB));
    cg.run(pause, 'unshare -fp --mount-proc sleep 120');
    const pausePid = nsPidToHost(await cg.waitForProcs(pause, 2), 1);
    cg.run(app, `nsenter -t ${pausePid} -p -- sleep 120`);
    const [appPid] = inNamespace(await cg.waitForProcs(app, 2));
    assert.ok(pod.length > 0);
    assert.equal(meminfoTotal(pausePid), 131072);
    assert.equal(meminfoTotal(appPid!), 65536);
  });

  it('a caller in the host pid namespace uses its own cgroup', async () => {
    const own = cg.create('hostcaller');
    cg.set('memory', own, 'memory.limit_in_bytes', String(96 * MiB));
    cg.run(own, 'sleep 120');
    const [pid] = await cg.waitForProcs(own, 1);
    assert.equal(meminfoTotal(pid!), 98304);
    // the test runner itself: its real cgroup has no limit below the host's memory
    assert.equal(meminfoTotal(process.pid), hostTotal());
  });

  it('an exited caller and pid 0 get the host file', async () => {
    const child = spawn('true');
    const pid = child.pid!;
    await new Promise((r) => child.on('exit', r));
    await sleep(50);
    assert.equal(
      source.content('proc/meminfo', pid).toString().split('\n')[0],
      readFileSync('/proc/meminfo', 'latin1').split('\n')[0],
    );
    assert.equal(meminfoTotal(0), hostTotal());
  });

  it('pid reuse: a new process with a remembered pid is resolved afresh', async () => {
    const reuse = cg.create('reuse');
    cg.set('memory', reuse, 'memory.limit_in_bytes', String(200 * MiB));
    cg.run(reuse, 'sleep 120');
    const [victim] = await cg.waitForProcs(reuse, 1);
    assert.equal(meminfoTotal(victim!), 204800);
    process.kill(victim!, 'SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${victim}`); i++) await sleep(10);
    // Hand the same pid to a new host process (unlimited cgroup): ns_last_pid sets the next pid.
    let successor: ReturnType<typeof spawn> | null = null;
    for (let attempt = 0; attempt < 50 && successor === null; attempt++) {
      writeFileSync('/proc/sys/kernel/ns_last_pid', String(victim! - 1));
      const child = spawn('sleep', ['120']);
      if (child.pid === victim) successor = child;
      else child.kill('SIGKILL');
    }
    assert.ok(successor !== null, 'could not obtain the same pid again (busy machine?)');
    try {
      await sleep(50);
      assert.equal(meminfoTotal(victim!), hostTotal());
    } finally {
      successor.kill('SIGKILL');
    }
  });

  it('a caller in a time namespace sees its uptime, and btime moves to match', async () => {
    const hostUptime = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    const offset = -Math.max(1, Math.floor(hostUptime) - 30);
    const timens = cg.create('timens');
    cg.run(timens, `unshare -T --boottime ${offset} -fp --mount-proc sleep 120`);
    const pid = nsPidToHost(await cg.waitForProcs(timens, 2), 1);
    const [uptime] = source.content('proc/uptime', pid).toString().split(' ').map(Number);
    const now = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    assert.ok(Math.abs(uptime! - (now + offset)) < 0.5, `uptime ${uptime} vs ${now + offset}`);
    const btime = (text: string) => Number(/^btime (\d+)$/m.exec(text)![1]);
    const hostBtime = btime(readFileSync('/proc/stat', 'latin1'));
    assert.ok(Math.abs(btime(source.content('proc/stat', pid).toString()) - (hostBtime - offset)) <= 1);
    // what the kernel itself shows inside that time namespace agrees
    const inside = spawnSync('nsenter', ['-t', String(pid), '-T', '--', 'cat', '/proc/uptime'], {
      encoding: 'latin1',
    });
    assert.ok(Math.abs(Number(inside.stdout.split(' ')[0]) - uptime!) < 0.5, `kernel says ${inside.stdout}`);
  });
});
