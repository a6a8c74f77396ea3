/**
 * The serving process dies (SIGKILL) three times while three sandboxes read /proc/meminfo in
 * tight loops: no read fails, none takes a second, and every one shows the sandbox's own limit.
 * The supervisor keeps the FUSE connection; a new serving process attaches to it and has the
 * kernel resend what was in flight.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needsRoot } from '../../helpers/root.js';
import { killServingProcesses, type Sandbox, summaries, viewReader, ViewNode, waitForAll } from './helpers.js';

interface ReaderResult {
  reads: number;
  failures: number;
  wrong: number;
  maxMs: number;
  errors: Record<string, number>;
  firstWrong?: string;
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
    await waitForAll(sandboxes, 'reading');
    const killed = await killServingProcesses(daemon.pid, 3, 1500);
    const results = await summaries<ReaderResult>(sandboxes);
    t.diagnostic(`serving processes killed: ${killed.join(', ')}`);
    for (const [i, r] of results.entries()) {
      t.diagnostic(`${sandboxes[i]!.label}: ${r.reads} reads, ${r.failures} failed, ${r.wrong} wrong, slowest ${r.maxMs.toFixed(1)} ms`);
    }
    for (const r of results) {
      assert.ok(r.reads > 1000, `the reader made progress (${r.reads} reads)`);
      assert.equal(r.failures, 0, `no failed reads (${JSON.stringify(r.errors)})`);
      assert.equal(r.wrong, 0, `every read showed the sandbox's own limit (first other read: ${r.firstWrong})`);
      assert.ok(r.maxMs < 1000, `slowest read ${r.maxMs.toFixed(1)} ms`);
    }
    assert.equal(daemon.stderr().match(/serving process died; starting a new one/g)?.length, 3);
  } finally {
    await node.cleanup();
  }
});
