/**
 * The serving process dies (SIGKILL) three times while three sandboxes read /proc/meminfo in
 * tight loops: no read fails, none takes a second, and every one shows the sandbox's own limit.
 * The supervisor keeps the FUSE connection; a new serving process attaches to it and has the
 * kernel resend what was in flight.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverPidOf } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { type Sandbox, viewReader, ViewNode, waitFor } from './helpers.js';

interface ReaderResult {
  reads: number;
  failures: number;
  wrong: number;
  maxMs: number;
  errors: Record<string, number>;
}

test('three sandboxes, SIGKILL of the serving process three times: zero failed reads, none slower than 1 s', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('kill');
  try {
    const daemon = await node.startDaemon();
    const sandboxes: Sandbox[] = [128, 192, 256].map((mib) =>
      node.startSandbox(`reader-${mib}`, mib, [
        process.execPath,
        viewReader,
        '/proc/meminfo',
        '9000',
        '0',
        `^MemTotal: +${mib * 1024} kB$`,
      ]),
    );
    await waitFor('every reader to be reading', () =>
      sandboxes.every((s) => {
        if (s.run.child.exitCode !== null) throw new Error(`${s.label} ended early: ${s.lines.map((l) => l.text).join('\n')}`);
        return s.lines.some((l) => l.text === 'reading');
      }),
    );
    const killed: number[] = [];
    for (let round = 0; round < 3; round++) {
      await sleep(1500);
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
    for (const sandbox of sandboxes) {
      const exit = await sandbox.run.result;
      assert.equal(exit.code, 0, exit.stderr);
      results.push(JSON.parse(sandbox.lines.at(-1)!.text) as ReaderResult);
    }
    t.diagnostic(`serving processes killed: ${killed.join(', ')}`);
    for (const [i, r] of results.entries()) {
      t.diagnostic(`${sandboxes[i]!.label}: ${r.reads} reads, ${r.failures} failed, ${r.wrong} wrong, slowest ${r.maxMs.toFixed(1)} ms`);
    }
    for (const r of results) {
      assert.ok(r.reads > 1000, `the reader made progress (${r.reads} reads)`);
      assert.equal(r.failures, 0, `no failed reads (${JSON.stringify(r.errors)})`);
      assert.equal(r.wrong, 0, 'every read showed the sandbox\'s own limit');
      assert.ok(r.maxMs < 1000, `slowest read ${r.maxMs.toFixed(1)} ms`);
    }
    assert.equal(daemon.stderr().match(/serving process died; starting a new one/g)?.length, 3);
  } finally {
    await node.cleanup();
  }
});
