import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import { capturedV1, fixture, type Tree, v2Container, writeProc } from '../helpers/fixture-tree.js';
import {
  callerPid,
  field,
  initPid,
  v1Container,
  v1Scenario,
  v2ContainerPath,
  v2Scenario,
} from '../helpers/scenarios.js';

const kb = (bytes: number) => Math.floor(bytes / 1024);
const statValue = (text: string, key: string) =>
  Number(
    text
      .split('\n')
      .find((l) => l.startsWith(`${key} `))!
      .split(' ')[1],
  );

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

function meminfo(t: Tree, pid = callerPid): string {
  const source = createContainerViewSource(t.options, createSharedViewState(t.options), silentLogger);
  return source.content('proc/meminfo', pid).toString('latin1');
}

describe('proc/meminfo, cgroup v1 (files captured on this machine)', () => {
  const stat = fixture('v1-captured/memory/memory.stat');
  const usage = Number(fixture('v1-captured/memory/memory.usage_in_bytes'));
  const host = fixture('v1-captured/host/meminfo');

  it('virtualizes every usage line from the container cgroup', () => {
    tree = v1Scenario();
    const out = meminfo(tree);
    const total = 262144; // 256 MiB, tighter than the 1 GiB pod and 20 GiB kubepods
    assert.equal(field(out, 'MemTotal'), total);
    assert.equal(field(out, 'MemFree'), total - kb(usage));
    const fileLru = kb(statValue(stat, 'total_active_file')) + kb(statValue(stat, 'total_inactive_file'));
    assert.equal(field(out, 'MemAvailable'), total - kb(usage) + fileLru);
    assert.equal(field(out, 'Buffers'), 0);
    assert.equal(field(out, 'Cached'), kb(statValue(stat, 'total_cache')));
    assert.equal(field(out, 'Shmem'), kb(statValue(stat, 'total_shmem')));
    assert.equal(field(out, 'AnonPages'), kb(statValue(stat, 'total_rss')));
    assert.equal(field(out, 'Mapped'), kb(statValue(stat, 'total_mapped_file')));
    assert.equal(field(out, 'Active(anon)'), kb(statValue(stat, 'total_active_anon')));
    assert.equal(field(out, 'Inactive(anon)'), kb(statValue(stat, 'total_inactive_anon')));
    assert.equal(
      field(out, 'Inactive'),
      kb(statValue(stat, 'total_inactive_anon')) + kb(statValue(stat, 'total_inactive_file')),
    );
    assert.equal(field(out, 'Slab'), 0);
    assert.equal(field(out, 'KReclaimable'), 0);
    // host-wide lines pass through unchanged
    for (const key of [
      'CommitLimit',
      'VmallocTotal',
      'HugePages_Total',
      'Hugepagesize',
      'DirectMap2M',
      'KernelStack',
    ]) {
      assert.equal(field(out, key), field(host, key), key);
    }
    // same lines, same order, kernel layout
    assert.deepEqual(
      out.split('\n').map((l) => l.split(':')[0]),
      host.split('\n').map((l) => l.split(':')[0]),
    );
    assert.match(out, /^MemTotal: {9}262144 kB\n/);
    assert.ok(field(out, 'MemTotal') >= field(out, 'MemAvailable'));
  });

  it('is the same for the init, a caller in the container, and a caller in a sub-cgroup it created', () => {
    tree = v1Scenario({
      cgroups: { [`memory${v1Container}/sub`]: { 'memory.limit_in_bytes': '104857600\n' } },
    });
    const sub = 4300;
    const source = createContainerViewSource(tree.options, createSharedViewState(tree.options), silentLogger);
    writeProc(tree.root, {
      pid: sub,
      cgroup: `8:memory:${v1Container}/sub\n5:cpu:${v1Container}\n`,
      pidNs: 4026532500,
      nspid: [sub, 9],
      ppid: initPid,
    });
    const fromInit = source.content('proc/meminfo', initPid).toString();
    assert.equal(field(fromInit, 'MemTotal'), 262144);
    assert.equal(field(source.content('proc/meminfo', sub).toString(), 'MemTotal'), 262144);
    assert.equal(field(source.content('proc/meminfo', callerPid).toString(), 'MemTotal'), 262144);
  });

  it('takes the minimum limit over the ancestry', () => {
    tree = v1Scenario({
      cgroups: {
        [`memory${v1Container}`]: {
          ...Object.fromEntries(Object.entries(capturedV1('memory')).filter(([f]) => f !== 'memory.stat')),
          // no hierarchical_* keys: the walk over the ancestors decides
          'memory.stat': stat.replace(/^hierarchical_.*\n/gm, ''),
          'memory.limit_in_bytes': '9223372036854771712\n',
        },
      },
    });
    assert.equal(field(meminfo(tree), 'MemTotal'), 1048576); // the pod's 1 GiB
  });

  it('shows swap within the memsw limit and the host swap, and none with -u', () => {
    const withSwap = host.replace(/^SwapTotal:.*$/m, 'SwapTotal:        524284 kB');
    tree = v1Scenario({
      host: { meminfo: withSwap },
      cgroups: {
        [`memory${v1Container}`]: {
          ...capturedV1('memory'),
          'memory.usage_in_bytes': '268345344\n',
          'memory.memsw.usage_in_bytes': '324136960\n',
        },
      },
    });
    let out = meminfo(tree);
    assert.equal(field(out, 'SwapTotal'), 393216); // memsw limit (RAM+swap), as LXCFS shows it
    assert.equal(field(out, 'SwapFree'), 393216 - kb(324136960 - 268345344));
    tree.cleanup();
    tree = v1Scenario({ host: { meminfo: withSwap }, options: { disableSwap: true } });
    out = meminfo(tree);
    assert.equal(field(out, 'SwapTotal'), 0);
    assert.equal(field(out, 'SwapFree'), 0);
  });

  it('serves the host file when the caller cannot be resolved or its cgroup vanished', () => {
    tree = v1Scenario();
    assert.equal(meminfo(tree, 0), host);
    assert.equal(meminfo(tree, 99999), host);
    tree.cleanup();
    tree = v1Scenario({ cgroups: { [`memory${v1Container}`]: {} } });
    assert.equal(meminfo(tree), host);
  });

  it('a host caller in an unlimited cgroup never sees more free memory than the host has', () => {
    tree = v1Scenario();
    const out = meminfo(tree, 900);
    assert.equal(field(out, 'MemTotal'), field(host, 'MemTotal'));
    assert.ok(field(out, 'MemFree') <= field(host, 'MemFree'));
    assert.ok(field(out, 'MemAvailable') <= field(host, 'MemAvailable'));
  });
});

describe('proc/meminfo, cgroup v2 (documented formats)', () => {
  const stat = fixture('v2-container/memory.stat');

  it('reads memory.current/memory.stat/memory.max and maps the v2 keys', () => {
    tree = v2Scenario();
    const out = meminfo(tree);
    const total = 524288;
    const usage = Number(fixture('v2-container/memory.current'));
    assert.equal(field(out, 'MemTotal'), total);
    assert.equal(field(out, 'MemFree'), total - kb(usage));
    const reclaimable =
      kb(statValue(stat, 'active_file')) +
      kb(statValue(stat, 'inactive_file')) +
      kb(statValue(stat, 'slab_reclaimable'));
    assert.equal(field(out, 'MemAvailable'), total - kb(usage) + reclaimable);
    assert.equal(field(out, 'Cached'), kb(statValue(stat, 'file')));
    assert.equal(field(out, 'AnonPages'), kb(statValue(stat, 'anon')));
    // fields LXCFS leaves at 0 on v2
    assert.equal(field(out, 'Mapped'), kb(statValue(stat, 'file_mapped')));
    assert.equal(field(out, 'Dirty'), kb(statValue(stat, 'file_dirty')));
    assert.equal(field(out, 'Writeback'), kb(statValue(stat, 'file_writeback')));
    assert.equal(field(out, 'AnonHugePages'), kb(statValue(stat, 'anon_thp')));
    assert.equal(field(out, 'Slab'), kb(statValue(stat, 'slab')));
    assert.equal(field(out, 'SReclaimable'), kb(statValue(stat, 'slab_reclaimable')));
    assert.equal(field(out, 'SUnreclaim'), kb(statValue(stat, 'slab_unreclaimable')));
    assert.equal(field(out, 'KernelStack'), kb(statValue(stat, 'kernel_stack')));
    assert.equal(field(out, 'PageTables'), kb(statValue(stat, 'pagetables')));
  });

  it('memory.max of "max" inherits the tightest ancestor; swap follows memory.swap.max', () => {
    const host = fixture('v1-captured/host/meminfo').replace(
      /^SwapTotal:.*$/m,
      'SwapTotal:       2097148 kB',
    );
    tree = v2Scenario({
      host: { meminfo: host },
      cgroups: {
        [v2ContainerPath.slice(1)]: {
          ...v2Container(),
          'memory.max': 'max\n',
          'memory.swap.max': '268435456\n',
          'memory.swap.current': '10485760\n',
        },
      },
    });
    const out = meminfo(tree);
    assert.equal(field(out, 'MemTotal'), 1048576);
    assert.equal(field(out, 'SwapTotal'), 262144);
    assert.equal(field(out, 'SwapFree'), 262144 - 10240);
  });
});
