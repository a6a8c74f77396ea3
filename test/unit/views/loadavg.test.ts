import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { createContainerViewSource, createSharedViewState } from '../../../src/container/container-views.js';
import { LoadavgSampler } from '../../../src/agent/loadavg-sampler.js';
import { silentLogger } from '../../../src/common/log.js';
import { calcLoad, EXP, FIXED_1, renderLoadavg } from '../../../src/views/loadavg.js';
import { fixture, type Tree, writeProc } from '../helpers/fixture-tree.js';
import { callerPid, containerPidNs, initPid, v2ContainerPath, v2Scenario } from '../helpers/scenarios.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

describe('load average arithmetic', () => {
  it('calc_load converges like the kernel and renders with its rounding', () => {
    let load = 0;
    for (let i = 0; i < 12; i++) load = calcLoad(load, EXP[0], 2); // one minute of 2 busy tasks
    // 2 * (1 - e^-1) = 1.264
    assert.ok(Math.abs(load / FIXED_1 - 1.264) < 0.01, String(load / FIXED_1));
    for (let i = 0; i < 200; i++) load = calcLoad(load, EXP[0], 2);
    assert.equal(renderLoadavg([load, 0, 0], 2, 5, 77), '2.00 0.00 0.00 2/5 77\n');
    // the kernel's first values for 2 busy loops (LXCFS capture, same arithmetic): 0.16 after 1 round... 0.31
    let l1 = 0;
    l1 = calcLoad(l1, EXP[0], 2);
    assert.equal(renderLoadavg([l1, 0, 0], 0, 1, 1).split(' ')[0], '0.16');
    l1 = calcLoad(l1, EXP[0], 2);
    assert.equal(renderLoadavg([l1, 0, 0], 0, 1, 1).split(' ')[0], '0.31');
  });
});

describe('proc/loadavg with -l', () => {
  /** /proc/<tid>/task/<tid>/{stat,schedstat}; the comm contains ") " to exercise the parser. */
  function writeThread(t: Tree, tid: number, state: string, schedstat: string): void {
    const dir = join(t.root, 'proc', String(tid), 'task', String(tid));
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'stat'),
      `${tid} (odd) name) ${state} 1 ${tid} ${tid} 0 -1 4194560 100 0 0 0 1 2\n`,
    );
    writeFileSync(join(dir, 'schedstat'), `${schedstat}\n`);
  }

  function setup(states: Record<number, string>): Tree {
    const t = v2Scenario({ options: { enableLoadavg: true } });
    for (const [tid, state] of Object.entries(states)) {
      if (Number(tid) !== initPid && Number(tid) !== callerPid) {
        writeProc(t.root, {
          pid: Number(tid),
          cgroup: `0::${v2ContainerPath}\n`,
          pidNs: containerPidNs,
          nspid: [Number(tid), Number(tid) - 4100],
          ppid: initPid,
        });
      }
      writeThread(t, Number(tid), state, `${1000 + Number(tid)} 0 1`);
    }
    return t;
  }

  it('without -l the host file is served', () => {
    tree = v2Scenario();
    const s = createContainerViewSource(tree.options, createSharedViewState(tree.options), silentLogger);
    assert.equal(s.content('proc/loadavg', callerPid).toString(), fixture('v1-captured/host/loadavg'));
  });

  it('counts R and D threads of the cgroup, averages like the kernel, shows ns-local last pid', () => {
    // cgroup.threads of the v2 fixture: 4101 4150 4151 4188
    tree = setup({ 4101: 'S', 4150: 'R', 4151: 'D', 4188: 'R' });
    const shared = createSharedViewState(tree.options);
    const s = createContainerViewSource(tree.options, shared, silentLogger);
    const sampler = new LoadavgSampler(tree.options, shared, silentLogger);
    try {
      // first read registers the container; the reader itself is running
      assert.match(s.content('proc/loadavg', callerPid).toString(), /^0\.00 0\.00 0\.00 1\/1 \d+\n$/);
      sampler.countNew();
      // counted at once: 2 running of 4 threads; newest thread 4188 is pid 7 in the container
      assert.equal(s.content('proc/loadavg', callerPid).toString(), '0.00 0.00 0.00 2/4 7\n');
      for (let i = 0; i < 12; i++) sampler.round();
      const [a1, a5, a15] = s.content('proc/loadavg', callerPid).toString().split(' ').map(Number);
      // three active tasks (R, R, D) for one minute
      let expected = 0;
      for (let i = 0; i < 12; i++) expected = calcLoad(expected, EXP[0], 3);
      assert.equal(a1, Math.floor(((expected + 10) * 100) / FIXED_1) / 100);
      assert.ok(a1! > a5! && a5! > a15! && a15! > 0);
      assert.equal(sampler.stats.containers, 1);
      assert.equal(sampler.stats.threads, 4);
      // procs_running / procs_blocked of /proc/stat follow the sampler
      const stat = s.content('proc/stat', callerPid).toString();
      assert.match(stat, /^procs_running 2$/m);
      assert.match(stat, /^procs_blocked 1$/m);
    } finally {
      sampler.close();
    }
  });

  it('/proc/stat alone registers the container: vmstat gets its r and b without reading loadavg', () => {
    tree = setup({ 4101: 'S', 4150: 'R', 4151: 'D', 4188: 'R' });
    const shared = createSharedViewState(tree.options);
    const s = createContainerViewSource(tree.options, shared, silentLogger);
    const sampler = new LoadavgSampler(tree.options, shared, silentLogger);
    try {
      // before the first count: the caller is the one running thread (the host's file says 2)
      assert.match(fixture('v1-captured/host/stat'), /^procs_running 2$/m);
      const first = s.content('proc/stat', callerPid).toString();
      assert.match(first, /^procs_running 1$/m);
      assert.match(first, /^procs_blocked 0$/m);
      sampler.countNew();
      const counted = s.content('proc/stat', callerPid).toString();
      assert.match(counted, /^procs_running 2$/m);
      assert.match(counted, /^procs_blocked 1$/m);
    } finally {
      sampler.close();
    }
  });

  it('re-reads a thread state only when the thread was scheduled since the last round', () => {
    // one thread running from the start (an idle container shows its reader as the one running)
    tree = setup({ 4101: 'R', 4150: 'S', 4151: 'S', 4188: 'S' });
    const shared = createSharedViewState(tree.options);
    const s = createContainerViewSource(tree.options, shared, silentLogger);
    const sampler = new LoadavgSampler(tree.options, shared, silentLogger);
    try {
      s.content('proc/loadavg', callerPid);
      sampler.round();
      // state changed but the thread was not switched in since: cannot happen on a real kernel,
      // so it proves the state came from the memo
      writeThread(tree, 4150, 'R', '5150 0 1');
      sampler.round();
      assert.match(s.content('proc/loadavg', callerPid).toString(), / 1\/4 /);
      // switched in once more: read again
      writeThread(tree, 4150, 'R', '5150 0 2');
      sampler.round();
      assert.match(s.content('proc/loadavg', callerPid).toString(), / 2\/4 /);
      // no scheduler statistics (all zeros): always read
      writeThread(tree, 4151, 'D', '0 0 0');
      sampler.round();
      writeThread(tree, 4151, 'R', '0 0 0');
      sampler.round();
      assert.match(s.content('proc/loadavg', callerPid).toString(), / 3\/4 /);
    } finally {
      sampler.close();
    }
  });

  it('the reader counts as running, as in the kernel\'s count: an idle container shows 1, not 0', () => {
    tree = setup({ 4101: 'S', 4150: 'S', 4151: 'S', 4188: 'S' });
    const shared = createSharedViewState(tree.options);
    const s = createContainerViewSource(tree.options, shared, silentLogger);
    const sampler = new LoadavgSampler(tree.options, shared, silentLogger);
    try {
      s.content('proc/loadavg', callerPid);
      sampler.round();
      assert.match(s.content('proc/loadavg', callerPid).toString(), /^0\.00 0\.00 0\.00 1\/4 /);
      assert.match(s.content('proc/stat', callerPid).toString(), /^procs_running 1$/m);
    } finally {
      sampler.close();
    }
  });

  it('drops containers whose cgroup disappeared', () => {
    tree = setup({ 4101: 'S', 4150: 'R', 4151: 'S', 4188: 'S' });
    const shared = createSharedViewState(tree.options);
    const s = createContainerViewSource(tree.options, shared, silentLogger);
    const sampler = new LoadavgSampler(tree.options, shared, silentLogger);
    try {
      s.content('proc/loadavg', callerPid);
      sampler.round();
      assert.equal(sampler.stats.containers, 1);
      writeFileSync(join(tree.root, 'cgroup', v2ContainerPath, 'cgroup.threads'), '');
      sampler.round();
      assert.equal(sampler.stats.containers, 0);
    } finally {
      sampler.close();
    }
  });
});
