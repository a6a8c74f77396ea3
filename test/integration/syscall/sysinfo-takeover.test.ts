/**
 * The syscall view across takeovers: three sandboxes call sysinfo(2) in tight loops while a new
 * daemon takes over from the running one, three times. The seccomp listeners and the in-flight
 * record go to the newcomer with the FUSE connection, so no call fails and none shows another
 * total; a sandbox started afterwards registers with the newcomer's socket and is served too.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { exitOf, type RunningDaemon } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { type Sandbox, summaries, ViewNode, waitFor, waitForAll } from '../resilience/helpers.js';
import { checkCallers, type LoopResult, sysinfoProbe } from './helpers.js';

test('three sandboxes calling sysinfo through three takeovers: 0 failed calls, 0 wrong values, new sandboxes served', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('sysinfo-takeover');
  try {
    const probe = sysinfoProbe();
    const socket = join(node.work, 'sysinfo.sock');
    const args = ['--repair-interval', '0', '--sysinfo-socket', socket];
    let current: RunningDaemon = await node.startDaemon(args);
    await waitFor('the sysinfo socket', () => current.stderr().includes('serving seccomp listeners'));
    const sandboxes: Sandbox[] = [128, 192, 256].map((mib) =>
      node.startSandbox(`caller-${mib}`, mib, [probe, 'loop', '25', String(mib * 1024 * 1024)], ['--sysinfo-socket', socket]),
    );
    await waitForAll(sandboxes, 'calling');
    for (let round = 1; round <= 3; round++) {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const next = await node.startDaemon(args);
      await waitFor(`takeover ${round}`, () => /serving alone/.test(next.stderr()), 60_000);
      assert.equal(await exitOf(current.child, 30_000), 0);
      // The callers loop for 25 s, longer than the three takeovers take even on a loaded machine.
      assert.match(next.stderr(), /"listeners":3,"msg":"seccomp listeners taken over"/);
      current = next;
    }
    const results = await summaries<LoopResult>(sandboxes);
    const recovered = node.daemonLogs().match(/answering the sysinfo call the previous serving process left open/g)?.length ?? 0;
    t.diagnostic(`calls the old agent's serving process left open, answered by the newcomer's: ${recovered}`);
    checkCallers(t, sandboxes.map((s) => s.label), results);
    // The last newcomer took the socket over too: a new sandbox registers there and is answered.
    await waitFor('the newcomer\'s sysinfo socket', () => current.stderr().includes('serving seccomp listeners'));
    const late = node.startSandbox('late-96', 96, [probe, 'loop', '1', String(96 * 1024 * 1024)], ['--sysinfo-socket', socket]);
    const [lateResult] = await summaries<LoopResult>([late]);
    assert.ok(lateResult!.calls > 0 && lateResult!.failures === 0 && lateResult!.wrong === 0, JSON.stringify(lateResult));
  } finally {
    await node.cleanup();
  }
});
