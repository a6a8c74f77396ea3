/**
 * The DaemonSet's init container script (taken from the rendered default install), run against
 * real mounts: it detaches the dead FUSE mount a killed agent leaves behind, removes the empty
 * directories a runtime can make where view files should be, and leaves files and a live view alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isMounted, type RunningDaemon, startDaemon, waitFor } from '../../helpers/daemon.js';
import { find, podSpecOf, render } from '../../helpers/kustomize.js';
import { needsRoot } from '../../helpers/root.js';

const init = podSpecOf(find(render('deploy'), 'DaemonSet', 'lxcfs-ts-agent')).initContainers!.find((c) => c.name === 'clean-mountpoint')!;
const script = init.command!.at(-1)!;

function runCleanup(view: string) {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { PATH: process.env.PATH, VIEW_DIR: view }, timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('the init container\'s mountpoint cleanup', { concurrency: false }, () => {
  const daemons: RunningDaemon[] = [];
  const dirs: string[] = [];
  after(() => {
    for (const d of daemons) d.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('detaches the dead mount of a killed agent', async (t) => {
    if (!needsRoot(t)) return;
    const daemon = await startDaemon();
    daemons.push(daemon);
    process.kill(-daemon.pid, 'SIGKILL'); // supervisor and serving process: nobody unmounts
    await waitFor('the connection to die', () => {
      try {
        readFileSync(join(daemon.mountpoint, 'proc/meminfo'));
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
      }
    });
    assert.ok(isMounted(daemon.mountpoint), 'the dead mount is still there');
    const r = runCleanup(daemon.mountpoint);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /detached a dead FUSE mount/);
    assert.equal(isMounted(daemon.mountpoint), false);
    assert.deepEqual(readdirSync(daemon.mountpoint), [], 'an empty directory the next agent mounts on');
  });

  test('leaves a live view alone', async (t) => {
    if (!needsRoot(t)) return;
    const daemon = await startDaemon();
    daemons.push(daemon);
    const r = runCleanup(daemon.mountpoint);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /live mount; leaving it/);
    assert.ok(isMounted(daemon.mountpoint));
    assert.match(readFileSync(join(daemon.mountpoint, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
  });

  test('removes empty directories made where view files belong, never files', (t) => {
    if (!needsRoot(t)) return;
    const view = mkdtempSync(join(tmpdir(), 'lxcfs-ts-test-deploy-clean-'));
    dirs.push(view);
    for (const file of ['proc/meminfo', 'proc/cpuinfo', 'sys/devices/system/cpu/online']) mkdirSync(join(view, file), { recursive: true });
    mkdirSync(join(view, 'kept'));
    writeFileSync(join(view, 'kept', 'note'), 'not ours to delete\n');
    const r = runCleanup(view);
    assert.equal(r.status, 0, r.output);
    assert.deepEqual(readdirSync(view), ['kept']);
    assert.ok(existsSync(join(view, 'kept', 'note')));
  });

  test('does nothing where there is nothing (a first start)', (t) => {
    if (!needsRoot(t)) return;
    const r = runCleanup(join(tmpdir(), `lxcfs-ts-test-deploy-clean-missing-${process.pid}`));
    assert.equal(r.status, 0, r.output);
    assert.equal(r.output, '');
  });
});
