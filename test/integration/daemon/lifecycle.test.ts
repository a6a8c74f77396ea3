/**
 * Starting and stopping the daemon the way operators do, including the ways a start goes wrong.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliPath, exitOf, isMounted, startDaemon, waitFor } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';

function runCli(args: string[], timeout = 20_000) {
  return spawnSync(process.execPath, [cliPath, ...args], { encoding: 'utf8', timeout });
}

test('--help and --version exit 0; a bad flag prints usage and exits 2', () => {
  const help = runCli(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: lxcfs-ts \[options\] \[MOUNTPOINT\]/);
  assert.match(help.stdout, /--enable-loadavg/);
  const version = runCli(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^lxcfs-ts \d+\.\d+\.\d+/);
  const bad = runCli(['--no-such-flag']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--no-such-flag'/);
  assert.match(bad.stderr, /Usage:/);
  assert.equal(runCli(['-o', 'bogus_option', '/tmp/x']).status, 2);
  assert.equal(runCli(['/a', '/b']).status, 2);
});

test('SIGTERM unmounts, removes the pidfile and exits 0; the pidfile held the top-level pid', async (t) => {
  if (!needsRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-pid-'));
  const pidfile = join(dir, 'lxcfs-ts.pid');
  const daemon = await startDaemon(['-p', pidfile]);
  try {
    assert.equal(readFileSync(pidfile, 'utf8').trim(), String(daemon.pid));
    assert.equal(await daemon.stop(), 0);
    assert.equal(isMounted(daemon.mountpoint), false);
    assert.equal(existsSync(pidfile), false);
  } finally {
    daemon.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGINT stops it the same way', async (t) => {
  if (!needsRoot(t)) return;
  const daemon = await startDaemon();
  try {
    daemon.child.kill('SIGINT');
    assert.equal(await daemon.stop(), 0);
    assert.equal(isMounted(daemon.mountpoint), false);
  } finally {
    daemon.cleanup();
  }
});

test('a missing mountpoint is created', async (t) => {
  if (!needsRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-missing-'));
  const mountpoint = join(dir, 'a', 'b');
  const daemon = await startDaemon([], { mountpoint });
  try {
    assert.ok(statSync(join(mountpoint, 'proc')).isDirectory());
  } finally {
    daemon.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a non-empty directory is refused unless -o nonempty', async (t) => {
  if (!needsRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-nonempty-'));
  writeFileSync(join(dir, 'precious'), 'data');
  try {
    const refused = runCli([dir]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /is not empty \(precious\).*-o nonempty/);
    const daemon = await startDaemon(['-o', 'nonempty'], { mountpoint: dir });
    try {
      assert.ok(existsSync(join(dir, 'proc/meminfo')));
    } finally {
      daemon.cleanup();
    }
    assert.equal(readFileSync(join(dir, 'precious'), 'utf8'), 'data', 'nothing was lost');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with --no-takeover, a mountpoint served by a live instance is refused', async (t) => {
  if (!needsRoot(t)) return;
  const daemon = await startDaemon();
  try {
    const second = runCli(['--no-takeover', daemon.mountpoint]);
    assert.equal(second.status, 1);
    assert.match(second.stderr, /already served by a running FUSE filesystem \(fuse\.lxcfs/);
    assert.ok(isMounted(daemon.mountpoint), 'the first instance still serves');
  } finally {
    daemon.cleanup();
  }
});

test('a dead mount left by a killed instance is detached and served again', async (t) => {
  if (!needsRoot(t)) return;
  const first = await startDaemon();
  const mountpoint = first.mountpoint;
  try {
    process.kill(-first.pid, 'SIGKILL');
    await waitFor('the connection to die', () => {
      try {
        statSync(join(mountpoint, 'proc'));
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
      }
    });
    const second = await startDaemon([], { mountpoint });
    try {
      assert.match(second.stderr(), /detached a dead FUSE mount/);
      assert.match(readFileSync(join(mountpoint, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
    } finally {
      second.cleanup();
    }
  } finally {
    first.cleanup();
  }
});

test('not being root is explained', (t) => {
  if (!needsRoot(t)) return;
  const result = spawnSync(
    'setpriv',
    ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cliPath, '/tmp/x'],
    {
      encoding: 'utf8',
      timeout: 20_000,
    },
  );
  assert.equal(result.status, 1);
  assert.match(result.stderr, /must run as root/);
});

test('an unmount from outside makes the daemon exit (1) instead of serving a dead connection', async (t) => {
  if (!needsRoot(t)) return;
  const daemon = await startDaemon();
  try {
    assert.equal(spawnSync('umount', [daemon.mountpoint]).status, 0);
    assert.equal(await exitOf(daemon.child, 10_000), 1);
    assert.match(daemon.stderr(), /closed from outside/);
  } finally {
    daemon.cleanup();
  }
});
