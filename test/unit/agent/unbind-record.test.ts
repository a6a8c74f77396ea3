import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  readUnbindRecord,
  recordPath,
  removeUnbindRecord,
  type UnbindRecord,
  writeUnbindRecord,
} from '../../../src/agent/repair/unbind-record.js';

describe('the planned-stop record', () => {
  const parent = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-record-'));
  const mountpoint = join(parent, 'view');
  after(() => rmSync(parent, { recursive: true, force: true }));

  const record: UnbindRecord = {
    version: 1,
    bootId: 'b0f9d3d5-142c-4118-947e-b4346e697b67',
    mountpoint,
    stoppedAt: '2026-01-01T00:00:00.000Z',
    mounts: [
      { namespace: 'mnt:[4026532177]', pid: 4242, startTime: '488159', target: '/proc/meminfo', root: '/proc/meminfo', flags: ['ro'] },
    ],
  };

  it('lives in the view\'s parent directory, per view, readable by root only', () => {
    assert.equal(recordPath('/var/lib/lxcfs'), '/var/lib/.lxcfs-ts/lxcfs.unbound.json');
    const path = writeUnbindRecord(mountpoint, record);
    assert.equal(path, join(parent, '.lxcfs-ts', 'view.unbound.json'));
    assert.equal(statSync(join(parent, '.lxcfs-ts')).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('reads back what was written, and nothing once removed', () => {
    writeUnbindRecord(mountpoint, record);
    assert.deepEqual(readUnbindRecord(mountpoint), record);
    removeUnbindRecord(mountpoint);
    assert.equal(readUnbindRecord(mountpoint), null);
    removeUnbindRecord(mountpoint); // twice is fine
  });

  it('refuses records it does not understand rather than binding anything from them', () => {
    const path = writeUnbindRecord(mountpoint, record);
    writeFileSync(path, JSON.stringify({ ...record, version: 2 }));
    assert.throws(() => readUnbindRecord(mountpoint), /not a record this version understands/);
    writeFileSync(path, JSON.stringify({ ...record, mounts: [{ ...record.mounts[0], target: 'proc/meminfo' }] }));
    assert.throws(() => readUnbindRecord(mountpoint), /malformed/);
    writeFileSync(path, '{"version": 1,');
    assert.throws(() => readUnbindRecord(mountpoint), SyntaxError);
    assert.ok(readFileSync(path, 'utf8').length > 0);
  });
});
