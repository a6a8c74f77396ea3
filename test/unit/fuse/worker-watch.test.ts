/**
 * The request deadline's clock arithmetic. Found live in the cgroup v2 guest: under software
 * emulation a worker began a request just after the watchdog read the clock, the difference
 * came out as -2 ms read unsigned (2^32 - 2), and a caller got the host's /proc/meminfo.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWorkerWatchBuffer, elapsedSince, monotonicMs, WorkerSlot, WorkerWatch } from '../../../src/fuse/worker-watch.js';

describe('worker deadlines', () => {
  it('a request that began after the watchdog read the clock is not late', () => {
    const buffer = createWorkerWatchBuffer(1);
    const slot = new WorkerSlot(buffer, 0);
    const watch = new WorkerWatch(buffer);
    const before = monotonicMs();
    slot.begin(Buffer.from('request'), 7);
    assert.deepEqual(watch.claimOverdue([0], 1000, (before - 2) >>> 0), []);
    assert.equal(slot.end(), true, 'the worker still owns its answer');
  });

  it('a request busy past the deadline is claimed once, with how late it is', () => {
    const buffer = createWorkerWatchBuffer(1);
    const slot = new WorkerSlot(buffer, 0);
    const watch = new WorkerWatch(buffer);
    slot.begin(Buffer.from('request'), 7);
    const claimed = watch.claimOverdue([0], 1000, (monotonicMs() + 1500) >>> 0);
    assert.equal(claimed.length, 1);
    assert.ok(claimed[0]!.elapsedMs >= 1500 && claimed[0]!.elapsedMs < 1600, `${claimed[0]!.elapsedMs} ms`);
    assert.equal(claimed[0]!.request.toString(), 'request');
    assert.equal(slot.end(), false, 'the watchdog answered: the worker must not');
    assert.deepEqual(watch.claimOverdue([0], 1000, (monotonicMs() + 5000) >>> 0), []);
  });

  it('elapsed time survives the 32-bit wrap of the millisecond clock', () => {
    assert.equal(elapsedSince(0xffff_fff0, 0x10), 0x20);
    assert.equal(elapsedSince(100, 98), 0);
    assert.equal(elapsedSince(5, 5), 0);
  });
});
