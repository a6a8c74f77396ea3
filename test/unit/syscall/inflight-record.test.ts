import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InflightRecord, sizeInflightFile } from '../../../src/syscall/inflight-record.js';

const dir = mkdtempSync(join(tmpdir(), 'inflight-record-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function recordFile(): number {
  const path = join(dir, `record-${Math.random()}`);
  const fd = openSync(path, 'w+', 0o600);
  unlinkSync(path);
  sizeInflightFile(fd);
  return fd;
}

/** Stores a notification the way NOTIF_RECV does: into the record's buffer, in place. */
function kernelWrites(buf: Buffer, n: { id: bigint; pid: number; nr: number; arch: number; arg0: bigint }): void {
  buf.writeBigUInt64LE(n.id, 0);
  buf.writeUInt32LE(n.pid, 8);
  buf.writeInt32LE(n.nr, 16);
  buf.writeUInt32LE(n.arch, 20);
  buf.writeBigUInt64LE(n.arg0, 32);
}

describe('the in-flight record', () => {
  it('is empty in a new file and after a receive that took nothing', () => {
    const fd = recordFile();
    const record = new InflightRecord(fd);
    assert.equal(record.read(), null);
    record.beforeReceive(7);
    assert.equal(record.read(), null, 'a zero pid says nothing was taken');
    closeSync(fd);
  });

  it('shows a successor what was taken, with the listener it came from', () => {
    const fd = recordFile();
    const first = new InflightRecord(fd);
    first.beforeReceive(12);
    kernelWrites(first.notification, { id: 0xfedcba9876543210n, pid: 4242, nr: 99, arch: 0xc000003e, arg0: 0x7ffd0000n });
    const successor = new InflightRecord(fd);
    assert.deepEqual(successor.read(), {
      holderFd: 12,
      notification: { id: 0xfedcba9876543210n, pid: 4242, nr: 99, arch: 0xc000003e, arg0: 0x7ffd0000n },
    });
    successor.end();
    assert.equal(first.read(), null, 'answered: gone for every mapping');
    closeSync(fd);
  });

  it('renumbers its listener for a new supervisor after a takeover, and leaves other numbers alone', () => {
    const fd = recordFile();
    const old = new InflightRecord(fd);
    old.beforeReceive(25);
    kernelWrites(old.notification, { id: 5n, pid: 77, nr: 99, arch: 0xc000003e, arg0: 0n });
    const newcomer = new InflightRecord(fd);
    newcomer.renumber(new Map([[24, 31], [25, 32]]));
    assert.equal(newcomer.read()?.holderFd, 32);
    newcomer.renumber(new Map([[25, 40]]));
    assert.equal(newcomer.read()?.holderFd, 32, 'a number the map does not name stays');
    assert.equal(newcomer.read()?.notification.pid, 77, 'the notification itself is untouched');
    closeSync(fd);
  });

  it('keeps what a process stored before it was killed with SIGKILL', () => {
    const fd = recordFile();
    const module = new URL('../../../src/syscall/inflight-record.js', import.meta.url).href;
    // The child maps the file it inherits as fd 3, records, and kills itself before any cleanup.
    const script = [
      `const { InflightRecord } = await import(${JSON.stringify(module)});`,
      'const r = new InflightRecord(3);',
      'r.beforeReceive(5);',
      'r.notification.writeBigUInt64LE(77n, 0);',
      'r.notification.writeUInt32LE(31337, 8);',
      'process.kill(process.pid, \'SIGKILL\');',
    ].join('\n');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'inherit', 'inherit', fd],
      timeout: 30_000,
    });
    assert.equal(child.signal, 'SIGKILL');
    const left = new InflightRecord(fd).read();
    assert.equal(left?.holderFd, 5);
    assert.equal(left?.notification.id, 77n);
    assert.equal(left?.notification.pid, 31337);
    closeSync(fd);
  });
});
