import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import type { MemorySnapshot } from '../../../src/cgroup/memory.js';
import { silentLogger } from '../../../src/common/log.js';
import { computeSwap, renderSwaps } from '../../../src/views/swaps.js';
import { capturedV1, fixture, type Tree } from '../helpers/fixture-tree.js';
import { callerPid, v1Container, v1Scenario } from '../helpers/scenarios.js';

const MiB = 1024 * 1024;
function mem(version: 1 | 2, values: Partial<MemorySnapshot>): MemorySnapshot {
  return {
    version,
    limit: 256 * MiB,
    usage: 100 * MiB,
    swapLimit: Number.POSITIVE_INFINITY,
    swapUsage: 100 * MiB,
    swappiness: 60,
    stat: new Float64Array(26),
    ...values,
  };
}

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

describe('swap figures', () => {
  it('v1: memsw limit (RAM+swap) capped by the host swap; used = memsw - mem', () => {
    assert.deepEqual(
      computeSwap(mem(1, { swapLimit: 384 * MiB, swapUsage: 150 * MiB }), 262144, 524284, false),
      {
        totalKb: 393216,
        usedKb: 51200,
      },
    );
    assert.deepEqual(computeSwap(mem(1, { swapLimit: 384 * MiB }), 262144, 102400, false).totalKb, 102400);
    // memsw below the RAM limit: no swap; no host swap: no swap
    assert.equal(computeSwap(mem(1, { swapLimit: 128 * MiB }), 262144, 524284, false).totalKb, 0);
    assert.equal(computeSwap(mem(1, {}), 262144, 0, false).totalKb, 0);
    // unlimited memsw: the host's swap
    assert.equal(computeSwap(mem(1, {}), 262144, 524284, false).totalKb, 524284);
  });
  it('v1 swappiness 0: only what is already swapped', () => {
    assert.deepEqual(
      computeSwap(
        mem(1, { swapLimit: 384 * MiB, swapUsage: 110 * MiB, swappiness: 0 }),
        262144,
        524284,
        false,
      ),
      { totalKb: 10240, usedKb: 10240 },
    );
  });
  it('v2: memory.swap.max / memory.swap.current', () => {
    assert.deepEqual(
      computeSwap(mem(2, { swapLimit: 64 * MiB, swapUsage: 8 * MiB }), 262144, 524284, false),
      {
        totalKb: 65536,
        usedKb: 8192,
      },
    );
    assert.equal(computeSwap(mem(2, { swapLimit: 0, swapUsage: 0 }), 262144, 524284, false).totalKb, 0);
  });
  it('no swap accounting or -u: nothing', () => {
    assert.equal(computeSwap(mem(1, { swapLimit: Number.NaN }), 262144, 524284, false).totalKb, 0);
    assert.equal(computeSwap(mem(2, { swapLimit: 64 * MiB }), 262144, 524284, true).totalKb, 0);
  });
});

describe('proc/swaps', () => {
  it('keeps the kernel header and lays the line out like the kernel', () => {
    const header = fixture('v1-captured/host/swaps');
    assert.equal(renderSwaps(header, { totalKb: 0, usedKb: 0 }), header);
    assert.equal(
      renderSwaps(header, { totalKb: 393216, usedKb: 54148 }),
      `${header}none${' '.repeat(36)}virtual\t393216\t\t54148\t\t0\n`,
    );
  });

  it('container view from captured v1 files, swap on the host', () => {
    tree = v1Scenario({
      host: {
        meminfo: fixture('v1-captured/host/meminfo').replace(
          /^SwapTotal:.*$/m,
          'SwapTotal:        524284 kB',
        ),
      },
      cgroups: {
        [`memory${v1Container}`]: {
          ...capturedV1('memory'),
          'memory.usage_in_bytes': '268345344\n',
          'memory.memsw.usage_in_bytes': '324136960\n',
        },
      },
    });
    const source = createContainerViewSource(tree.options, createSharedViewState(tree.options), silentLogger);
    const lines = source.content('proc/swaps', callerPid).toString().split('\n');
    assert.equal(lines[0], fixture('v1-captured/host/swaps').trimEnd());
    assert.deepEqual(lines[1]!.split(/\s+/), ['none', 'virtual', '393216', '54484', '0']);
  });
});
