import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/agent/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import { defaultViewOptions, type ViewOptions } from '../../../src/common/options.js';
import { field, nsPidToHost, requireRootAndV1, sleep, TestCgroups } from './real-cgroups.js';

/**
 * The same container read through Debian's lxcfs (5.0.3, --enable-cfs) and through our views:
 * where the two must agree (MemTotal, SwapTotal, the CPU count of cpuinfo and online) and where
 * they differ on purpose (see the README's "What each file shows").
 */
const cg = new TestCgroups(`lxcfs-ts-test-views-diff-${process.pid}`);
const MiB = 1024 * 1024;
const mnt = mkdtempSync(join(tmpdir(), 'lxcfs-ts-views-diff-'));
const options: ViewOptions = { ...defaultViewOptions, enableCfs: true };
let lxcfs: ChildProcess | null = null;
let theirs: Record<string, string> = {};
let initPid = 0;

const files = ['proc/meminfo', 'proc/cpuinfo', 'sys/devices/system/cpu/online', 'proc/swaps', 'proc/stat'];

describe('differential: Debian lxcfs and lxcfs-ts on the same container', () => {
  before(async () => {
    requireRootAndV1();
    assert.ok(existsSync('/usr/bin/lxcfs'), 'Debian lxcfs is needed (scripts/install-test-deps installs it)');
    lxcfs = spawn('/usr/bin/lxcfs', ['--enable-cfs', mnt], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !readFileSync('/proc/self/mountinfo', 'latin1').includes(` ${mnt} `); i++) {
      await sleep(50);
    }
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
    lxcfs?.kill('SIGTERM');
    await sleep(300);
    spawnSync('umount', ['-l', mnt]);
    await cg.cleanup();
    try {
      rmdirSync(mnt);
    } catch {
      // still mounted: reported by the next run
    }
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
    // history and the uptime, so busy + idle of the N CPUs matches N x uptime
    const idle = Number(ours.content('proc/stat', initPid).toString().split(/\s+/)[4]);
    const uptime = Number(readFileSync('/proc/uptime', 'latin1').split(' ')[0]);
    assert.ok(Math.abs(idle / 100 - uptime) < 2, `idle ${idle / 100} s vs uptime ${uptime} s`);
  });
});
