import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createSnapshotStoreBuffers, SnapshotStore } from '../../../src/fs/snapshot-store.js';

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

test('when slots or pages run out it says so instead of corrupting', () => {
  const store = new SnapshotStore(createSnapshotStoreBuffers(2, 2));
  const a = store.open();
  const b = store.open();
  assert.equal(store.open(), 0, 'no slot left');
  assert.equal(store.put(a, Buffer.alloc(2 * 4096)), true);
  assert.equal(store.put(b, Buffer.alloc(10)), false, 'no page left');
  assert.equal(store.read(b, 0, 10), null);
  assert.equal(store.read(a, 0, 3 * 4096)!.length, 2 * 4096);
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
