/**
 * The serving process is killed (SIGKILL) three times while three sandboxes call sysinfo(2) in
 * tight loops: no call fails, none shows a wrong total. The supervisor holds the seccomp
 * listeners, so none is lost; calls that arrive meanwhile wait in the kernel, and one the killed
 * process had taken but not answered is answered by its successor (the in-flight record).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { needsRoot } from '../../helpers/root.js';
import { killServingProcesses, type Sandbox, summaries, ViewNode, waitFor, waitForAll } from '../resilience/helpers.js';
import { sysinfoProbe } from './helpers.js';

interface LoopResult {
  calls: number;
  failures: number;
  lastErrno: number;
  wrong: number;
  maxMs: number;
}

test('three sandboxes calling sysinfo, SIGKILL of the serving process three times: 0 failed calls, 0 wrong values', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('sysinfo-kill');
  try {
    const probe = sysinfoProbe();
    const socket = join(node.work, 'sysinfo.sock');
    const daemon = await node.startDaemon(['-l', '--sysinfo-socket', socket]);
    await waitFor('the sysinfo socket', () => daemon.stderr().includes('serving seccomp listeners'));
    const sandboxes: Sandbox[] = [128, 192, 256].map((mib) =>
      node.startSandbox(`caller-${mib}`, mib, [probe, 'loop', '9', String(mib * 1024 * 1024)], ['--sysinfo-socket', socket]),
    );
    await waitForAll(sandboxes, 'calling');
    const killed = await killServingProcesses(daemon.pid, 3, 1500);
    const results = await summaries<LoopResult>(sandboxes);
    const recovered = daemon.stderr().match(/answering the sysinfo call the previous serving process left open/g)?.length ?? 0;
    t.diagnostic(`serving processes killed: ${killed.join(', ')}; calls answered by a successor: ${recovered}`);
    for (const [i, r] of results.entries()) {
      t.diagnostic(`${sandboxes[i]!.label}: ${r.calls} calls, ${r.failures} failed, ${r.wrong} wrong, slowest ${r.maxMs.toFixed(1)} ms`);
    }
    for (const r of results) {
      assert.ok(r.calls > 1000, `the caller made progress (${r.calls} calls)`);
      assert.equal(r.failures, 0, `no failed call (last errno ${r.lastErrno})`);
      assert.equal(r.wrong, 0, 'every call showed the sandbox\'s own total');
      assert.ok(r.maxMs < 2000, `slowest call ${r.maxMs.toFixed(1)} ms`);
    }
    assert.equal(daemon.stderr().match(/serving process died; starting a new one/g)?.length, 3);
  } finally {
    await node.cleanup();
  }
});
