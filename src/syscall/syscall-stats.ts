/**
 * Counters of the syscall view, written by its thread and read by /metrics on the main thread
 * (one SharedArrayBuffer, no locking: each slot has one writer).
 */
const enum Slot {
  answered,
  continued,
  faulted,
  recovered,
  listeners,
  /** Sum of answer times, in ns. */
  nanos,
  count,
}

export function createSyscallStatsBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(Slot.count * 8);
}

export interface SyscallTotals {
  readonly answered: number;
  readonly continued: number;
  readonly faulted: number;
  readonly recovered: number;
  readonly listeners: number;
  readonly seconds: number;
}

export class SyscallStats {
  private readonly slots: Float64Array;

  constructor(buffer: SharedArrayBuffer) {
    this.slots = new Float64Array(buffer);
  }

  record(nanos: number): void {
    this.slots[Slot.answered]!++;
    this.slots[Slot.nanos]! += nanos;
  }

  continued(): void {
    this.slots[Slot.continued]!++;
  }

  faulted(): void {
    this.slots[Slot.faulted]!++;
  }

  recovered(): void {
    this.slots[Slot.recovered]!++;
  }

  setListeners(n: number): void {
    this.slots[Slot.listeners] = n;
  }

  totals(): SyscallTotals {
    const s = this.slots;
    return {
      answered: s[Slot.answered]!,
      continued: s[Slot.continued]!,
      faulted: s[Slot.faulted]!,
      recovered: s[Slot.recovered]!,
      listeners: s[Slot.listeners]!,
      seconds: s[Slot.nanos]! / 1e9,
    };
  }
}
