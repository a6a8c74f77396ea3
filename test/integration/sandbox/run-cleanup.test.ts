/**
 * `lxcfs-ts run` removes everything it made (cgroups, mounts, its private daemon, the sandbox's
 * processes) when CMD exits, when a step fails, and when `run` gets SIGINT or SIGTERM at any
 * moment; and even a SIGKILLed `run` takes the sandbox's processes down with it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  assertNothingLeft,
  privateDaemonDirectories,
  privateDaemonMounts,
  privateDaemonProcesses,
  processesWith,
  requireRoot,
  sandboxCgroups,
  startLxcfsTs,
  uniqueToken,
  type ViewBackend,
  viewBackend,
  waitFor,
} from './helpers.js';

describe('lxcfs-ts run: cleanup', () => {
  let backend: ViewBackend;
  let dir: string;
  before(async () => {
    if (process.getuid?.() !== 0) return;
    backend = await viewBackend('cleanup', 'mounts');
    dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-cleanup-'));
  });
  after(async () => {
    await backend?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A CMD that announces it runs (a file in `dir`), then waits. As PID 1 it ignores SIGTERM (no
   * handler); dash -c catches SIGINT and exits 130 once its current `sleep` ends.
   */
  const waitingCmd = (token: string, extra = '') => [
    'sh',
    '-c',
    `${extra}touch ${dir}/${token}; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; : ${token}`,
  ];

  async function startWaiting(token: string, extra = '', args: string[] = []) {
    const run = startLxcfsTs(['run', ...backend.runArgs, ...args, '--', ...waitingCmd(token, extra)]);
    await waitFor('CMD to run', () => existsSync(join(dir, token)) || run.child.exitCode !== null);
    assert.equal(run.child.exitCode, null, 'the sandbox started');
    // Positive control: while it runs, the census does see the sandbox.
    assert.ok(sandboxCgroups(run.child.pid!).length > 0, 'cgroups exist while running');
    assert.ok(processesWith(token).length > 0, 'processes exist while running');
    if (backend.name === 'private') {
      assert.ok(privateDaemonMounts(run.child.pid!).length > 0, 'the private view is mounted');
      assert.ok(privateDaemonProcesses(run.child.pid!).length > 0, 'the private daemon runs');
    }
    return run;
  }

  it('removes everything after CMD exits', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('success');
    const run = startLxcfsTs([
      'run',
      ...backend.runArgs,
      '--memory',
      '128M',
      '--cpus',
      '0.5',
      '--',
      'sh',
      '-c',
      `: ${token}`,
    ]);
    const result = await run.result;
    assert.equal(result.code, 0, result.stderr);
    await assertNothingLeft(run.child.pid!, token);
  });

  it('removes everything when the sandbox cannot be set up (read-only rootfs, no mountpoints)', async (t) => {
    if (!requireRoot(t)) return;
    const rootfs = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-rorootfs-'));
    spawnSync('cp', ['/bin/true', rootfs]);
    spawnSync('mount', ['--bind', '-o', 'ro', rootfs, rootfs]);
    try {
      const token = uniqueToken('setup-failure');
      const run = startLxcfsTs([
        'run',
        ...backend.runArgs,
        '--memory',
        '128M',
        '--rootfs',
        rootfs,
        '--',
        '/true',
        token,
      ]);
      const result = await run.result;
      assert.equal(result.code, 125, result.stderr);
      assert.match(result.stderr, /mkdir: cannot create directory .*Read-only file system/);
      assert.match(result.stderr, /the sandbox could not be set up/);
      await assertNothingLeft(run.child.pid!, token);
    } finally {
      spawnSync('umount', [rootfs]);
      rmSync(rootfs, { recursive: true, force: true });
    }
  });

  for (const [signal, status] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`on ${signal} passes it to CMD, ends the sandbox (SIGTERM: after the grace period), removes everything, exits ${status}`, async (t) => {
      if (!requireRoot(t)) return;
      const token = uniqueToken(signal);
      const run = await startWaiting(token, '', ['--memory', '128M', '--cpuset', '0']);
      run.child.kill(signal);
      const result = await run.result;
      assert.equal(result.code, status, result.stderr);
      await assertNothingLeft(run.child.pid!, token);
    });
  }

  it('lets a CMD that handles SIGTERM exit on its own terms, with its own status', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('trap');
    const run = await startWaiting(token, `trap 'exit 5' TERM; `);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    const result = await run.result;
    assert.equal(result.code, 5, result.stderr);
    assert.ok(Date.now() - sent < 2500, 'well before the grace period ends');
    await assertNothingLeft(run.child.pid!, token);
  });

  // SIGTERM, because the waiting CMD (dash as PID 1) ignores it, so only the second signal can end
  // the sandbox before the grace period. dash -c catches SIGINT and exits on it by itself, so a
  // second SIGINT could land while `run`'s node process is exiting, when it no longer catches
  // signals, and end it by that signal instead of its exit status.
  it('kills at once on a second signal', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('twice');
    const run = await startWaiting(token);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    await sleep(100);
    run.child.kill('SIGTERM');
    const result = await run.result;
    assert.equal(result.code, 143, result.stderr);
    assert.ok(Date.now() - sent < 2500, 'without waiting for the grace period');
    await assertNothingLeft(run.child.pid!, token);
  });

  it('removes everything whichever setup step a SIGTERM interrupts', async (t) => {
    if (!requireRoot(t)) return;
    for (const delayMs of [0, 30, 60, 100, 150, 250, 400, 700]) {
      const token = uniqueToken(`early-${delayMs}`);
      const run = startLxcfsTs([
        'run',
        ...backend.runArgs,
        '--memory',
        '128M',
        '--cpuset',
        '0',
        '--',
        ...waitingCmd(token),
      ]);
      await sleep(delayMs);
      run.child.kill('SIGTERM');
      const result = await run.result;
      // Before `run` has installed its handlers the signal simply ends it, and nothing exists yet.
      const stopped = result.code === 143 || (result.code === null && result.signal === 'SIGTERM');
      assert.ok(stopped, `delay ${delayMs} ms: status ${result.code} ${result.signal} ${result.stderr}`);
      await assertNothingLeft(run.child.pid!, token);
    }
  });

  it('takes the sandbox processes down even when run itself is SIGKILLed', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('sigkill');
    const run = await startWaiting(token);
    const runPid = run.child.pid!;
    run.child.kill('SIGKILL');
    await run.result;
    // A killed run cannot clean up: the parent-death signals still end every process it started.
    await waitFor('the sandbox processes to die', () => processesWith(token).length === 0, 5000);
    if (backend.name === 'private') {
      await waitFor('the private daemon to stop', () => privateDaemonProcesses(runPid).length === 0, 5000);
      await waitFor(
        'the view to be unmounted',
        () => !privateDaemonMounts(runPid).some((m) => m.endsWith('/view')),
        5000,
      );
    }
    // What is left is what only `run` could remove; the test removes it (they are this test's).
    for (const cgroup of sandboxCgroups(runPid)) {
      rmdirSync(cgroup);
      try {
        rmdirSync(dirname(cgroup)); // the shared parent, unless another sandbox uses it
      } catch {}
    }
    for (const mountPoint of privateDaemonMounts(runPid)) spawnSync('umount', ['-l', mountPoint]);
    for (const dir of privateDaemonDirectories(runPid)) {
      if (existsSync(join(dir, 'view'))) rmdirSync(join(dir, 'view'));
      rmdirSync(dir);
    }
  });
});
