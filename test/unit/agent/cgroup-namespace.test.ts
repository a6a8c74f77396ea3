/**
 * Telling from PID 1's /proc/1/cgroup whether the daemon's cgroup namespace hides other
 * containers' cgroups (what a runtime's private cgroup namespace does to the agent).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cgroupNamespaceProblem } from '../../../src/agent/preflight.js';

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function procWithInitCgroup(text: string | null): string {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-cgns-'));
  roots.push(root);
  mkdirSync(join(root, '1'));
  if (text !== null) writeFileSync(join(root, '1', 'cgroup'), text);
  return root;
}

test('the host\'s cgroup namespace (v1 and v2) is fine', () => {
  assert.equal(cgroupNamespaceProblem(procWithInitCgroup('4:memory:/\n3:cpuset:/\n1:name=systemd:/init.scope\n0::/\n')), null);
  assert.equal(cgroupNamespaceProblem(procWithInitCgroup('0::/init.scope\n')), null);
});

test('a private namespace rooted at the agent\'s container cgroup is reported (v2)', () => {
  const problem = cgroupNamespaceProblem(procWithInitCgroup('0::/../../../../init.scope\n'));
  assert.match(problem ?? '', /private cgroup namespace/);
  assert.match(problem ?? '', /LXCFS_TS_CGROUPNS=\/proc\/1\/ns\/cgroup/);
});

test('a private namespace is reported on v1 even when only one hierarchy is affected', () => {
  const text = '9:name=systemd:/\n4:memory:/../../..\n3:cpuset:/\n0::/\n';
  assert.notEqual(cgroupNamespaceProblem(procWithInitCgroup(text)), null);
});

test('a directory named like .. (/..x) is not mistaken for one', () => {
  assert.equal(cgroupNamespaceProblem(procWithInitCgroup('0::/..x/y\n')), null);
});

test('an unreadable /proc/1/cgroup (no pid namespace view) is not a problem to report', () => {
  assert.equal(cgroupNamespaceProblem(procWithInitCgroup(null)), null);
});
