/**
 * Deadlines for requests handled by blocking worker threads.
 *
 * Each worker publishes the request it is working on (a copy of its bytes and when it started)
 * in a shared slot. The serving process's main thread looks at the slots; a request still busy
 * after the deadline is answered by the main thread itself (with a fallback answer), the stuck
 * worker is retired and replaced. Whoever flips the slot's state first owns the answer, so a
 * caller gets exactly one reply: the late worker notices and throws its own away.
 */

const SLOT_BYTES = 1024;
const HEADER_INTS = 4;
const REQUEST_BYTES = SLOT_BYTES - HEADER_INTS * 4;

// slot header fields
const STATE = 0; // 0 idle, 1 busy, 2 answered by the watchdog
const STARTED_MS = 1; // monotonic clock ms, modulo 2^32
const LENGTH = 2;
const RETIRED = 3;

const IDLE = 0;
const BUSY = 1;
const RESCUED = 2;

export interface WorkerWatchBuffer {
  sab: SharedArrayBuffer;
  slots: number;
}

export function createWorkerWatchBuffer(slots = 32): WorkerWatchBuffer {
  return { sab: new SharedArrayBuffer(SLOT_BYTES * slots), slots };
}

/**
 * CLOCK_MONOTONIC in ms, modulo 2^32: one clock for every thread, that no wall-clock step moves.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n) >>> 0;
}

/**
 * How long ago STARTED was, or 0 when it lies after NOW: a worker may begin a request between the
 * watchdog's reading of the clock and its look at the slot, and that request is not late (read as
 * an unsigned difference it would be 2^32 - 1 ms late, and be answered with the fallback).
 */
export function elapsedSince(startedMs: number, nowMs: number): number {
  const elapsed = (nowMs - startedMs) | 0;
  return elapsed > 0 ? elapsed : 0;
}

/** The worker's side of its slot. */
export class WorkerSlot {
  private readonly header: Int32Array;
  private readonly bytes: Buffer;

  constructor(buffer: WorkerWatchBuffer, slot: number) {
    this.header = new Int32Array(buffer.sab, slot * SLOT_BYTES, HEADER_INTS);
    this.bytes = Buffer.from(buffer.sab, slot * SLOT_BYTES + HEADER_INTS * 4, REQUEST_BYTES);
    Atomics.store(this.header, RETIRED, 0);
    Atomics.store(this.header, STATE, IDLE);
  }

  begin(request: Buffer, length: number): void {
    const n = Math.min(length, REQUEST_BYTES);
    request.copy(this.bytes, 0, 0, n);
    this.header[LENGTH] = n;
    this.header[STARTED_MS] = monotonicMs() | 0;
    Atomics.store(this.header, STATE, BUSY);
  }

  /**
   * False when the watchdog already answered this request: the worker must not reply, and must
   * leave (a replacement is on its way), so the slot is not reused while the watchdog reads it.
   */
  end(): boolean {
    return Atomics.compareExchange(this.header, STATE, BUSY, IDLE) === BUSY;
  }

  get retired(): boolean {
    return Atomics.load(this.header, RETIRED) === 1;
  }
}

export interface OverdueRequest {
  slot: number;
  request: Buffer;
  elapsedMs: number;
}

/** The watchdog's side: finds requests past their deadline and takes them over. */
export class WorkerWatch {
  constructor(private readonly buffer: WorkerWatchBuffer) {}

  /**
   * Claims every request busy for longer than `deadlineMs` in the given slots. A claimed slot is
   * also marked retired: its worker exits once its handler returns.
   */
  claimOverdue(slots: Iterable<number>, deadlineMs: number, now = monotonicMs()): OverdueRequest[] {
    const claimed: OverdueRequest[] = [];
    for (const slot of slots) {
      const header = new Int32Array(this.buffer.sab, slot * SLOT_BYTES, HEADER_INTS);
      if (Atomics.load(header, STATE) !== BUSY) continue;
      const elapsedMs = elapsedSince(header[STARTED_MS]! >>> 0, now);
      if (elapsedMs < deadlineMs) continue;
      if (Atomics.compareExchange(header, STATE, BUSY, RESCUED) !== BUSY) continue;
      // From here the worker discards its answer and exits (see WorkerSlot.end), so the bytes
      // of the request stay put while we copy them.
      Atomics.store(header, RETIRED, 1);
      const length = header[LENGTH]!;
      const request = Buffer.from(Buffer.from(this.buffer.sab, slot * SLOT_BYTES + HEADER_INTS * 4, length));
      claimed.push({ slot, request, elapsedMs });
    }
    return claimed;
  }

  /** True while the slot's worker is inside a request (used to tell a live loop from a stuck one). */
  busyForMs(slot: number): number {
    const header = new Int32Array(this.buffer.sab, slot * SLOT_BYTES, HEADER_INTS);
    if (Atomics.load(header, STATE) !== BUSY) return 0;
    return elapsedSince(header[STARTED_MS]! >>> 0, monotonicMs());
  }
}
