/**
 * `lxcfs-ts run --view DIR` with a view served by Debian's lxcfs: the same limits show through
 * another implementation of the view, and `run` leaves a daemon it did not start alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertNothingLeft,
  keyValues,
  type LxcfsView,
  requireRoot,
  runLxcfsTs,
  startLxcfsTs,
  startLxcfsView,
  uniqueToken,
} from './helpers.js';

const script = [
  `echo free_total_mib=$(free -m | awk '/^Mem:/ {print $2}')`,
  'echo cpuinfo_processors=$(grep -c ^processor /proc/cpuinfo)',
  'echo online=$(cat /sys/devices/system/cpu/online)',
  'echo getconf_onln=$(getconf _NPROCESSORS_ONLN)',
  `echo python_cpu_count=$(python3 -c 'import os; print(os.cpu_count())')`,
  `echo node_totalmem=$(${JSON.stringify(process.execPath)} -e 'console.log(require("os").totalmem())')`,
].join('\n');

describe('lxcfs-ts run --view with Debian lxcfs', () => {
  let view: LxcfsView | undefined;
  before(async () => {
    if (process.getuid?.() === 0) view = await startLxcfsView('view-lxcfs');
  });
  after(async () => view?.stop());

  it('shows the limits through lxcfs, and leaves the lxcfs daemon serving', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('view-lxcfs');
    const run = startLxcfsTs([
      'run',
      '--view',
      view!.viewDir,
      '--memory',
      '256M',
      '--cpuset',
      '0',
      '--',
      'sh',
      '-c',
      `${script}\n: ${token}`,
    ]);
    const result = await run.result;
    assert.equal(result.code, 0, result.stderr);
    const seen = keyValues(result.stdout);
    assert.equal(seen.get('free_total_mib'), '256');
    assert.equal(seen.get('cpuinfo_processors'), '1');
    assert.equal(seen.get('online'), '0');
    assert.equal(seen.get('getconf_onln'), '1');
    assert.equal(seen.get('python_cpu_count'), '1');
    assert.equal(seen.get('node_totalmem'), '268435456');
    await assertNothingLeft(run.child.pid!, token);
    process.kill(view!.pid, 0);
    assert.match(readFileSync(join(view!.viewDir, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
  });

  it('refuses a --view directory where no view is mounted', async (t) => {
    if (!requireRoot(t)) return;
    const empty = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-noview-'));
    try {
      const result = await runLxcfsTs(['run', '--view', empty, '--', 'true']);
      assert.equal(result.code, 125);
      assert.match(result.stderr, /cannot read .*proc\/meminfo .*is a view mounted there\?/);
    } finally {
      rmdirSync(empty);
    }
  });
});
