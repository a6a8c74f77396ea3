/**
 * The connection outlives the serving process: readers hammering the view see no failed read
 * while the serving process is killed with SIGKILL, again and again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitOf, serverPidOf, startDaemon, waitFor } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';

const readerPath = new URL('../../helpers/reader-loop.js', import.meta.url).pathname;

interface ReaderResult {
  reads: number;
  failures: number;
  maxMs: number;
  errors: Record<string, number>;
}

test('SIGKILL of the serving process three times: zero failed reads, none slower than 1 s', async (t) => {
  if (!needsRoot(t)) return;
  const daemon = await startDaemon();
  try {
    const readers = Array.from({ length: 3 }, () => {
      const child = spawn(process.execPath, [readerPath, join(daemon.mountpoint, 'proc/meminfo'), '6000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      return { child, output: () => out };
    });
    const killed: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(1200);
      const server = serverPidOf(daemon.pid);
      assert.ok(server, 'a serving process is running');
      process.kill(server, 'SIGKILL');
      killed.push(server);
      await waitFor('a new serving process', () => {
        const next = serverPidOf(daemon.pid);
        return next !== null && !killed.includes(next);
      });
    }
    const results: ReaderResult[] = [];
    for (const reader of readers) {
      assert.equal(await exitOf(reader.child, 20_000), 0);
      results.push(JSON.parse(reader.output()) as ReaderResult);
    }
    t.diagnostic(`readers: ${JSON.stringify(results)}`);
    for (const r of results) {
      assert.ok(r.reads > 100, `reader made progress (${r.reads} reads)`);
      assert.equal(r.failures, 0, `no failed reads (${JSON.stringify(r.errors)})`);
      assert.ok(r.maxMs < 1000, `slowest read ${r.maxMs.toFixed(1)} ms`);
    }
    assert.match(daemon.stderr(), /serving process died; starting a new one/);
  } finally {
    daemon.cleanup();
  }
});
