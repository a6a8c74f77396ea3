/**
 * What programs inside `lxcfs-ts run` see: memory and CPU limits through free, /proc/cpuinfo,
 * the cpu directory, getconf, Python and Node; the host unchanged meanwhile; two sandboxes side by
 * side; exit statuses; CMD as PID 1 in its own time namespace.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertNothingLeft,
  keyValues,
  lxcfsTs,
  requireRoot,
  runLxcfsTs,
  startLxcfsTs,
  uniqueToken,
  type ViewBackend,
  viewBackend,
  waitFor,
} from './helpers.js';

/** Prints what the usual tools say about the machine, one `key=value` per line. */
const probeScript = [
  'echo pid=$$',
  `echo free_total_mib=$(free -m | awk '/^Mem:/ {print $2}')`,
  'echo cpuinfo_processors=$(grep -c ^processor /proc/cpuinfo)',
  'echo online=$(cat /sys/devices/system/cpu/online)',
  'echo cpu_dirs=$(ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l)',
  'echo getconf_onln=$(getconf _NPROCESSORS_ONLN)',
  'echo nproc=$(nproc)',
  `echo python_cpu_count=$(python3 -c 'import os; print(os.cpu_count())')`,
  `echo node_totalmem=$(${JSON.stringify(process.execPath)} -e 'console.log(require("os").totalmem())')`,
  'echo starttime_ticks=$(cut -d" " -f22 /proc/1/stat)',
  'echo timens=$(readlink /proc/self/ns/time)',
].join('\n');

describe('lxcfs-ts run: limits as programs see them', () => {
  let backend: ViewBackend;
  before(async () => {
    if (process.getuid?.() === 0) backend = await viewBackend('limits', 'views');
  });
  after(async () => backend?.stop());

  it('--memory 256M --cpuset 0: free says 256, one CPU everywhere, Node sees 268435456 bytes', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('mem-cpuset');
    const run = startLxcfsTs([
      'run',
      ...backend.runArgs,
      '--memory',
      '256M',
      '--cpuset',
      '0',
      '--',
      'sh',
      '-c',
      `${probeScript}\n: ${token}`,
    ]);
    const result = await run.result;
    assert.equal(result.code, 0, result.stderr);
    const seen = keyValues(result.stdout);
    assert.equal(seen.get('pid'), '1', 'CMD is PID 1 of its pid namespace');
    assert.equal(seen.get('free_total_mib'), '256');
    assert.equal(seen.get('cpuinfo_processors'), '1');
    assert.equal(seen.get('online'), '0');
    // Debian's lxcfs 5.0.3 lists every host cpuN directory; lxcfs-ts lists exactly the visible ones.
    if (backend.name === 'private') assert.equal(seen.get('cpu_dirs'), '1');
    assert.equal(seen.get('getconf_onln'), '1');
    assert.equal(seen.get('nproc'), '1');
    assert.equal(seen.get('python_cpu_count'), '1');
    assert.equal(seen.get('node_totalmem'), '268435456');
    await assertNothingLeft(run.child.pid!, token);
  });

  it('--cpus 1 without a cpuset: one CPU too (the quota counts, as with --enable-cfs)', async (t) => {
    if (!requireRoot(t)) return;
    const result = await runLxcfsTs([
      'run',
      ...backend.runArgs,
      '--cpus',
      '1',
      '--',
      'sh',
      '-c',
      probeScript,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const seen = keyValues(result.stdout);
    assert.equal(seen.get('cpuinfo_processors'), '1');
    assert.equal(seen.get('online'), '0');
    assert.equal(seen.get('getconf_onln'), '1');
    assert.equal(seen.get('python_cpu_count'), '1');
    assert.equal(seen.get('node_totalmem'), String(totalmem()), 'no memory limit: the host total');
  });

  it('starts CMD at uptime ~0 in a new time namespace, unless --no-timens', async (t) => {
    if (!requireRoot(t)) return;
    const hostTimens = readlinkSync('/proc/self/ns/time');
    const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const ticksPerSecond = 100; // USER_HZ on every Linux architecture lxcfs-ts runs on
    const withTimens = keyValues(
      (await runLxcfsTs(['run', ...backend.runArgs, '--', 'sh', '-c', probeScript])).stdout,
    );
    assert.notEqual(withTimens.get('timens'), hostTimens);
    assert.ok(
      Number(withTimens.get('starttime_ticks')) / ticksPerSecond < 5,
      `start ${withTimens.get('starttime_ticks')} ticks`,
    );
    const without = keyValues(
      (await runLxcfsTs(['run', ...backend.runArgs, '--no-timens', '--', 'sh', '-c', probeScript])).stdout,
    );
    assert.equal(without.get('timens'), hostTimens);
    assert.ok(Number(without.get('starttime_ticks')) / ticksPerSecond >= hostUptime - 1);
  });

  it('leaves the host view unchanged while sandboxes run', async (t) => {
    if (!requireRoot(t)) return;
    const hostView = () => ({
      memTotal: readFileSync('/proc/meminfo', 'utf8').split('\n')[0],
      online: readFileSync('/sys/devices/system/cpu/online', 'utf8'),
      cpus: cpus().length,
      totalmem: totalmem(),
    });
    const before = hostView();
    const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-host-'));
    try {
      const run = startLxcfsTs([
        'run',
        ...backend.runArgs,
        '--memory',
        '256M',
        '--cpuset',
        '0',
        '--',
        'sh',
        '-c',
        `touch ${dir}/started; i=0; while [ ! -e ${dir}/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done`,
      ]);
      await waitFor('the sandbox to start', () => existsSync(join(dir, 'started')));
      assert.deepEqual(hostView(), before);
      writeFileSync(join(dir, 'done'), '');
      assert.equal((await run.result).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs two sandboxes at once, each seeing its own limits', async (t) => {
    if (!requireRoot(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-two-'));
    // Each sandbox announces itself and waits for the other, so both are alive when they read.
    const script = (me: string, other: string) =>
      `touch ${dir}/${me}; i=0; while [ ! -e ${dir}/${other} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n${probeScript}`;
    try {
      const [a, b] = await Promise.all([
        runLxcfsTs([
          'run',
          ...backend.runArgs,
          '--memory',
          '256M',
          '--cpuset',
          '0',
          '--',
          'sh',
          '-c',
          script('a', 'b'),
        ]),
        runLxcfsTs([
          'run',
          ...backend.runArgs,
          '--memory',
          '512M',
          '--cpus',
          '2',
          '--',
          'sh',
          '-c',
          script('b', 'a'),
        ]),
      ]);
      assert.equal(a.code, 0, a.stderr);
      assert.equal(b.code, 0, b.stderr);
      const seenA = keyValues(a.stdout);
      const seenB = keyValues(b.stdout);
      assert.equal(seenA.get('free_total_mib'), '256');
      assert.equal(seenA.get('getconf_onln'), '1');
      assert.equal(seenB.get('free_total_mib'), '512');
      assert.equal(seenB.get('getconf_onln'), String(Math.min(2, cpus().length)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lxcfs-ts run: exit statuses', () => {
  let backend: ViewBackend;
  before(async () => {
    if (process.getuid?.() === 0) backend = await viewBackend('status', 'mounts');
  });
  after(async () => backend?.stop());

  it('passes CMD\'s exit status on', async (t) => {
    if (!requireRoot(t)) return;
    assert.equal((await runLxcfsTs(['run', ...backend.runArgs, '--', 'sh', '-c', 'exit 42'])).code, 42);
    assert.equal((await runLxcfsTs(['run', ...backend.runArgs, '--', 'true'])).code, 0);
  });

  it('answers 128+9 when the kernel OOM-kills CMD at the memory limit (no swap allowed)', async (t) => {
    if (!requireRoot(t)) return;
    const result = await runLxcfsTs([
      'run',
      ...backend.runArgs,
      '--memory',
      '64M',
      '--memory-swap',
      '64M',
      '--',
      'python3',
      '-c',
      'b = bytearray(512 * 1024 * 1024)',
    ]);
    assert.equal(result.code, 137, result.stderr);
  });

  it('answers 127 for a command that does not exist and 126 for one that cannot run, creating nothing', async (t) => {
    if (!requireRoot(t)) return;
    const missing = startLxcfsTs(['run', ...backend.runArgs, '--', 'no-such-command-xyz']);
    const r1 = await missing.result;
    assert.equal(r1.code, 127);
    assert.match(r1.stderr, /no-such-command-xyz: command not found/);
    await assertNothingLeft(missing.child.pid!, 'no-such-command-xyz');
    const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-noexec-'));
    try {
      writeFileSync(join(dir, 'data'), 'not a program\n', { mode: 0o644 });
      const r2 = await runLxcfsTs(['run', ...backend.runArgs, '--', join(dir, 'data')]);
      assert.equal(r2.code, 126);
      assert.match(r2.stderr, /cannot execute/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 2 with the usage for bad flags and sizes', async (t) => {
    if (!requireRoot(t)) return;
    for (const args of [['--memory', '12Q', 'true'], ['--bogus', 'true'], ['--cpuset', '1-0', 'true'], []]) {
      const result = await runLxcfsTs(['run', ...args]);
      assert.equal(result.code, 2, `run ${args.join(' ')}`);
      assert.match(result.stderr, /Usage: lxcfs-ts run/);
    }
    const help = await runLxcfsTs(['run', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--memory-swap SIZE/);
  });

  it('answers 125 and says so when not run as root', async (t) => {
    if (!requireRoot(t)) return;
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      // Any non-zero uid; CAP_DAC_READ_SEARCH only lets it read the installation wherever the checkout lives.
      const asNobody = [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=+dac_read_search',
        '--ambient-caps=+dac_read_search',
      ];
      const child = spawn('setpriv', [...asNobody, '--', lxcfsTs, 'run', '--', 'true'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
      });
      child.once('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(result.code, 125, result.stderr);
    assert.match(result.stderr, /^lxcfs-ts run: needs root/);
  });

  it('answers 125 with a clear message for a cpuset the host does not have', async (t) => {
    if (!requireRoot(t)) return;
    const result = await runLxcfsTs(['run', ...backend.runArgs, '--cpuset', '0,63', '--', 'true']);
    assert.equal(result.code, 125);
    assert.match(result.stderr, /CPU 63 is not available on this host/);
  });
});
