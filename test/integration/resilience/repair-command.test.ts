/**
 * `lxcfs-ts repair`, the one-shot form: what a daemon started with --no-repair leaves broken, it
 * repairs and reports, one line per container mount; a container that cannot see the view (its
 * copy of the view's parent directory does not receive mounts) is reported, with exit status 1.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { needsRoot } from '../../helpers/root.js';
import { runLxcfsTs } from '../sandbox/helpers.js';
import { recoveredAt, ViewNode, waitFor } from './helpers.js';

/** Lines of `repair` output about the process `pid` (the machine may run other containers). */
const linesAbout = (stdout: string, pid: number) => stdout.split('\n').filter((l) => l.includes(` pid ${pid} `));
/** The status `repair` must exit with, given everything it printed. */
const expectedStatus = (stdout: string) => (/^(FAILED|UNREPAIRABLE) /m.test(stdout) ? 1 : 0);

describe('lxcfs-ts repair', () => {
  it('explains itself, and rejects a bad command line with status 2', async () => {
    const help = await runLxcfsTs(['repair', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: lxcfs-ts repair \[options\] \[MOUNTPOINT\]/);
    assert.match(help.stdout, /HostToContainer/);
    for (const bad of [['--bogus'], ['/a', '/b'], ['--log-level', 'loud']]) {
      const result = await runLxcfsTs(['repair', ...bad]);
      assert.equal(result.code, 2, bad.join(' '));
      assert.match(result.stderr, /Usage: lxcfs-ts repair/);
    }
  });

  it('says when there is no view to repair from', async (t) => {
    if (!needsRoot(t)) return;
    const result = await runLxcfsTs(['repair', '/nonexistent/lxcfs-ts-view']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no view is mounted at \/nonexistent\/lxcfs-ts-view: start the daemon first/);
  });

  it('repairs a container a --no-repair daemon left with dead binds, and reports one it cannot reach', async (t) => {
    if (!needsRoot(t)) return;
    const node = new ViewNode('cli');
    try {
      const first = await node.startDaemon(['--no-repair']);
      const healthy = node.startWatcher('cli-reachable-144', 144);
      const isolated = node.startWatcher('cli-isolated-176', 176);
      await waitFor('both sandboxes to read their limits', () =>
        [healthy, isolated].every((s) => s.lines.some((l) => s.limitLine.test(l.text))),
      );
      const healthyPid = healthy.hostPid()!;
      const isolatedPid = isolated.hostPid()!;
      // As a container given the parent directory without HostToContainer propagation: its copy
      // is private and will never show a restarted view.
      const detach = spawnSync('nsenter', ['-t', String(isolatedPid), '-m', '--', 'mount', '--make-rprivate', node.parent], {
        encoding: 'utf8',
      });
      assert.equal(detach.status, 0, detach.stderr);

      const killedAt = Date.now();
      process.kill(-first.pid, 'SIGKILL');
      await waitFor('the binds to die', () =>
        [healthy, isolated].every((s) => s.lines.some((l) => l.at > killedAt && l.text === 'missing')),
      );
      const dead = await runLxcfsTs(['repair', node.mountpoint]);
      assert.equal(dead.code, 1);
      assert.match(dead.stderr, /is a dead mount \(its daemon is gone\): start the daemon/);

      await node.startDaemon(['--no-repair']);
      await sleep(1000);
      assert.equal(healthy.lines.at(-1)?.text, 'missing', 'a --no-repair daemon leaves containers alone');

      const repair = await runLxcfsTs(['repair', node.mountpoint]);
      t.diagnostic(`lxcfs-ts repair printed:\n${repair.stdout}`);
      assert.equal(repair.code, expectedStatus(repair.stdout));
      assert.equal(repair.code, 1, 'a container could not be repaired');
      const repaired = linesAbout(repair.stdout, healthyPid);
      assert.ok(repaired.length > 1, 'one line per mount');
      for (const line of repaired) assert.match(line, /^repaired +pid \d+ \(probe\) mnt:\[\d+\] \/\S+ <- \S+$/);
      assert.ok(repaired.some((l) => l.endsWith(` /proc/meminfo <- ${node.mountpoint}/proc/meminfo`)));
      assert.ok(repaired.some((l) => l.endsWith(` /sys/devices/system/cpu <- ${node.mountpoint}/sys/devices/system/cpu`)));
      const unreachable = linesAbout(repair.stdout, isolatedPid);
      assert.equal(unreachable.length, repaired.length);
      for (const line of unreachable) {
        assert.match(line, /^UNREPAIRABLE +pid \d+ \(probe\) mnt:\[\d+\] \/\S+: /);
        assert.match(line, /: the live view \(.*\) is not visible in this container: .*HostToContainer/);
      }
      assert.match(repair.stdout, /^\d+ repaired, 0 restored, 0 failed, \d+ unrepairable$/m);
      await waitFor('the repaired sandbox to read its limit', () => recoveredAt(healthy, killedAt, healthy.limitLine) !== undefined);
      assert.equal(isolated.lines.at(-1)?.text, 'missing');

      // Once the unreachable container is gone, nothing of ours is left to repair.
      await isolated.stop();
      const again = await runLxcfsTs(['repair', node.mountpoint]);
      assert.equal(again.code, expectedStatus(again.stdout));
      assert.deepEqual(linesAbout(again.stdout, healthyPid), []);
      if (again.code === 0) assert.match(again.stdout, /^nothing to repair: /m);
    } finally {
      await node.cleanup();
    }
  });
});
