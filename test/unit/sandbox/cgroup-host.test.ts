import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { detectCgroupHost, parseMountinfo } from '../../../src/sandbox/cgroup-host.js';
import { RunError } from '../../../src/sandbox/run-error.js';

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../../../test/fixtures/sandbox/${name}`, import.meta.url)), 'utf8');

describe('parseMountinfo', () => {
  it('reads mount points (unescaped), fs types, options and propagation fields', () => {
    const mounts = parseMountinfo(fixture('mountinfo-hybrid-v1.txt'));
    const parent = mounts.find((m) => m.mountPoint === '/run/lxcfs views');
    assert.ok(parent, 'the \\040 escape is a space');
    assert.deepEqual(parent.optionalFields, ['shared:1']);
    const view = mounts.find((m) => m.mountPoint === '/run/lxcfs views/view');
    assert.equal(view?.fsType, 'fuse.lxcfs');
    assert.deepEqual(mounts.find((m) => m.mountPoint === '/sys/fs/cgroup/cpu')?.superOptions, ['rw', 'cpu']);
  });
});

describe('detectCgroupHost', () => {
  it('uses the v1 hierarchies of a hybrid host and ignores its empty cgroup2 mount', () => {
    const host = detectCgroupHost(parseMountinfo(fixture('mountinfo-hybrid-v1.txt')));
    assert.equal(host.version, 1);
    assert.deepEqual(host.version === 1 && Object.fromEntries(host.hierarchies), {
      cpu: '/sys/fs/cgroup/cpu',
      cpuacct: '/sys/fs/cgroup/cpuacct',
      cpuset: '/sys/fs/cgroup/cpuset',
      memory: '/sys/fs/cgroup/memory',
      blkio: '/sys/fs/cgroup/blkio',
      pids: '/sys/fs/cgroup/pids',
    });
  });

  it('maps co-mounted controllers to their one hierarchy, and skips binds of sub-cgroups', () => {
    const host = detectCgroupHost(parseMountinfo(fixture('mountinfo-comounted-v1.txt')));
    assert.equal(host.version, 1);
    if (host.version !== 1) return;
    assert.equal(host.hierarchies.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(host.hierarchies.get('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct');
    assert.equal(host.hierarchies.get('pids'), '/sys/fs/cgroup/pids', 'not the bind of /kubepods/pod1');
    assert.equal(host.hierarchies.has('net_cls'), false);
  });

  it('finds the unified root of a v2 host', () => {
    assert.deepEqual(detectCgroupHost(parseMountinfo(fixture('mountinfo-unified-v2.txt'))), {
      version: 2,
      root: '/sys/fs/cgroup',
    });
  });

  it('says so when no hierarchy root is mounted (inside a container)', () => {
    assert.throws(
      () => detectCgroupHost(parseMountinfo(fixture('mountinfo-container-v1.txt'))),
      (err: unknown) => err instanceof RunError && /no cgroup hierarchy is mounted/.test(err.message),
    );
  });
});
