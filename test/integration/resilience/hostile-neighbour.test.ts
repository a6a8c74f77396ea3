/**
 * A hostile neighbour: five processes in one sandbox hold 19,000 handles of view files each (the
 * machine's per-process limit is 20,000), every handle with a snapshot taken. The serving
 * process's memory stays within its snapshot pool's bound, which runs full; a second sandbox
 * reading its /proc/meminfo 7 bytes at a time still gets whole, consistent files with its own
 * limit, and so does a third one whose memory use moves all the time, reading slowly (values
 * change between its reads): its handles get snapshots, the hoarders' oldest being evicted.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { serverPidOf } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { summaries, ViewNode, waitFor } from './helpers.js';

const hoarder = fileURLToPath(new URL('./handle-hoarder.js', import.meta.url));
const chunkedReader = fileURLToPath(new URL('./chunked-reader.js', import.meta.url));
const HOARDERS = 5;
const HANDLES = 19_000;
/** The snapshot pool: 16,384 pages of 4 KiB (src/fs/snapshot-store.ts); the slack is everything else a burst of opens costs. */
const POOL_MIB = 64;
const SLACK_MIB = 32;

function rssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

test('five processes holding 19,000 handles each: the agent stays within its pool, a neighbour\'s chunked reads stay whole', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('hostile');
  try {
    const daemon = await node.startDaemon(['-l']);
    const server = serverPidOf(daemon.pid)!;
    const before = rssKb(server);
    const files = ['/proc/meminfo', '/proc/stat', '/proc/cpuinfo', '/proc/uptime'].join(',');
    const loop = `for i in $(seq ${HOARDERS}); do ${process.execPath} ${hoarder} ${files} ${HANDLES} 120000 & done; wait`;
    const hostile = node.startSandbox('hoarders', 2048, ['sh', '-c', loop]);
    await waitFor('every hoarder holding its handles', () => hostile.lines.filter((l) => l.text.startsWith('holding')).length === HOARDERS, 120_000);
    const held = hostile.lines.map((l) => /^holding (\d+)/.exec(l.text)?.[1]).filter((n) => n !== undefined).map(Number);
    const during = rssKb(server);
    t.diagnostic(`handles held: ${held.join(', ')}; serving process RSS ${(before / 1024).toFixed(1)} MiB before, ${(during / 1024).toFixed(1)} MiB while held`);
    assert.ok(held.every((n) => n >= HANDLES - 100), `every hoarder got its handles (${held.join(', ')})`);

    const line = '^[A-Za-z0-9_()]+: +\\d+( kB)?$';
    const neighbour = node.startSandbox('neighbour', 256, [process.execPath, chunkedReader, '/proc/meminfo', '7', '300', line, '^MemTotal: +262144 kB$']);
    // Memory use that moves all the time (a 16 MiB buffer taken and given back), read 7 bytes
    // every 4 ms: a file takes about a second, over which the values change.
    const churn = 'while :; do dd if=/dev/zero of=/dev/null bs=16M count=1 2>/dev/null; done';
    const moving = node.startSandbox('moving', 256, ['sh', '-c',
      `(${churn}) & ${process.execPath} ${chunkedReader} /proc/meminfo 7 15 '${line}' '^MemTotal: +262144 kB$' 4; kill $!`]);
    type Summary = { rounds: number; wrong: number; failures: number; firstWrong?: string };
    const [result, movingResult] = await summaries<Summary>([neighbour, moving]);
    const stderr = daemon.stderr();
    t.diagnostic(`neighbour: ${result!.rounds} files read 7 bytes at a time, ${result!.wrong} wrong, ${result!.failures} failed; ` +
      `moving neighbour: ${movingResult!.rounds} files read slowly, ${movingResult!.wrong} wrong, ${movingResult!.failures} failed`);
    for (const r of [result!, movingResult!]) {
      assert.equal(r.failures, 0, r.firstWrong);
      assert.equal(r.wrong, 0, `a file made of pieces of different renderings:\n${r.firstWrong}`);
    }
    assert.ok(!/without (per-handle )?snapshots?/.test(stderr), `some handle was served without a snapshot:\n${stderr}`);
    assert.ok(during - before < (POOL_MIB + SLACK_MIB) * 1024, `serving process grew ${((during - before) / 1024).toFixed(1)} MiB`);
    assert.equal(serverPidOf(daemon.pid), server, 'the serving process was never replaced');
  } finally {
    await node.cleanup();
  }
});
