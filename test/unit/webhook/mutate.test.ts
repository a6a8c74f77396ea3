import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildInjectionPlan,
  defaultInjectedPaths,
  defaultInjectionOptions,
  resolveFiles,
} from '../../../src/webhook/injection-plan.js';
import { diff, type JsonObject } from '../../../src/webhook/json-patch.js';
import { mutatePod } from '../../../src/webhook/mutate.js';
import { applyPatch } from '../../helpers/json-patch-apply.js';
import { pick, rng } from '../../helpers/random.js';

const plan = buildInjectionPlan(defaultInjectionOptions);
const ctx = { mode: 'enabled' as const, namespace: 'apps', excludedNamespaces: ['kube-system'] };

describe('injection plan', () => {
  it('defaults to the eight /proc files runc accepts plus the online CPU list, and the parent directory', () => {
    assert.deepEqual([...defaultInjectedPaths].sort(), [
      'proc/cpuinfo',
      'proc/diskstats',
      'proc/loadavg',
      'proc/meminfo',
      'proc/slabinfo',
      'proc/stat',
      'proc/swaps',
      'proc/uptime',
      'sys/devices/system/cpu/online',
    ]);
    const parent = plan.mounts.at(-1)!;
    assert.deepEqual(parent, {
      volumeName: 'lxcfs-ts-view-parent',
      hostPath: '/var/lib/lxcfs-ts',
      hostPathType: 'Directory',
      mountPath: '/var/lib/lxcfs-ts',
      propagation: 'HostToContainer',
    });
    assert.ok(plan.mounts.slice(0, -1).every((m) => m.hostPathType === 'File' && !m.propagation));
  });

  it('refuses to expose a broad parent directory, and says how to get the legacy layout', () => {
    for (const viewDir of [
      '/var/lib/lxcfs',
      '/lxcfs',
      '/run/lxcfs',
      '/var/lib/lxc/lxcfs',
      '/srv/data/lxcfs',
    ]) {
      assert.throws(
        () => buildInjectionPlan({ ...defaultInjectionOptions, viewDir }),
        /--no-parent-mount/,
        viewDir,
      );
    }
    const legacy = buildInjectionPlan({
      ...defaultInjectionOptions,
      viewDir: '/var/lib/lxcfs',
      parentMount: false,
    });
    assert.ok(legacy.mounts.every((m) => m.hostPath.startsWith('/var/lib/lxcfs/')));
    assert.equal(
      buildInjectionPlan({ ...defaultInjectionOptions, viewDir: '/opt/lxcfs-view/lxcfs' }).mounts.at(-1)!
        .hostPath,
      '/opt/lxcfs-view',
    );
  });

  it('rejects relative or unnormalized view directories', () => {
    for (const viewDir of [
      'var/lib/lxcfs-ts/lxcfs',
      '/var/lib/lxcfs-ts/../lxcfs',
      '/var/lib/lxcfs-ts/lxcfs/',
      '/',
    ]) {
      assert.throws(
        () => buildInjectionPlan({ ...defaultInjectionOptions, viewDir }),
        /normalized absolute path/,
        viewDir,
      );
    }
  });

  it('validates file lists: aliases, unknown names, duplicates, directory covering its files', () => {
    assert.deepEqual(resolveFiles(['pressure']), [
      'proc/pressure/cpu',
      'proc/pressure/memory',
      'proc/pressure/io',
    ]);
    assert.deepEqual(resolveFiles(['proc/meminfo', '/proc/meminfo/', 'proc/meminfo']), ['proc/meminfo']);
    assert.deepEqual(resolveFiles(['sys/devices/system/cpu/online', 'sys/devices/system/cpu']), [
      'sys/devices/system/cpu',
    ]);
    assert.throws(() => resolveFiles(['proc/kcore']), /unknown view file "proc\/kcore"/);
    assert.throws(() => resolveFiles(['../etc/shadow']), /unknown view file/);
    assert.throws(() => resolveFiles([' ']), /no view file selected/);
  });
});

/** Random but valid pods: existing volumes and mounts, some of them at our paths or under our names. */
function randomPod(r: () => number): JsonObject {
  const paths = [
    '/data',
    '/proc/meminfo',
    '/proc/cpuinfo',
    '/sys/devices/system/cpu',
    '/var/lib',
    '/var/lib/lxcfs-ts',
    '/tmp',
  ];
  const names = ['data', 'lxcfs-ts-proc-meminfo', 'lxcfs-ts-view-parent', 'cache', 'lxcfs-proc-stat'];
  const volumes = names.filter(() => r() < 0.4).map((name) => ({ name, emptyDir: {} }));
  const container = (i: number) => {
    const c: JsonObject = { name: `c${i}`, image: 'busybox' };
    if (volumes.length > 0 && r() < 0.7) {
      c.volumeMounts = [...new Set(paths.filter(() => r() < 0.3))].map((mountPath) => ({
        name: pick(r, volumes).name,
        mountPath,
      }));
    }
    return c;
  };
  const pod: JsonObject = {
    metadata: {
      name: 'p',
      ...(r() < 0.5
        ? { annotations: { 'a/b': 'c', ...(r() < 0.2 ? { 'lxcfs-ts.io/status': 'old' } : {}) } }
        : {}),
    },
    spec: { containers: Array.from({ length: 1 + Math.floor(r() * 3) }, (_, i) => container(i)) },
  };
  if (r() < 0.3) (pod.spec as JsonObject).initContainers = [container(9)];
  if (volumes.length > 0) (pod.spec as JsonObject).volumes = volumes;
  return pod;
}

describe('pod mutation', () => {
  it('is idempotent, keeps every existing entry in place, never duplicates a mountPath (2000 random pods)', () => {
    const seed = 7;
    const r = rng(seed);
    for (let i = 0; i < 2000; i++) {
      const pod = randomPod(r);
      const frozen = structuredClone(pod);
      const first = mutatePod(pod, plan, ctx);
      assert.deepEqual(pod, frozen, 'the input is not modified');
      const patched = applyPatch(pod, diff(pod, first.pod)) as JsonObject;
      assert.deepEqual(patched, first.pod, `seed ${seed} case ${i}`);
      const second = mutatePod(patched, plan, ctx);
      assert.deepEqual(diff(patched, second.pod), [], `seed ${seed} case ${i}: second run changes nothing`);
      const spec = first.pod.spec as {
        volumes?: { name: string }[];
        containers: { volumeMounts?: { name: string; mountPath: string }[] }[];
      };
      const volumeNames = (spec.volumes ?? []).map((v) => v.name);
      assert.equal(new Set(volumeNames).size, volumeNames.length, 'volume names are unique');
      const before = pod.spec as typeof spec;
      assert.deepEqual(spec.volumes?.slice(0, before.volumes?.length ?? 0) ?? [], before.volumes ?? []);
      spec.containers.forEach((c, ci) => {
        const mounts = c.volumeMounts ?? [];
        assert.equal(new Set(mounts.map((m) => m.mountPath)).size, mounts.length, 'mountPaths are unique');
        assert.ok(
          mounts.every((m) => volumeNames.includes(m.name)),
          'every mount has its volume',
        );
        const original = before.containers[ci]!.volumeMounts ?? [];
        assert.deepEqual(mounts.slice(0, original.length), original, 'user mounts first and unchanged');
      });
      assert.equal(first.outcome === 'conflict', first.conflicts.length > 0);
    }
  });

  it('on reinvocation, a container added by a later webhook gets the mounts and nothing else changes', () => {
    const pod = { metadata: {}, spec: { containers: [{ name: 'app' }] } };
    const first = mutatePod(pod, plan, ctx).pod;
    const withSidecar = structuredClone(first) as { spec: { containers: JsonObject[] } };
    withSidecar.spec.containers.push({ name: 'istio-proxy' });
    const again = mutatePod(withSidecar as unknown as JsonObject, plan, ctx);
    const ops = diff(withSidecar as unknown as JsonObject, again.pod);
    assert.deepEqual(
      ops.map((o) => o.path),
      ['/spec/containers/1/volumeMounts'],
    );
    assert.equal((ops[0] as { value: unknown[] }).value.length, plan.mounts.length);
  });

  it('init containers are left alone unless asked for', () => {
    const pod = { metadata: {}, spec: { initContainers: [{ name: 'i' }], containers: [{ name: 'c' }] } };
    const off = mutatePod(pod, plan, ctx).pod.spec as { initContainers: JsonObject[] };
    assert.equal(off.initContainers[0]!.volumeMounts, undefined);
    const withInit = buildInjectionPlan({ ...defaultInjectionOptions, initContainers: true });
    const on = mutatePod(pod, withInit, ctx).pod.spec as { initContainers: { volumeMounts: unknown[] }[] };
    assert.equal(on.initContainers[0]!.volumeMounts.length, withInit.mounts.length);
  });

  it('a mount above or below one of our paths is a conflict too (nothing gets shadowed)', () => {
    const pod = {
      spec: {
        volumes: [{ name: 'v', emptyDir: {} }],
        containers: [
          {
            name: 'c',
            volumeMounts: [
              { name: 'v', mountPath: '/var/lib' },
              { name: 'v', mountPath: '/sys/devices/system/cpu' },
            ],
          },
        ],
      },
    };
    const result = mutatePod(pod, plan, ctx);
    assert.equal(result.status, 'conflict: /sys/devices/system/cpu/online,/var/lib/lxcfs-ts');
    assert.deepEqual(result.conflicts, [
      { container: 'c', mountPath: '/sys/devices/system/cpu/online' },
      { container: 'c', mountPath: '/var/lib/lxcfs-ts' },
    ]);
    const volumes = (result.pod.spec as { volumes: { name: string }[] }).volumes.map((v) => v.name);
    assert.ok(!volumes.includes('lxcfs-ts-view-parent'), 'no unused volume is added');
  });

  it('leaves pods it cannot understand untouched (the API server rejects them anyway)', () => {
    for (const bad of [
      {},
      { spec: { containers: [] } },
      { spec: { containers: 'x' } },
      { metadata: 3, spec: { containers: [{}] } },
      { spec: { containers: [{ volumeMounts: {} }] } },
    ]) {
      const result = mutatePod(bad as JsonObject, plan, ctx);
      assert.equal(result.outcome, 'invalid');
      assert.deepEqual(diff(bad as JsonObject, result.pod), []);
    }
  });
});
