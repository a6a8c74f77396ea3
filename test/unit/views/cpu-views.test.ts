import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { silentLogger } from '../../../src/common/log.js';
import type { ViewSource } from '../../../src/container/view-source.js';
import { parseHostCpuinfo, renderCpuinfo } from '../../../src/views/cpuinfo.js';
import { fixture, type Tree } from '../helpers/fixture-tree.js';
import { callerPid, v1Container, v1Scenario, v2ContainerPath, v2Scenario } from '../helpers/scenarios.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

function source(t: Tree): ViewSource {
  return createContainerViewSource(t.options, createSharedViewState(t.options), silentLogger);
}

const processors = (cpuinfo: string) =>
  [...cpuinfo.matchAll(/^processor\t: (\d+)$/gm)].map((m) => Number(m[1]));
const apicids = (cpuinfo: string) => [...cpuinfo.matchAll(/^apicid\t\t: (\d+)$/gm)].map((m) => Number(m[1]));

describe('proc/cpuinfo', () => {
  it('keeps only the visible CPUs, renumbered, each with its own host block', () => {
    const host = parseHostCpuinfo(fixture('host-4cpu/cpuinfo'))!;
    const out = renderCpuinfo(host, [1, 3]);
    assert.deepEqual(processors(out), [0, 1]);
    assert.deepEqual(apicids(out), [1, 3]);
    assert.match(out, /power management:\n\n$/);
  });

  it('v2: cpuset 1,3 gives 2 processors; --enable-cfs with quota 1.5 keeps them; quota 1 keeps one', () => {
    const cgroups = (cpus: string, max: string) => ({
      [v2ContainerPath.slice(1)]: {
        'cpuset.cpus.effective': `${cpus}\n`,
        'cpu.max': `${max}\n`,
        'memory.current': '1\n',
        'memory.stat': 'anon 1\n',
      },
    });
    tree = v2Scenario({ cgroups: cgroups('1,3', '150000 100000') });
    let out = source(tree).content('proc/cpuinfo', callerPid).toString();
    assert.deepEqual(processors(out), [0, 1]);
    assert.deepEqual(apicids(out), [1, 3]);
    tree.cleanup();
    tree = v2Scenario({ cgroups: cgroups('1,3', '150000 100000'), options: { enableCfs: true } });
    assert.deepEqual(processors(source(tree).content('proc/cpuinfo', callerPid).toString()), [0, 1]);
    tree.cleanup();
    tree = v2Scenario({ cgroups: cgroups('1,3', '100000 100000'), options: { enableCfs: true } });
    out = source(tree).content('proc/cpuinfo', callerPid).toString();
    assert.deepEqual(processors(out), [0]);
    assert.deepEqual(apicids(out), [1]);
  });

  it('without --enable-cfs the quota never changes the count (never from shares/weight either)', () => {
    tree = v2Scenario();
    assert.deepEqual(processors(source(tree).content('proc/cpuinfo', callerPid).toString()), [0, 1, 2, 3]);
  });

  it('an ancestor quota binds: the pod allows 2 CPUs, the container 1.5 -> ceil = 2 with --enable-cfs', () => {
    tree = v2Scenario({ options: { enableCfs: true } });
    assert.deepEqual(processors(source(tree).content('proc/cpuinfo', callerPid).toString()), [0, 1]);
  });
});

describe('sys/devices/system/cpu/{online,possible,present} and visibleCpus', () => {
  it('one N everywhere, for v1 with --enable-cfs (quota 1 CPU captured on this machine)', () => {
    tree = v1Scenario({ options: { enableCfs: true } });
    const s = source(tree);
    for (const f of ['online', 'possible', 'present']) {
      assert.equal(s.content(`sys/devices/system/cpu/${f}`, callerPid).toString(), '0\n', f);
    }
    assert.deepEqual(s.visibleCpus(callerPid), [0]);
    assert.deepEqual(processors(s.content('proc/cpuinfo', callerPid).toString()), [0]);
  });

  it('a caller who sees every host CPU gets the host files and visibleCpus null', () => {
    tree = v1Scenario();
    const s = source(tree);
    assert.equal(s.visibleCpus(callerPid), null);
    assert.equal(
      s.content('sys/devices/system/cpu/online', callerPid).toString(),
      fixture('v1-captured/host/cpu-online'),
    );
  });

  it('v2 cpuset 2-3 on a 4-CPU host: 0-1 in every file, cpus 2 and 3 visible', () => {
    tree = v2Scenario({
      cgroups: {
        [v2ContainerPath.slice(1)]: { 'cpuset.cpus.effective': '2-3\n', 'memory.current': '1\n' },
      },
    });
    const s = source(tree);
    assert.deepEqual(s.visibleCpus(callerPid), [2, 3]);
    for (const f of ['online', 'possible', 'present']) {
      assert.equal(s.content(`sys/devices/system/cpu/${f}`, callerPid).toString(), '0-1\n', f);
    }
  });

  it('limits are re-read (in-place resize) and a cpuset missing in the cgroup comes from its ancestors', async () => {
    tree = v1Scenario({ cgroups: { [`cpuset${v1Container}`]: {} } });
    const s = source(tree);
    assert.equal(s.visibleCpus(callerPid), null);
    tree.write('cgroup/cpuset/cpuset.effective_cpus', '1\n');
    tree.write('cgroup/cpuset/cpuset.cpus', '1\n');
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(s.visibleCpus(callerPid), [1]);
  });
});
