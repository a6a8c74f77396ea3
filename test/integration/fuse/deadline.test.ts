/**
 * The request deadline, through a real mount: a read whose handler hangs is answered with the
 * fallback within about the deadline, the stuck thread is replaced, other reads keep flowing,
 * and the number of threads stays bounded when every handler hangs.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../../src/common/log.js';
import { RequestDispatcher } from '../../../src/fuse/dispatch.js';
import { negotiateInit } from '../../../src/fuse/init.js';
import { mountFuse, openFuseDevice } from '../../../src/fuse/mount.js';
import { RequestWorkerPool } from '../../../src/fuse/worker-pool.js';
import { waitFor } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { createFilesystem, type SlowFilesystemConfig } from '../../helpers/slow-filesystem.js';

/**
 * Reads a file from another process, as real callers do (this process's own libuv threads must
 * not be the callers: they would also be the threads that load replacement workers).
 */
function catFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('cat', [path], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

test('a hung handler is answered with the fallback at the deadline and its thread replaced', async (t) => {
  if (!needsRoot(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-deadline-'));
  const fd = openFuseDevice();
  let pool: RequestWorkerPool | null = null;
  try {
    mountFuse({ fd, mountpoint: dir, source: 'deadline-test', subtype: 'lxcfs', options: ['ro'] });
    const session = negotiateInit(fd, { requestTimeoutSec: 0 });
    const fallback = new RequestDispatcher(
      createFilesystem({ delayMs: 0, content: 'fallback' }, silentLogger),
      silentLogger,
    );
    const out = Buffer.alloc(128 * 1024 + 16);
    const config: SlowFilesystemConfig = { delayMs: 4000, content: 'view' };
    pool = new RequestWorkerPool(
      {
        fd,
        count: 2,
        sizes: { readBufferSize: session.readBufferSize, maxRead: session.maxRead },
        filesystemModule: new URL('../../helpers/slow-filesystem.js', import.meta.url).href,
        filesystemConfig: config,
        labels: ['file'],
        logLevel: 'silent',
        deadlineMs: 300,
        maxStuckWorkers: 2,
        rescue: (request) => {
          const n = fallback.handle(request, request.length, out);
          return n > 0 ? Buffer.from(out.subarray(0, n)) : null;
        },
      },
      silentLogger,
    );
    const readyPool = pool;
    await new Promise<void>((resolve) => {
      readyPool.once('ready', resolve);
      readyPool.start();
    });

    assert.equal(await catFile(join(dir, 'fast')), 'view\n');
    const started = Date.now();
    const slow = await catFile(join(dir, 'slow'));
    const tookMs = Date.now() - started;
    assert.equal(slow, 'fallback\n', 'the late read got the fallback answer');
    assert.ok(tookMs < 1500, `answered in ${tookMs} ms, not after the 4 s hang`);
    assert.equal(await catFile(join(dir, 'fast')), 'view\n', 'other reads are served by the workers');
    // cat reads twice (the data, then end of file): both reads hang, both are rescued.
    assert.ok(pool.status().rescues >= 1);

    // Every handler hangs now: callers still get answers, threads stay bounded (2 + 2 stuck).
    const many = await Promise.all(Array.from({ length: 6 }, () => catFile(join(dir, 'slow'))));
    assert.ok(many.every((c) => c === 'fallback\n' || c === 'view\n'));
    assert.ok(pool.status().rescues >= 3);
    assert.ok(
      pool.status().threads <= 2 + 2,
      `at most 2 serving and 2 stuck: ${pool.status().threads}`,
    );
    // the stuck workers finish their 4 s sleep, leave, and serving recovers
    await waitFor(
      'serving workers to come back',
      () => pool!.status().serving >= 2 && pool!.status().stuck === 0,
      15_000,
    );
    assert.equal(await catFile(join(dir, 'fast')), 'view\n');
  } finally {
    pool?.stop();
    spawnSync('umount', ['-l', dir]);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
