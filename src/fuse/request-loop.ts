/**
 * The blocking request loop one worker thread runs: read a request from /dev/fuse, handle it
 * synchronously, write the reply. Several threads run it on the same descriptor; the kernel
 * hands each request to exactly one of them.
 */
import { readSync, writeSync } from 'node:fs';
import type { Logger } from '../common/log.js';
import type { RequestDispatcher } from './dispatch.js';
import { StructSize } from './protocol.js';
import type { WorkerSlot } from './worker-watch.js';

export type LoopEnd = 'unmounted' | 'retired';

export interface LoopBuffers {
  /** At least the negotiated read buffer size, or the kernel fails the read with EINVAL. */
  readBufferSize: number;
  /** Largest READ payload the kernel asks for. */
  maxRead: number;
}

/**
 * Runs until the connection goes away (unmount or abort: ENODEV), or until the watchdog took a
 * request over from this thread (it is then replaced). Other errors are thrown.
 */
export function runRequestLoop(
  fd: number,
  dispatcher: RequestDispatcher,
  sizes: LoopBuffers,
  log: Logger,
  slot: WorkerSlot | null,
): LoopEnd {
  const request = Buffer.allocUnsafe(sizes.readBufferSize);
  const reply = Buffer.allocUnsafe(StructSize.OUT_HEADER + Math.max(sizes.maxRead, 64 * 1024));
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, request, 0, request.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENODEV' || code === 'ECONNABORTED') return 'unmounted';
      // EINTR/EAGAIN: retry. ENOENT: the request was interrupted before we could read it.
      if (code === 'EINTR' || code === 'EAGAIN' || code === 'ENOENT') continue;
      throw err;
    }
    if (n < StructSize.IN_HEADER) {
      log.warn({ bytes: n }, 'short read from /dev/fuse ignored');
      continue;
    }
    slot?.begin(request, n);
    const length = dispatcher.handle(request, n, reply);
    if (slot && !slot.end()) return 'retired';
    if (length === 0) continue;
    try {
      writeSync(fd, reply, 0, length);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: the caller went away (interrupted, or answered already by someone else).
      if (code === 'ENOENT') continue;
      if (code === 'ENODEV' || code === 'ECONNABORTED') return 'unmounted';
      log.error({ err, bytes: length }, 'reply rejected by the kernel');
    }
  }
}
