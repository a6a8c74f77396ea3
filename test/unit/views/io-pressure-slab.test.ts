import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ViewSource } from '../../../src/container/view-source.js';
import { capturedV1, fixture, type Tree } from '../helpers/fixture-tree.js';
import { callerPid, v1Container, v1Scenario, v2ContainerPath, v2Scenario } from '../helpers/scenarios.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

function source(t: Tree): ViewSource {
  return createContainerViewSource(t.options, createSharedViewState(t.options), silentLogger);
}

const columns = (text: string) =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.trim().split(/\s+/));

describe('proc/diskstats', () => {
  it('v1: throttle accounting (captured) on every host device line, host layout', () => {
    tree = v1Scenario();
    const out = source(tree).content('proc/diskstats', callerPid).toString();
    const host = columns(fixture('v1-captured/host/diskstats'));
    const rows = columns(out);
    assert.deepEqual(
      rows.map((r) => r.slice(0, 3)),
      host.map((r) => r.slice(0, 3)),
    );
    assert.deepEqual(
      rows.map((r) => r.length),
      host.map((r) => r.length),
    );
    const vda = rows
      .find((r) => r[2] === 'vda')!
      .slice(3)
      .map(Number);
    // captured: 140 reads / 31883264 bytes, 60 writes / 31457280 bytes on 254:0
    assert.equal(vda[0], 140);
    assert.equal(vda[2], 31883264 / 512);
    assert.equal(vda[4], 60);
    assert.equal(vda[6], 31457280 / 512);
    assert.ok(rows.filter((r) => r[2] !== 'vda').every((r) => r.slice(3).every((v) => v === '0')));
    assert.match(out, /^ 254 {7}0 vda /m);
  });

  it('v1 without any accounted device (blk-mq without throttle rules): host file', () => {
    tree = v1Scenario({
      cgroups: {
        [`blkio${v1Container}`]: {
          'blkio.throttle.io_serviced_recursive': 'Total 0\n',
          'blkio.throttle.io_service_bytes_recursive': 'Total 0\n',
        },
      },
    });
    assert.equal(
      source(tree).content('proc/diskstats', callerPid).toString(),
      fixture('v1-captured/host/diskstats'),
    );
  });

  it('v2: io.stat per device, partitions and idle devices zero', () => {
    tree = v2Scenario();
    const rows = columns(source(tree).content('proc/diskstats', callerPid).toString());
    const nvme = rows
      .find((r) => r[2] === 'nvme0n1')!
      .slice(3)
      .map(Number);
    assert.deepEqual(nvme, [
      1231,
      0,
      18612224 / 512,
      0,
      802,
      0,
      104857600 / 512,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
    const sda = rows
      .find((r) => r[2] === 'sda')!
      .slice(3)
      .map(Number);
    assert.equal(sda[0], 1);
    assert.equal(sda[2], 8);
    assert.ok(
      rows
        .find((r) => r[2] === 'nvme0n1p1')!
        .slice(3)
        .every((v) => v === '0'),
    );
  });
});

describe('proc/pressure/*', () => {
  it('v2: the cgroup files verbatim, io included', () => {
    tree = v2Scenario();
    const s = source(tree);
    for (const r of ['cpu', 'memory', 'io']) {
      assert.equal(
        s.content(`proc/pressure/${r}`, callerPid).toString(),
        fixture(`v2-container/${r}.pressure`),
        r,
      );
    }
  });

  it('v2 without the file (root cgroup, PSI off) and v1: host files', () => {
    tree = v2Scenario({
      cgroups: { [v2ContainerPath.slice(1)]: { 'memory.current': '1\n', 'memory.stat': '' } },
    });
    assert.equal(
      source(tree).content('proc/pressure/cpu', callerPid).toString(),
      fixture('v1-captured/host/pressure/cpu'),
    );
    tree.cleanup();
    tree = v1Scenario();
    assert.equal(
      source(tree).content('proc/pressure/memory', callerPid).toString(),
      fixture('v1-captured/host/pressure/memory'),
    );
  });
});

describe('proc/slabinfo', () => {
  it('v1 on kernels >= 5.9 (empty memory.kmem.slabinfo, captured): host file', () => {
    tree = v1Scenario();
    assert.equal(
      source(tree).content('proc/slabinfo', callerPid).toString(),
      fixture('v1-captured/host/slabinfo'),
    );
  });

  it('v1 with a per-cgroup slabinfo: the cgroup file', () => {
    const own =
      'slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n' +
      'dentry               210    210    192   21    1 : tunables    0    0    0 : slabdata     10     10      0\n';
    tree = v1Scenario({
      cgroups: { [`memory${v1Container}`]: { ...capturedV1('memory'), 'memory.kmem.slabinfo': own } },
    });
    assert.equal(source(tree).content('proc/slabinfo', callerPid).toString(), own);
  });

  it('v2: host file', () => {
    tree = v2Scenario();
    assert.equal(
      source(tree).content('proc/slabinfo', callerPid).toString(),
      fixture('v1-captured/host/slabinfo'),
    );
  });
});
