import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { checksum, createSnapshotStoreBuffers, SnapshotStore } from '../../../src/fs/snapshot-store.js';

test('a snapshot is read back at any offset and in pieces', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(4, 16));
  const fh = store.open();
  assert.ok(fh > 0);
  assert.equal(store.read(fh, 0, 10), null, 'no snapshot yet');
  const content = Buffer.from(Array.from({ length: 10_000 }, (_, i) => `${i % 10}`).join(''));
  assert.equal(store.put(fh, content), true);
  assert.deepEqual(store.read(fh, 0, 100_000), content);
  assert.deepEqual(store.read(fh, 4090, 20), content.subarray(4090, 4110), 'across a page boundary');
  assert.equal(store.read(fh, 10_000, 10)!.length, 0, 'end of file');
  assert.equal(store.read(fh, 50_000, 10)!.length, 0, 'past the end');
});

test('a new snapshot replaces the old one and frees its pages', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(4, 4));
  const fh = store.open();
  store.put(fh, Buffer.alloc(3 * 4096, 1));
  assert.equal(store.stats().usedPages, 3);
  store.put(fh, Buffer.from('short'));
  assert.equal(store.stats().usedPages, 1);
  assert.equal(store.read(fh, 0, 100)!.toString(), 'short');
  store.release(fh);
  assert.equal(store.stats().usedPages, 0);
  assert.equal(store.stats().openHandles, 0);
});

test('a released or foreign handle is unknown, never aliased to a reused slot', () => {
  const buffers = createSnapshotStoreBuffers(1, 4);
  const store = new SnapshotStore(buffers);
  const first = store.open();
  store.put(first, Buffer.from('first'));
  store.release(first);
  const second = store.open();
  assert.notEqual(second, first, 'the reused slot has a new generation');
  assert.equal(store.read(first, 0, 10), null);
  assert.equal(store.put(first, Buffer.from('x')), false);
  store.release(first); // ignored
  store.put(second, Buffer.from('second'));
  assert.equal(store.read(second, 0, 10)!.toString(), 'second');
  const otherProcess = new SnapshotStore(createSnapshotStoreBuffers(1, 4));
  assert.equal(otherProcess.read(second, 0, 10), null);
});

test('a full pool evicts the oldest snapshots, whoever holds them, so a new one always fits', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(8, 4));
  // One holder takes the whole pool with two snapshots...
  const hoard1 = store.open();
  const hoard2 = store.open();
  const old1 = Buffer.alloc(2 * 4096, 'a');
  assert.equal(store.put(hoard1, old1, 100), true);
  assert.equal(store.put(hoard2, Buffer.alloc(2 * 4096, 'b')), true);
  assert.equal(store.stats().usedPages, 4);
  // ...a neighbour's new handle still gets one: the oldest snapshot (hoard1's) makes room.
  const neighbour = store.open();
  assert.equal(store.put(neighbour, Buffer.from('neighbour')), true);
  assert.deepEqual(store.read(neighbour, 0, 100), Buffer.from('neighbour'));
  assert.equal(store.read(hoard1, 0, 10), null, 'evicted');
  assert.equal(store.read(hoard2, 0, 1)!.toString(), 'b', 'the newer snapshot stays');
  assert.equal(store.stats().evictions, 1);
  assert.ok(store.stats().usedPages <= 4, 'the pool stays bounded');
  // The evicted handle remembers what its reader had: 100 bytes of old1, and their checksum.
  assert.deepEqual(store.evicted(hoard1), { served: 100, checksum: checksum(old1, 0, 100) });
  assert.equal(store.evicted(hoard2), null, 'not evicted');
  // A new snapshot for it (its next read at offset 0) makes it a normal handle again.
  assert.equal(store.put(hoard1, Buffer.from('again'), 5), true);
  assert.equal(store.evicted(hoard1), null);
  assert.equal(store.read(hoard1, 0, 10)!.toString(), 'again');
  // A snapshot taken again is the newest: the oldest now is hoard2's.
  const other = store.open();
  store.put(other, Buffer.alloc(3 * 4096, 'c'));
  assert.equal(store.read(hoard2, 0, 1), null, 'hoard2 evicted first');
  assert.equal(store.read(hoard1, 0, 10)!.toString(), 'again');
});

test('the bytes served so far follow the reads', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(2, 1));
  const a = store.open();
  const content = Buffer.from('0123456789');
  store.put(a, content, 3);
  store.read(a, 3, 4);
  store.read(a, 0, 2); // a re-read of the start does not move it back
  const b = store.open();
  store.put(b, Buffer.from('x')); // evicts a
  assert.deepEqual(store.evicted(a), { served: 7, checksum: checksum(content, 0, 7) });
});

test('when every slot is in use, the oldest handle\'s slot is taken and that handle becomes unknown', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(2, 4));
  const a = store.open();
  const b = store.open();
  store.put(a, Buffer.from('a'));
  store.put(b, Buffer.from('b'));
  const c = store.open();
  assert.ok(c > 0, 'a new handle always gets a slot');
  assert.equal(store.stats().takenSlots, 1);
  assert.equal(store.stats().openHandles, 2);
  assert.equal(store.read(a, 0, 1), null, 'a (the oldest) is unknown now');
  assert.equal(store.evicted(a), null);
  assert.equal(store.put(a, Buffer.from('x')), false);
  store.release(a); // ignored
  assert.equal(store.read(b, 0, 1)!.toString(), 'b');
  assert.equal(store.put(c, Buffer.from('c')), true);
  assert.equal(store.read(c, 0, 1)!.toString(), 'c');
});

test('a snapshot larger than the whole pool is refused, and nothing stale is served', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(2, 2));
  const a = store.open();
  assert.equal(store.put(a, Buffer.from('small')), true);
  assert.equal(store.put(a, Buffer.alloc(3 * 4096)), false);
  assert.equal(store.read(a, 0, 10), null);
  assert.equal(store.stats().usedPages, 0);
});

test('a snapshot put by one thread is read by another', async () => {
  const buffers = createSnapshotStoreBuffers(8, 8);
  const store = new SnapshotStore(buffers);
  const fh = store.open();
  store.put(fh, Buffer.from('written on the main thread'));
  const moduleUrl = new URL('../../../src/fs/snapshot-store.js', import.meta.url).href;
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     import(workerData.moduleUrl).then(({ SnapshotStore }) => {
       const store = new SnapshotStore(workerData.buffers);
       const seen = store.read(workerData.fh, 0, 100).toString();
       store.put(workerData.fh, Buffer.from('replaced by the worker'));
       parentPort.postMessage(seen);
     });`,
    { eval: true, workerData: { buffers, fh, moduleUrl } },
  );
  const seen = await new Promise<string>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.equal(seen, 'written on the main thread');
  assert.equal(store.read(fh, 0, 100)!.toString(), 'replaced by the worker');
});
