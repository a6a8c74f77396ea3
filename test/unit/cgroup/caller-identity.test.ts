import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { CallerResolver, containerPaths, parseStatus } from '../../../src/cgroup/caller-identity.js';
import { parseProcCgroup } from '../../../src/cgroup/layout.js';
import { silentLogger } from '../../../src/common/log.js';
import {
  buildTree,
  hostPidNs,
  type ProcSpec,
  type Tree,
  v1ProcCgroup,
  v2ProcCgroup,
} from '../helpers/fixture-tree.js';

let tree: Tree | null = null;
afterEach(() => {
  tree?.cleanup();
  tree = null;
});

function resolver(procs: ProcSpec[], version: 1 | 2 = 2): CallerResolver {
  tree = buildTree({ version, host: {}, cgroups: {}, procs, selfPid: 1 });
  return new CallerResolver(tree.options.procRoot, version, silentLogger);
}

const host = (pid: number, path = '/'): ProcSpec => ({
  pid,
  cgroup: v2ProcCgroup(path),
  pidNs: hostPidNs,
  nspid: [pid],
});
const pod = '/kubepods/pod1';

describe('caller identity', () => {
  it('a caller in the host pid namespace uses its own cgroup', () => {
    const r = resolver([host(1), host(500, '/system.slice/cron.service')]);
    const ctx = r.resolve(500)!;
    assert.equal(ctx.hostPidNs, true);
    assert.equal(ctx.paths.memory, '/system.slice/cron.service');
    assert.equal(ctx.initPid, 0);
  });

  it('a container process uses its init cgroup, also from a sub-cgroup it created', () => {
    const r = resolver([
      host(1),
      { pid: 700, cgroup: v2ProcCgroup(`${pod}/app`), pidNs: 77, nspid: [700, 1], ppid: 650 },
      { pid: 701, cgroup: v2ProcCgroup(`${pod}/app/workers`), pidNs: 77, nspid: [701, 5], ppid: 700 },
    ]);
    const ctx = r.resolve(701)!;
    assert.equal(ctx.hostPidNs, false);
    assert.equal(ctx.initPid, 700);
    assert.equal(ctx.pidNsLevel, 1);
    assert.equal(ctx.paths.memory, `${pod}/app`);
    assert.equal(ctx.paths.cpu, `${pod}/app`);
  });

  it('shareProcessNamespace: PID 1 is pause in a sibling cgroup, so the caller keeps its own', () => {
    const r = resolver([
      host(1),
      { pid: 800, cgroup: v2ProcCgroup(`${pod}/pause`), pidNs: 88, nspid: [800, 1], ppid: 790 },
      { pid: 810, cgroup: v2ProcCgroup(`${pod}/app`), pidNs: 88, nspid: [810, 12], ppid: 790 },
    ]);
    const ctx = r.resolve(810)!;
    assert.equal(ctx.initPid, 800);
    assert.equal(ctx.paths.memory, `${pod}/app`);
    assert.equal(r.resolve(800)!.paths.memory, `${pod}/pause`);
  });

  it('finds the init by scanning /proc when the caller entered the namespace from outside (exec)', () => {
    const r = resolver([
      host(1),
      host(650),
      { pid: 700, cgroup: v2ProcCgroup(`${pod}/app`), pidNs: 77, nspid: [700, 1], ppid: 650 },
      // `kubectl exec`: parent is the runtime's shim in the host namespace
      { pid: 990, cgroup: v2ProcCgroup(`${pod}/app`), pidNs: 77, nspid: [990, 40], ppid: 650 },
    ]);
    assert.equal(r.resolve(990)!.initPid, 700);
  });

  it('per controller on v1: only controllers under the init cgroup are replaced', () => {
    const init = parseProcCgroup(v1ProcCgroup(`${pod}/app`), 1);
    const caller = parseProcCgroup(v1ProcCgroup(`${pod}/app`, `${pod}/app/sub`), 1);
    assert.equal(containerPaths(caller, init).memory, `${pod}/app`);
    const elsewhere = parseProcCgroup(v1ProcCgroup('/other'), 1);
    assert.equal(containerPaths(elsewhere, init).memory, '/other');
  });

  it('reads the boottime offset of a caller in its own time namespace', () => {
    const r = resolver([
      host(1),
      {
        pid: 700,
        cgroup: v2ProcCgroup(pod),
        pidNs: 77,
        nspid: [700, 1],
        timeNs: 4026532999,
        timensOffsets: 'monotonic           0         0\nboottime        -1234 500000000\n',
      },
      // unshared a time namespace for its children only: its own clock is the host's
      {
        pid: 1700,
        cgroup: v2ProcCgroup('/'),
        pidNs: hostPidNs,
        nspid: [1700],
        timeForChildrenNs: 4026533000,
      },
    ]);
    assert.equal(r.resolve(700)!.boottimeOffset, -1233.5);
    assert.equal(r.resolve(1700)!.boottimeOffset, 0);
  });

  it('unresolvable callers (pid 0, gone) are null', () => {
    const r = resolver([host(1)]);
    assert.equal(r.resolve(0), null);
    assert.equal(r.resolve(424242), null);
  });

  it('parses status PPid and NSpid', () => {
    assert.deepEqual(parseStatus('Name:\tx\nPPid:\t12\nNSpid:\t300\t4\t1\n'), {
      ppid: 12,
      nspid: [300, 4, 1],
    });
  });
});
