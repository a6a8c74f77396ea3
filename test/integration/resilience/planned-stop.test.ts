/**
 * The planned stop for rollouts (--unbind-on-stop): on SIGTERM the daemon first detaches the
 * view's binds inside containers, so they read the host's /proc files instead of failing while no
 * daemon runs, and records them next to the view; the next start binds them again.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { recordPath } from '../../../src/agent/repair/unbind-record.js';
import { needsRoot } from '../../helpers/root.js';
import { hostMemTotalLine, linesOtherThan, recoveredAt, viewBinds, ViewNode, waitFor } from './helpers.js';

test('--unbind-on-stop: sandboxes read the host\'s files while the daemon is away, then their limits again, with no failed read', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('planned');
  try {
    const first = await node.startDaemon(['--unbind-on-stop']);
    const sandboxes = [node.startWatcher('planned-host-160', 160), node.startWatcher('planned-distroless-224', 224, { rootfs: true })];
    await waitFor('every sandbox to read its limit', () =>
      sandboxes.every((s) => s.lines.some((l) => s.limitLine.test(l.text))),
    );
    const startedAt = Math.max(...sandboxes.map((s) => s.lines.find((l) => s.limitLine.test(l.text))!.at));
    const pids = sandboxes.map((s) => s.hostPid()!);
    const bindCount = viewBinds(pids[0]!).length;

    const stopAt = Date.now();
    assert.equal(await first.stop(), 0, 'the planned stop exits 0');
    t.diagnostic(`planned stop took ${Date.now() - stopAt} ms`);
    assert.match(first.stderr(), new RegExp(`"unbound":${bindCount * 2},"failed":0,"containers":2`));
    for (const pid of pids) assert.deepEqual(viewBinds(pid), [], 'no view bind left in the container');
    assert.ok(existsSync(recordPath(node.mountpoint)), 'what was detached is recorded next to the view');
    // The host's own line (no regular expression characters in it: a label, spaces, digits, kB).
    const hostLine = new RegExp(`^${hostMemTotalLine()}$`);
    await waitFor('the sandboxes to read the host\'s meminfo', () =>
      sandboxes.every((s) => recoveredAt(s, stopAt, hostLine) !== undefined),
    );

    const restartAt = Date.now();
    await node.startDaemon();
    const readyAt = Date.now();
    await waitFor('every sandbox to read its limit again', () =>
      sandboxes.every((s) => recoveredAt(s, restartAt, s.limitLine) !== undefined),
    );
    for (const s of sandboxes) {
      t.diagnostic(`${s.label}: its limit again ${recoveredAt(s, restartAt, s.limitLine)! - readyAt} ms after the new daemon was ready`);
      // Through the whole stop and start: its own limit or the host's value, never a failed read.
      assert.deepEqual(linesOtherThan(s, startedAt, s.limitLine, hostLine), []);
    }
    // The files are bound back one by one: meminfo can answer before the last of them is back.
    await waitFor('every bind to be back', () => pids.every((pid) => viewBinds(pid).length === bindCount));
    assert.ok(!existsSync(recordPath(node.mountpoint)), 'the record is used up');
  } finally {
    await node.cleanup();
  }
});
