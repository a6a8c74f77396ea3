import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../../src/common/log.js';

function capture(write: (log: ReturnType<typeof createLogger>) => void, level: Parameters<typeof createLogger>[0] = 'info') {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-log-'));
  const file = join(dir, 'log');
  const fd = openSync(file, 'w');
  try {
    write(createLogger(level, { role: 'test' }, fd));
  } finally {
    closeSync(fd);
  }
  const lines = readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  rmSync(dir, { recursive: true });
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('one JSON line per record, with level number, time, pid, bindings and message', () => {
  const [line] = capture((log) => log.info({ mountpoint: '/x' }, 'mounted'));
  assert.equal(line!.level, 30);
  assert.equal(line!.pid, process.pid);
  assert.equal(line!.role, 'test');
  assert.equal(line!.mountpoint, '/x');
  assert.equal(line!.msg, 'mounted');
  assert.ok(typeof line!.time === 'number');
});

test('records below the level are dropped; child loggers add bindings', () => {
  const lines = capture((log) => {
    log.debug('hidden');
    log.child({ thread: 'fuse-1' }).warn('shown');
  });
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 40);
  assert.equal(lines[0]!.thread, 'fuse-1');
});

test('errors keep their message, code and stack; cycles and bigints do not break a line', () => {
  const err = Object.assign(new Error('boom'), { code: 'ENOENT' });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const lines = capture((log) => {
    log.error({ err, unique: 5n }, 'failed');
    log.error({ cyclic }, 'still logged');
  });
  assert.deepEqual((lines[0]!.err as Record<string, unknown>).message, 'boom');
  assert.equal((lines[0]!.err as Record<string, unknown>).code, 'ENOENT');
  assert.match(String((lines[0]!.err as Record<string, unknown>).stack), /boom/);
  assert.equal(lines[0]!.unique, '5');
  assert.equal(lines[1]!.msg, 'still logged');
});
