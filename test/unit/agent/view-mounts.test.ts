import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseMountinfo } from '../../../src/agent/mountinfo.js';
import { deviceName } from '../../../src/agent/repair/path-probe.js';
import {
  bindFlags,
  classifyViewMounts,
  hasForeignViewBinds,
  isCovered,
  liveSourceFor,
  topmostAt,
} from '../../../src/agent/repair/view-mounts.js';
import { mountHolding, parentPropagation } from '../../../src/agent/shared-parent.js';

const fixture = (name: string) =>
  parseMountinfo(
    readFileSync(fileURLToPath(new URL(`../../../../test/fixtures/agent/${name}`, import.meta.url)), 'utf8'),
  );

describe('hasForeignViewBinds (whether the repair needs to read more of a namespace)', () => {
  it('is true for a container with binds of a dead connection, false once every bind is the live one\'s', () => {
    const stale = fixture('mountinfo-stale-container.txt');
    assert.equal(hasForeignViewBinds(stale, '0:43'), true);
    // The same table as seen after the repair: every view mount of the live connection.
    const repaired = stale.map((m) => (m.fstype === 'fuse.lxcfs' ? { ...m, device: '0:43' } : m));
    assert.equal(hasForeignViewBinds(repaired, '0:43'), false);
  });

  it('counts a hidden bind, and not a view\'s root or a table without views', () => {
    const line = (id: number, parent: number, device: string, root: string, target: string) =>
      `${id} ${parent} ${device} ${root} ${target} ro,relatime shared:1 - fuse.lxcfs lxcfs ro\n`;
    const base = '1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n';
    const has = (text: string) => hasForeignViewBinds(parseMountinfo(text), '0:43');
    assert.equal(has(base), false);
    assert.equal(has(base + line(2, 1, '0:39', '/', '/var/lib/old-view')), false, 'a dead view root');
    const hidden = base + line(2, 1, '0:39', '/proc/stat', '/proc/stat') + '3 2 0:50 / /proc/stat rw - tmpfs tmpfs rw\n';
    assert.equal(has(hidden), true, 'a dead bind under a tmpfs');
  });
});

describe('classifyViewMounts (a container after its view daemon was replaced)', () => {
  const entries = fixture('mountinfo-stale-container.txt');
  const mounts = classifyViewMounts(entries, '0:43');

  it('finds every path where the live view\'s root shows, in mount order', () => {
    assert.deepEqual(mounts.liveViews, ['/var/lib/lxcfs-ts/view', '/mnt/copy/view']);
  });

  it('lists the visible binds of other connections, files and directories alike', () => {
    assert.deepEqual(
      mounts.foreign.map((m) => [m.id, m.device, m.root, m.mountpoint]),
      [
        [127, '0:39', '/proc/cpuinfo', '/proc/cpuinfo'],
        [128, '0:39', '/proc/meminfo', '/proc/meminfo'],
        [141, '0:40', '/proc/uptime', '/proc/uptime'],
        [138, '0:39', '/sys/devices/system/cpu', '/sys/devices/system/cpu'],
      ],
    );
  });

  it('leaves out binds hidden under another mount and other views\' roots', () => {
    assert.ok(!mounts.foreign.some((m) => m.mountpoint === '/proc/stat'), 'covered by a tmpfs');
    assert.ok(!mounts.foreign.some((m) => m.root === '/'), 'a view root is not a bind of a view file');
  });

  it('lists the live view\'s own binds (what a planned stop detaches)', () => {
    assert.deepEqual(
      mounts.liveBinds.map((m) => m.mountpoint),
      ['/proc/loadavg'],
    );
  });

  it('keeps read-only and the security flags of a bind, nothing else', () => {
    assert.deepEqual(bindFlags(mounts.foreign[1]!), ['ro', 'nosuid', 'nodev']);
    assert.deepEqual(bindFlags(mounts.foreign[2]!), []);
  });

  it('tells covered mounts from the topmost one', () => {
    const stat = entries.filter((e) => e.mountpoint === '/proc/stat');
    assert.equal(stat.length, 2);
    assert.equal(isCovered(entries, stat[0]!), true);
    assert.equal(topmostAt(entries, '/proc/stat')?.fstype, 'tmpfs');
    assert.equal(topmostAt(entries, '/proc')?.id, 126);
    assert.equal(topmostAt(entries, '/nowhere'), undefined);
  });

  it('joins the live view and a bind\'s root into the path to bind from', () => {
    assert.equal(liveSourceFor('/var/lib/lxcfs-ts/view', '/proc/meminfo'), '/var/lib/lxcfs-ts/view/proc/meminfo');
    assert.equal(liveSourceFor('/', '/proc/meminfo'), '/proc/meminfo');
  });
});

describe('parentPropagation (is the view\'s parent on a shared mount?)', () => {
  const host = fixture('mountinfo-host-private-root.txt');

  it('does nothing when the parent is a shared mount or sits on one', () => {
    assert.deepEqual(parentPropagation(host, '/tmp/shared-parent', false), { action: 'none', mount: '/tmp/shared-parent' });
    assert.deepEqual(parentPropagation(host, '/data/lxcfs', false), { action: 'none', mount: '/data' });
  });

  it('looks at the topmost of stacked mounts', () => {
    assert.equal(mountHolding(host, '/opt/lxcfs')?.id, 47);
    assert.deepEqual(parentPropagation(host, '/opt/lxcfs', false), { action: 'none', mount: '/opt' });
  });

  it('marks a private mount of the parent itself shared', () => {
    assert.deepEqual(parentPropagation(host, '/srv/private-parent', true), { action: 'make-shared' });
  });

  it('binds a directory of a private mount onto itself before marking it shared', () => {
    assert.deepEqual(parentPropagation(host, '/var/lib/lxcfs-ts', true), { action: 'bind-and-share' });
    assert.equal(mountHolding(host, '/var/lib/lxcfs-ts')?.mountpoint, '/');
  });

  it('never re-mounts a directory that holds other things, nor the host\'s root', () => {
    assert.deepEqual(parentPropagation(host, '/var/lib', false), { action: 'not-dedicated' });
    assert.deepEqual(parentPropagation(host, '/srv/private-parent', false), { action: 'not-dedicated' });
    assert.deepEqual(parentPropagation(host, '/', true), { action: 'root-not-shared' });
  });
});

describe('deviceName (stat\'s %d to mountinfo\'s major:minor)', () => {
  it('decodes small and large device numbers as glibc encodes them', () => {
    assert.equal(deviceName(65024n), '254:0');
    assert.equal(deviceName(43n), '0:43');
    // makedev(0, 300): the minor's high bits go above the major's 12 bits.
    assert.equal(deviceName(1048620n), '0:300');
    const major = 259n;
    const minor = 70000n;
    const encoded = (minor & 0xffn) | ((major & 0xfffn) << 8n) | ((minor & ~0xffn) << 12n) | ((major & ~0xfffn) << 32n);
    assert.equal(deviceName(encoded), '259:70000');
  });
});
