/**
 * The private view daemon's life cycle (start, wait until it serves, stop by pid, unmount, remove),
 * driven with a real FUSE daemon: Debian's lxcfs stands in for lxcfs-ts here, since both take the
 * same command line. Failures at start must leave nothing behind either.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/common/log.js';
import { parseMountinfo } from '../../../src/sandbox/cgroup-host.js';
import { startPrivateDaemon } from '../../../src/sandbox/private-daemon.js';
import { RunError } from '../../../src/sandbox/run-error.js';
import { mountinfo, requireRoot } from './helpers.js';

const log = createLogger('silent');
const lxcfs = ['/usr/bin/lxcfs', '-f', '--enable-cfs', '-l'];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function mountsUnder(dir: string) {
  return parseMountinfo(mountinfo()).filter(
    (m) => m.mountPoint === dir || m.mountPoint.startsWith(`${dir}/`),
  );
}

/** Starts a daemon expected to fail and returns the error and the temporary directory it used. */
async function failedStart(
  command: string[],
  options: { readyTimeoutMs?: number; signal?: AbortSignal } = {},
) {
  const before = new Set(parseMountinfo(mountinfo()).map((m) => m.mountPoint));
  const runDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('lxcfs-ts-run-'));
  const dirsBefore = new Set(runDirs());
  const error = await startPrivateDaemon({ command, log, ...options }).then(
    () => assert.fail('the start should fail'),
    (err: unknown) => err,
  );
  assert.ok(error instanceof RunError, String(error));
  const added = parseMountinfo(mountinfo()).filter((m) => !before.has(m.mountPoint));
  assert.deepEqual(added, [], 'no mount is left');
  assert.deepEqual(
    runDirs().filter((name) => !dirsBefore.has(name)),
    [],
    'no temporary directory is left',
  );
  return error;
}

describe('the private view daemon', () => {
  it('serves a view under a shared parent mount, and leaves nothing once stopped', async (t) => {
    if (!requireRoot(t)) return;
    const daemon = await startPrivateDaemon({ command: lxcfs, log });
    const parent = dirname(daemon.viewDir);
    try {
      assert.ok(alive(daemon.pid));
      assert.match(readFileSync(join(daemon.viewDir, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
      const mounts = mountsUnder(parent);
      const parentMount = mounts.find((m) => m.mountPoint === parent);
      assert.ok(
        parentMount?.optionalFields.some((f) => f.startsWith('shared:')),
        'the parent is a shared mount',
      );
      assert.ok(mounts.some((m) => m.mountPoint === daemon.viewDir && m.fsType === 'fuse.lxcfs'));
      assert.ok(existsSync(join(parent, 'daemon.pid')), 'its own pidfile');
    } finally {
      await daemon.stop();
    }
    assert.ok(!alive(daemon.pid), 'stopped by its pid');
    assert.deepEqual(mountsUnder(parent), []);
    assert.ok(!existsSync(parent), 'the temporary directory is removed');
  });

  it('reports a daemon that exits at once, with its status', async (t) => {
    if (!requireRoot(t)) return;
    const error = await failedStart(['sh', '-c', 'echo cannot serve >&2; exit 3', 'daemon']);
    assert.match(error.message, /stopped before serving \(exit status 3\)/);
    assert.match(error.message, /cannot serve/);
  });

  it('gives up on a daemon that never serves, and kills it', async (t) => {
    if (!requireRoot(t)) return;
    const error = await failedStart(['sh', '-c', 'echo $$ >&2; exec sleep 60', 'daemon'], {
      readyTimeoutMs: 1000,
    });
    assert.match(error.message, /did not serve .*proc\/meminfo within 1 s/);
    const pid = Number(/(\d+)\s*$/.exec(error.message)?.[1]);
    assert.ok(pid > 0, error.message);
    assert.ok(!alive(pid), 'the daemon is stopped');
  });

  it('kills a daemon that ignores SIGTERM', async (t) => {
    if (!requireRoot(t)) return;
    const error = await failedStart(
      ['sh', '-c', `trap '' TERM; echo $$ >&2; while :; do sleep 0.1; done`, 'd'],
      {
        readyTimeoutMs: 500,
      },
    );
    const pid = Number(/(\d+)\s*$/.exec(error.message)?.[1]);
    assert.ok(pid > 0 && !alive(pid), error.message);
  });

  it('stops waiting when interrupted', async (t) => {
    if (!requireRoot(t)) return;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const error = await failedStart(['sh', '-c', 'exec sleep 60', 'daemon'], { signal: controller.signal });
    assert.match(error.message, /interrupted/);
  });
});
