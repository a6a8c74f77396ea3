import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.js';
import { createV2Cgroup } from '../../../src/sandbox/cgroup-v2.js';
import { parseCpuList, parseCpus, parseSize } from '../../../src/sandbox/quantities.js';
import { RunError } from '../../../src/sandbox/run-error.js';
import { type FakeCgroup2, fakeCgroup2 } from './fake-cgroup2.js';

// What a systemd host enables at the root; cpuset is available but not enabled by default.
const systemdRoot = {
  controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
  enabled: ['cpu', 'io', 'memory', 'pids'],
};

describe('cgroup v2 sandbox cgroup', () => {
  let tree: FakeCgroup2 | undefined;
  afterEach(() => tree?.dispose());

  const read = (file: string) => readFileSync(join(tree!.root, file), 'utf8').trim();

  it('enables the controllers along the path, then writes every limit into one leaf', async () => {
    tree = fakeCgroup2(systemdRoot);
    const cgroup = await createV2Cgroup(
      tree.root,
      'run-1',
      {
        memoryBytes: parseSize('256M'),
        memorySwap: parseSize('384M'),
        cpuQuota: parseCpus('1.5'),
        cpuset: parseCpuList('0,2-3'),
      },
      silentLogger,
      tree.fs,
    );
    assert.deepEqual(cgroup.leaves, [join(tree.root, 'lxcfs-ts/run-1')]);
    assert.deepEqual(cgroup.procsFiles, [join(tree.root, 'lxcfs-ts/run-1/cgroup.procs')]);
    // Only the missing controller is added at the root; the host's own choices stay as they were.
    assert.deepEqual(tree.writes.slice(0, 2), [
      'cgroup.subtree_control=+cpuset',
      'lxcfs-ts/cgroup.subtree_control=+cpu +cpuset +io +memory +pids',
    ]);
    assert.deepEqual(tree.words('cgroup.subtree_control').sort(), ['cpu', 'cpuset', 'io', 'memory', 'pids']);
    assert.deepEqual(tree.words('lxcfs-ts/run-1/cgroup.controllers').sort(), [
      'cpu',
      'cpuset',
      'io',
      'memory',
      'pids',
    ]);
    assert.equal(read('lxcfs-ts/run-1/memory.max'), '268435456');
    // --memory-swap counts memory plus swap; v2's memory.swap.max counts swap alone.
    assert.equal(read('lxcfs-ts/run-1/memory.swap.max'), String(128 * 1024 * 1024));
    assert.equal(read('lxcfs-ts/run-1/cpu.max'), '150000 100000');
    assert.equal(read('lxcfs-ts/run-1/cpuset.cpus'), '0,2-3');
  });

  it('leaves limits that were not asked for at the kernel defaults', async () => {
    tree = fakeCgroup2(systemdRoot);
    await createV2Cgroup(tree.root, 'plain', {}, silentLogger, tree.fs);
    assert.equal(read('lxcfs-ts/plain/memory.max'), 'max');
    assert.equal(read('lxcfs-ts/plain/memory.swap.max'), 'max');
    assert.equal(read('lxcfs-ts/plain/cpu.max'), 'max 100000');
    assert.equal(read('lxcfs-ts/plain/cpuset.cpus'), '');
  });

  it('writes max for unlimited swap', async () => {
    tree = fakeCgroup2(systemdRoot);
    await createV2Cgroup(
      tree.root,
      's',
      { memoryBytes: parseSize('1G'), memorySwap: 'unlimited' },
      silentLogger,
      tree.fs,
    );
    assert.equal(read('lxcfs-ts/s/memory.swap.max'), 'max');
  });

  it('writes nothing at the root when the host already enables everything', async () => {
    tree = fakeCgroup2({ ...systemdRoot, enabled: ['cpuset', 'cpu', 'io', 'memory', 'pids'] });
    await createV2Cgroup(tree.root, 'a', { memoryBytes: parseSize('64M') }, silentLogger, tree.fs);
    assert.ok(!tree.writes.some((w) => w.startsWith('cgroup.subtree_control=')), tree.writes.join('\n'));
  });

  it('shares the parent with a sandbox that already exists', async () => {
    tree = fakeCgroup2(systemdRoot);
    const first = await createV2Cgroup(
      tree.root,
      'one',
      { memoryBytes: parseSize('64M') },
      silentLogger,
      tree.fs,
    );
    const second = await createV2Cgroup(
      tree.root,
      'two',
      { memoryBytes: parseSize('128M') },
      silentLogger,
      tree.fs,
    );
    assert.equal(read('lxcfs-ts/one/memory.max'), String(64 * 1024 * 1024));
    assert.equal(read('lxcfs-ts/two/memory.max'), String(128 * 1024 * 1024));
    await first.remove();
    // The parent stays while the other sandbox lives in it, and goes with the last one.
    assert.ok(existsSync(join(tree.root, 'lxcfs-ts')));
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts/one')));
    await second.remove();
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts')));
  });

  it('refuses a limit whose controller the host lacks, and creates nothing', async () => {
    tree = fakeCgroup2({ controllers: ['cpu', 'io', 'memory', 'pids'], enabled: ['cpu', 'memory'] });
    await assert.rejects(
      createV2Cgroup(tree.root, 'x', { cpuset: [0] }, silentLogger, tree.fs),
      (err: unknown) => err instanceof RunError && /'cpuset' controller is not available/.test(err.message),
    );
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts')));
    assert.deepEqual(tree.writes, []);
  });

  it('explains --memory-swap without swap accounting, and removes the half-made cgroup', async () => {
    tree = fakeCgroup2({ ...systemdRoot, swapAccounting: false });
    await assert.rejects(
      createV2Cgroup(
        tree.root,
        'x',
        { memoryBytes: parseSize('64M'), memorySwap: parseSize('128M') },
        silentLogger,
        tree.fs,
      ),
      (err: unknown) => err instanceof RunError && /swap accounting/.test(err.message),
    );
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts')));
  });

  it('names the file and value when the kernel refuses a write', async () => {
    tree = fakeCgroup2(systemdRoot);
    const fs = { ...tree.fs };
    fs.write = (file, value) => {
      if (file.endsWith('cpuset.cpus'))
        throw Object.assign(new Error('Invalid argument'), { code: 'EINVAL' });
      tree!.fs.write(file, value);
    };
    await assert.rejects(
      createV2Cgroup(tree.root, 'x', { cpuset: [7] }, silentLogger, fs),
      /cannot write '7' to .*cpuset\.cpus/,
    );
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts/x')));
  });

  it('refuses to reuse a leaf that already exists', async () => {
    tree = fakeCgroup2(systemdRoot);
    await createV2Cgroup(tree.root, 'same', {}, silentLogger, tree.fs);
    await assert.rejects(createV2Cgroup(tree.root, 'same', {}, silentLogger, tree.fs), /already exists/);
    assert.ok(existsSync(join(tree.root, 'lxcfs-ts/same')), 'the other sandbox keeps its cgroup');
  });

  it('lists the processes in the leaf and uses cgroup.kill before removing it', async () => {
    tree = fakeCgroup2(systemdRoot);
    const cgroup = await createV2Cgroup(tree.root, 'k', {}, silentLogger, tree.fs);
    const procs = join(tree.root, 'lxcfs-ts/k/cgroup.procs');
    writeFileSync(procs, '99999998\n99999999\n');
    assert.deepEqual(cgroup.pids(), [99999998, 99999999]);
    // The fake kernel empties the cgroup when cgroup.kill is written, as the real one does.
    const fs = tree.fs;
    const write = fs.write;
    fs.write = (file, value) => {
      write(file, value);
      if (file.endsWith('cgroup.kill')) writeFileSync(procs, '');
    };
    await cgroup.remove();
    assert.ok(tree.writes.includes('lxcfs-ts/k/cgroup.kill=1'), tree.writes.join('\n'));
    assert.ok(!existsSync(join(tree.root, 'lxcfs-ts')));
  });
});
