/**
 * What a reader of the mounted view sees, through a real FUSE mount: the tree, attributes, the
 * read protocol (chunked reads see one snapshot, reads at an offset work without a prior read at
 * 0), the renumbered cpu directory, and read-only behaviour.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningDaemon, startDaemon } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';

describe('the mounted view', { concurrency: false }, () => {
  let daemon: RunningDaemon | null = null;
  const at = (path: string) => join(daemon!.mountpoint, path);

  before(async () => {
    if (process.getuid?.() === 0) daemon = await startDaemon(['--enable-cfs']);
  });
  after(() => daemon?.cleanup());

  test('has LXCFS\'s layout', (t) => {
    if (!needsRoot(t)) return;
    assert.deepEqual(readdirSync(at('')).sort(), ['proc', 'sys']);
    const proc = readdirSync(at('proc')).sort();
    for (const name of [
      'cpuinfo',
      'diskstats',
      'loadavg',
      'meminfo',
      'slabinfo',
      'stat',
      'swaps',
      'uptime',
    ]) {
      assert.ok(proc.includes(name), `proc/${name} is listed`);
    }
    assert.deepEqual(readdirSync(at('sys')), ['devices']);
    assert.deepEqual(readdirSync(at('sys/devices')), ['system']);
    assert.deepEqual(readdirSync(at('sys/devices/system')), ['cpu']);
  });

  test('is mounted read-only as fuse.lxcfs', (t) => {
    if (!needsRoot(t)) return;
    const line = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[4] === daemon!.mountpoint);
    assert.ok(line, 'the mount is listed');
    assert.match(line, / ro[, ]/);
    assert.match(line, / - fuse\.lxcfs lxcfs /);
    assert.throws(() => writeFileSync(at('proc/meminfo'), 'x'), { code: 'EROFS' });
  });

  test('files are regular, read-only, with a non-zero size', (t) => {
    if (!needsRoot(t)) return;
    const st = statSync(at('proc/meminfo'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o444);
    assert.ok(st.size >= 4096, `size ${st.size}`);
    // as the kernel's: slabinfo is root's only (slab layout helps heap exploits)
    assert.equal(statSync(at('proc/slabinfo')).mode & 0o777, 0o400);
    assert.ok(statSync(at('proc')).isDirectory());
  });

  test('unknown names are ENOENT, also when asked twice (negative entries are cached)', (t) => {
    if (!needsRoot(t)) return;
    for (let i = 0; i < 2; i++) {
      assert.throws(() => statSync(at('proc/nonexistent')), { code: 'ENOENT' });
      assert.throws(() => readFileSync(at('nothing-here')), { code: 'ENOENT' });
    }
  });

  test('a reader reading in small chunks gets one whole, consistent snapshot', (t) => {
    if (!needsRoot(t)) return;
    const whole = readFileSync(at('proc/meminfo'), 'utf8');
    const fd = openSync(at('proc/meminfo'), 'r');
    try {
      const parts: Buffer[] = [];
      const chunk = Buffer.alloc(100);
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, null);
        if (n === 0) break;
        parts.push(Buffer.from(chunk.subarray(0, n)));
      }
      const chunked = Buffer.concat(parts).toString();
      assert.ok(parts.length > 5, 'several reads were needed');
      assert.equal(chunked.split('\n').length, whole.split('\n').length);
      assert.match(chunked, /^MemTotal: +\d+ kB\n/);
      assert.match(chunked, /\nHugepagesize: +\d+ kB\n/);
    } finally {
      closeSync(fd);
    }
  });

  test('pread at an offset works on a fresh handle and past the end returns nothing', (t) => {
    if (!needsRoot(t)) return;
    const fd = openSync(at('proc/meminfo'), 'r');
    try {
      const buf = Buffer.alloc(5);
      assert.equal(readSync(fd, buf, 0, 5, 3), 5);
      assert.equal(buf.toString(), 'Total');
      assert.equal(readSync(fd, buf, 0, 5, 1_000_000), 0);
    } finally {
      closeSync(fd);
    }
  });

  test('many handles open at once each keep their own snapshot', (t) => {
    if (!needsRoot(t)) return;
    const fds = Array.from({ length: 200 }, () => openSync(at('proc/cpuinfo'), 'r'));
    try {
      const first = Buffer.alloc(64);
      for (const fd of fds) assert.equal(readSync(fd, first, 0, first.length, 0), first.length);
      for (const fd of fds) {
        const rest = Buffer.alloc(65536);
        const n = readSync(fd, rest, 0, rest.length, first.length);
        assert.ok(n > 0, 'the rest of the snapshot is there');
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  });

  test('the cpu directory passes host entries through', (t) => {
    if (!needsRoot(t)) return;
    const names = readdirSync(at('sys/devices/system/cpu'));
    assert.ok(names.includes('cpu0'));
    assert.ok(names.includes('online'));
    assert.equal(names.filter((n) => n === 'online').length, 1, 'online is listed once');
    assert.equal(
      readFileSync(at('sys/devices/system/cpu/cpu0/topology/core_id'), 'utf8'),
      readFileSync('/sys/devices/system/cpu/cpu0/topology/core_id', 'utf8'),
    );
    assert.equal(
      readlinkSync(at('sys/devices/system/cpu/cpu0/subsystem')),
      readlinkSync('/sys/devices/system/cpu/cpu0/subsystem'),
    );
    assert.ok(lstatSync(at('sys/devices/system/cpu/cpu0/subsystem')).isSymbolicLink());
    assert.ok(statSync(at('sys/devices/system/cpu/cpufreq')).isDirectory());
  });

  test('statfs answers', (t) => {
    if (!needsRoot(t)) return;
    const st = statfsSync(daemon!.mountpoint);
    assert.equal(st.bsize, 4096);
  });
});
