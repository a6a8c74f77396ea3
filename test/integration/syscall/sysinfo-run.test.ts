/**
 * The syscall view as users meet it: `lxcfs-ts run` with limits, and the programs that read
 * sysinfo(2) instead of /proc (busybox free and uptime, glibc's getloadavg() through Python,
 * sysconf's page counts through getconf, a C program), checked against the sandbox's own files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { needsRoot } from '../../helpers/root.js';
import { runLxcfsTs } from '../sandbox/helpers.js';
import { busyboxFreeMem, fields, hostMemTotalBytes, num, sysinfoProbe } from './helpers.js';

const MiB = 1024 * 1024;

test('busybox free -m shows the sandbox\'s 256 MiB, and agrees with procps free', async (t) => {
  if (!needsRoot(t)) return;
  const r = await runLxcfsTs(['run', '--memory', '256M', '--cpus', '1', '--', 'sh', '-c',
    // Both run once first: loading a binary the first time charges its page cache to the sandbox
    // and would move "free" between the two measured runs.
    'busybox free -m >/dev/null; free -m >/dev/null; busybox free -m; echo ---; free -m']);
  assert.equal(r.code, 0, r.stderr);
  const [busybox, procps] = r.stdout.split('---');
  const bb = busyboxFreeMem(busybox!);
  const pp = busyboxFreeMem(procps!);
  t.diagnostic(`busybox: ${bb.join(' ')}; procps: ${pp.join(' ')}`);
  assert.equal(bb[0], 256, 'busybox total');
  assert.equal(pp[0], 256, 'procps total');
  // used = total - free - buff/cache: a host-sized total would make it absurd (it underflowed before).
  assert.ok(bb[1]! >= 0 && bb[1]! <= 256, `busybox used ${bb[1]} MiB`);
  assert.ok(Math.abs(bb[2]! - pp[2]!) <= 2, `free agrees within 2 MiB (busybox ${bb[2]}, procps ${pp[2]})`);
});

test('a C program\'s sysinfo() agrees with /proc/meminfo, /proc/uptime and /proc/loadavg of the same sandbox', async (t) => {
  if (!needsRoot(t)) return;
  const probe = sysinfoProbe();
  const r = await runLxcfsTs(['run', '--memory', '300M', '--', probe, 'show']);
  assert.equal(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  t.diagnostic(r.stdout.trim().split('\n').join('; '));
  assert.equal(num(f, 'mem_unit'), 1);
  assert.equal(num(f, 'totalram'), 300 * MiB);
  assert.equal(num(f, 'totalram'), num(f, 'meminfo.MemTotal'));
  assert.ok(Math.abs(num(f, 'freeram') - num(f, 'meminfo.MemFree')) <= 4 * MiB, 'free RAM within 4 MiB');
  assert.equal(num(f, 'totalswap'), num(f, 'meminfo.SwapTotal'));
  assert.ok(Math.abs(num(f, 'freeswap') - num(f, 'meminfo.SwapFree')) <= 4 * MiB);
  assert.equal(num(f, 'bufferram'), num(f, 'meminfo.Buffers'));
  const procUptime = Number(f.get('proc.uptime')!.split(' ')[0]);
  assert.ok(Math.abs(num(f, 'uptime') - procUptime) <= 1.01, `uptime ${num(f, 'uptime')} vs /proc/uptime ${procUptime}`);
  assert.ok(num(f, 'uptime') < 60, 'the sandbox\'s uptime (its time namespace), not the host\'s');
  assert.ok(num(f, 'procs') >= 1 && num(f, 'procs') < 10, `procs ${num(f, 'procs')}: the sandbox's threads`);
});

test('Python os.getloadavg() equals the sandbox\'s /proc/loadavg, also under load', async (t) => {
  if (!needsRoot(t)) return;
  // A container's load is counted from its first look at it: here a getloadavg() call (sysinfo).
  // A busy loop for 11 s then gives its 1-minute average two or three samples above 0. The loop
  // forks nothing: one that runs `date` each turn spends much of its time waiting for it (not
  // runnable), and on a loaded machine every sample could miss it.
  const script = [
    'python3 -c "import os; os.getloadavg()"',
    'timeout 11 sh -c "while :; do :; done" &',
    'sleep 11.5',
    'python3 -c "import os; print(\'getloadavg=\' + \' \'.join(\'%.4f\' % x for x in os.getloadavg()))"',
    'echo loadavg=$(cat /proc/loadavg)',
    'wait',
  ].join('\n');
  const r = await runLxcfsTs(['run', '--cpus', '1', '--', 'sh', '-c', script], 60_000);
  assert.equal(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  const py = f.get('getloadavg')!.split(' ').map(Number);
  const file = f.get('loadavg')!.split(' ').slice(0, 3).map(Number);
  const host = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.trim();
  t.diagnostic(`getloadavg ${py.join(' ')}; sandbox /proc/loadavg ${file.join(' ')}; host ${host}`);
  assert.ok(py[0]! > 0.05, `the busy loop shows in the 1-minute average (${py[0]})`);
  py.forEach((x, i) => assert.ok(Math.abs(x - file[i]!) <= 0.0051, `average ${i}: ${x} vs ${file[i]}`));
});

test('getconf _PHYS_PAGES and busybox uptime see the sandbox', async (t) => {
  if (!needsRoot(t)) return;
  const r = await runLxcfsTs(['run', '--memory', '256M', '--', 'sh', '-c', 'echo pages=$(getconf _PHYS_PAGES); echo page=$(getconf PAGESIZE); busybox uptime']);
  assert.equal(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  assert.equal(num(f, 'pages') * num(f, 'page'), 256 * MiB);
  assert.match(r.stdout, /up 0 min/, 'busybox uptime shows the sandbox\'s uptime');
});

test('bad pointers get EFAULT, as from the kernel (NULL, unmapped, read-only)', async (t) => {
  if (!needsRoot(t)) return;
  const probe = sysinfoProbe();
  const outside = spawnSync(probe, ['fault'], { encoding: 'utf8' }).stdout.trim();
  const r = await runLxcfsTs(['run', '--memory', '256M', '--', probe, 'fault']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(outside, 'null=EFAULT unmapped=EFAULT readonly=EFAULT', 'the kernel itself');
  assert.equal(r.stdout.trim(), outside, 'the syscall view');
});

test('processes outside any sandbox, and a sandbox with --no-sysinfo, see the host', async (t) => {
  if (!needsRoot(t)) return;
  const probe = sysinfoProbe();
  const host = hostMemTotalBytes();
  // A sandbox is running (its daemon serves sysinfo) while a host process calls sysinfo.
  const sandbox = runLxcfsTs(['run', '--memory', '256M', '--', 'sh', '-c', `${probe} show; sleep 2; ${probe} show`]);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const outside = fields(spawnSync(probe, ['show'], { encoding: 'utf8' }).stdout);
  const inside = await sandbox;
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(num(outside, 'totalram'), host);
  assert.match(inside.stdout, new RegExp(`totalram=${256 * MiB}\\n`));
  const off = await runLxcfsTs(['run', '--memory', '256M', '--no-sysinfo', '--', probe, 'show']);
  assert.equal(off.code, 0, off.stderr);
  assert.equal(num(fields(off.stdout), 'totalram'), host);
  assert.equal(num(fields(off.stdout), 'meminfo.MemTotal'), 256 * MiB, 'the files are still the view');
});

test('a rootfs with only a static binary gets the syscall view too', async (t) => {
  if (!needsRoot(t)) return;
  const probe = sysinfoProbe();
  const rootfs = spawnSync('mktemp', ['-d', '/tmp/lxcfs-ts-it-sysinfo-rootfs-XXXXXX'], { encoding: 'utf8' }).stdout.trim();
  try {
    spawnSync('cp', [probe, `${rootfs}/probe`]);
    const r = await runLxcfsTs(['run', '--memory', '200M', '--rootfs', rootfs, '--', '/probe', 'show']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(num(fields(r.stdout), 'totalram'), 200 * MiB);
  } finally {
    spawnSync('rm', ['-rf', rootfs]);
  }
});

test('CMD\'s signals and descriptors are as without the filter (SIGPIPE default, stdio blocking)', async (t) => {
  if (!needsRoot(t)) return;
  const script = 'grep -E "^Sig(Ign|Blk)" /proc/self/status; yes | head -1; for fd in 0 1 2; do grep flags /proc/self/fdinfo/$fd; done';
  const on = await runLxcfsTs(['run', '--', 'sh', '-c', script]);
  const off = await runLxcfsTs(['run', '--no-sysinfo', '--', 'sh', '-c', script]);
  assert.equal(on.code, 0, on.stderr);
  assert.equal(on.stdout, off.stdout);
});
