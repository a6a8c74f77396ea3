/**
 * The whole daemon is killed (SIGKILL to its process group: supervisor and serving process, as
 * when a node agent's pod is deleted or OOM-killed) and a fresh one started on the same
 * mountpoint. Every sandbox's binds now point at a dead connection; the new daemon finds them
 * from /proc/*\/mountinfo and re-binds its live files into each one from the host, including a
 * sandbox whose rootfs holds nothing but a static binary (no shell, no mount).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { needsRoot } from '../../helpers/root.js';
import {
  freePort,
  linesFromIndex,
  recoveredAt,
  recoveryIndex,
  regularFiles,
  type Sandbox,
  viewBinds,
  ViewNode,
  waitFor,
} from './helpers.js';

/** The metrics text; the endpoint comes up shortly after the serving process serves. */
async function scrape(url: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await fetch(url)).text();
    } catch (err) {
      if (attempt >= 40) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

test('SIGKILL of the whole daemon, then a fresh start: every sandbox reads its limit again within 2 s of the new daemon being ready', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('restart');
  try {
    const first = await node.startDaemon();
    const sandboxes: Sandbox[] = [
      node.startWatcher('watch-host-128', 128),
      node.startWatcher('watch-host-192', 192),
      node.startWatcher('watch-distroless-256', 256, { rootfs: true }),
    ];
    await waitFor('every sandbox to read its limit', () =>
      sandboxes.every((s) => s.lines.some((l) => s.limitLine.test(l.text))),
    );
    assert.deepEqual(regularFiles(node.buildProbe().rootfs), ['probe'], 'the rootfs holds one static binary, nothing else');
    const binds = sandboxes.map((s) => {
      const pid = s.hostPid();
      assert.ok(pid, `${s.label} runs`);
      return viewBinds(pid);
    });
    const bindCount = binds.reduce((n, b) => n + b.length, 0);
    assert.ok(binds.every((b) => b.some((m) => m.mountpoint === '/proc/meminfo')));

    const killedAt = Date.now();
    process.kill(-first.pid, 'SIGKILL');
    await waitFor('every sandbox to see the dead connection', () =>
      sandboxes.every((s) => s.lines.some((l) => l.at > killedAt && l.text === 'missing')),
    );

    const port = await freePort();
    const startedAt = Date.now();
    const second = await node.startDaemon(['--health-address', `127.0.0.1:${port}`]);
    const readyAt = Date.now();
    const recovered = new Map<Sandbox, number>();
    await waitFor(
      'every sandbox to read its limit again',
      () => {
        for (const s of sandboxes) {
          const index = recoveryIndex(s, killedAt, s.limitLine);
          if (index !== undefined) recovered.set(s, index);
        }
        return recovered.size === sandboxes.length;
      },
      10_000,
    ).catch((err: unknown) => {
      // What each sandbox read since the kill, collapsed into runs, says which step did not happen.
      for (const s of sandboxes) {
        const runs: string[] = [];
        for (const l of s.lines.filter((x) => x.at > killedAt)) {
          const last = runs.at(-1);
          if (last?.startsWith(`${l.text} x`)) runs[runs.length - 1] = `${l.text} x${Number(last.split(' x').pop()) + 1}`;
          else runs.push(`${l.text} x1`);
        }
        t.diagnostic(`${s.label} since the kill: ${runs.join(' | ')}; binds now ${viewBinds(s.hostPid()!).length}`);
      }
      t.diagnostic(`second daemon's log:\n${second.stderr()}`);
      throw err;
    });
    t.diagnostic(`new daemon ready ${readyAt - startedAt} ms after it was started`);
    for (const s of sandboxes) {
      const at = s.lines[recovered.get(s)!]!.at;
      const ms = at - readyAt;
      t.diagnostic(`${s.label}: reads its limit again ${ms} ms after the new daemon was ready (${at - startedAt} ms after start)`);
      assert.ok(ms < 2000, `${s.label} recovered in ${ms} ms`);
      // From the recovery on (by line, not by arrival time: a chunk's lines share one), nothing but its own limit.
      assert.deepEqual(linesFromIndex(s, recovered.get(s)!, s.limitLine), []);
    }

    // The pass logs (and counts) when it is through with every namespace on the host.
    await waitFor('the repair pass to finish', () => second.stderr().includes('"msg":"repair pass done"'));
    const pass = /"ms":(\d+),"outcomes":(\d+),"msg":"repair pass done"/.exec(second.stderr());
    t.diagnostic(`first repair pass: ${pass?.[2]} mounts in ${pass?.[1]} ms (from the mount, binds wait for the serving process)`);
    const repairLog = second.stderr().split('\n').filter((l) => l.includes('repaired a container\'s stale view mounts'));
    assert.equal(repairLog.length, sandboxes.length, `one log line per container: ${repairLog.join('\n')}`);
    const text = await scrape(`http://127.0.0.1:${port}/metrics`);
    assert.match(text, new RegExp(`^lxcfs_ts_repairs_total\\{result="repaired"\\} ${bindCount}$`, 'm'));
    assert.match(text, /^lxcfs_ts_repairs_total\{result="failed"\} 0$/m);
    // Each sandbox's binds now come from the new connection, one per mount point (nothing stacked).
    for (const s of sandboxes) {
      const now = viewBinds(s.hostPid()!);
      assert.equal(new Set(now.map((m) => m.device)).size, 1);
      assert.notEqual(now[0]!.device, binds[0]![0]!.device);
      assert.equal(new Set(now.map((m) => m.mountpoint)).size, now.length);
    }
  } finally {
    await node.cleanup();
  }
});

test('a fresh start whose serving process takes 12 s to come up repairs every sandbox in its first pass', async (t) => {
  if (!needsRoot(t)) return;
  // Under emulation (the v2 tier's guests) a serving process takes 10-15 s to load. The first
  // repair pass runs meanwhile; it must tell the live view from a stale one without waiting for
  // the serving process, or it would give up on the containers until its next recheck, a minute on.
  const node = new ViewNode('slow-start');
  try {
    const first = await node.startDaemon();
    const sandboxes = [node.startWatcher('slow-128', 128), node.startWatcher('slow-distroless-192', 192, { rootfs: true })];
    await waitFor('every sandbox to read its limit', () =>
      sandboxes.every((s) => s.lines.some((l) => s.limitLine.test(l.text))),
    );
    const killedAt = Date.now();
    process.kill(-first.pid, 'SIGKILL');
    await waitFor('every sandbox to see the dead connection', () =>
      sandboxes.every((s) => s.lines.some((l) => l.at > killedAt && l.text === 'missing')),
    );

    const delayMs = 12_000;
    const preload = new URL('./slow-serving-start.js', import.meta.url).href;
    const startedAt = Date.now();
    // (startDaemon's first read of the view waits for the serving process: about delayMs)
    const second = await node.startDaemon([], {
      NODE_OPTIONS: `--import=${preload}`,
      LXCFS_TS_TEST_SERVING_DELAY_MS: String(delayMs),
    });
    const readyAt = Date.now();
    t.diagnostic(`new daemon served ${readyAt - startedAt} ms after it was started`);
    assert.ok(readyAt - startedAt >= delayMs - 500, 'the serving process was held back');
    await waitFor(
      'every sandbox to read its limit again',
      () => sandboxes.every((s) => recoveredAt(s, killedAt, s.limitLine) !== undefined),
      10_000,
    ).catch((err: unknown) => {
      t.diagnostic(`second daemon's log:\n${second.stderr()}`);
      throw err;
    });
    for (const s of sandboxes) {
      const at = recoveredAt(s, killedAt, s.limitLine)!;
      t.diagnostic(`${s.label}: reads its limit again ${at - readyAt} ms after the new daemon served`);
      assert.ok(at - readyAt < 5000, `${s.label} recovered ${at - readyAt} ms after the serving process came up`);
    }
    const log = second.stderr();
    assert.doesNotMatch(log, /cannot be repaired from the host/, 'no container was given up on');
    assert.equal(log.split('\n').filter((l) => l.includes('repaired a container\'s stale view mounts')).length, sandboxes.length);
  } finally {
    await node.cleanup();
  }
});
