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
import { checkCallers, type LoopResult, sysinfoProbe } from './helpers.js';

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
    checkCallers(t, sandboxes.map((s) => s.label), results);
    for (const r of results) assert.ok(r.maxMs < 2000, `slowest call ${r.maxMs.toFixed(1)} ms`);
    assert.equal(daemon.stderr().match(/serving process died; starting a new one/g)?.length, 3);
  } finally {
    await node.cleanup();
  }
});
