/**
 * Per-open-file content snapshots shared by every FUSE worker thread.
 *
 * A reader's OPEN, READs and RELEASE of one file handle arrive on whichever worker thread reads
 * /dev/fuse first, so the snapshot taken at offset 0 must be visible to all of them. It lives in
 * SharedArrayBuffers: a slot per open handle and a pool of fixed-size pages chained per slot.
 * A small futex-style lock guards the free lists and slot headers; critical sections only copy
 * bytes, so contention between a handful of threads is negligible.
 *
 * File handles carry a per-slot generation, so a handle from a released slot (or from a previous
 * serving process, whose generations started elsewhere) is recognised as unknown, never aliased.
 */

const PAGE_SIZE = 4096;
const NONE = -1;

// control[] fields
const LOCK = 0;
const FREE_SLOT = 1;
const FREE_PAGE = 2;
const OPEN_COUNT = 3;
const USED_PAGES = 4;
const CONTROL_INTS = 8;

// slot record fields (4 x int32)
const SLOT_INTS = 4;
const GEN = 0;
const LENGTH = 1; // -1 while no snapshot has been taken
const FIRST_PAGE = 2; // also the free-list link while the slot is free
const STATE = 3; // 0 free, 1 open

export interface SnapshotStoreBuffers {
  control: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  links: SharedArrayBuffer;
  pages: SharedArrayBuffer;
}

export interface SnapshotStoreStats {
  openHandles: number;
  usedPages: number;
  pageCount: number;
  slotCount: number;
}

/** Allocates the shared memory once (on the serving process's main thread) for all workers. */
export function createSnapshotStoreBuffers(slotCount = 8192, pageCount = 16384): SnapshotStoreBuffers {
  const buffers: SnapshotStoreBuffers = {
    control: new SharedArrayBuffer(CONTROL_INTS * 4),
    slots: new SharedArrayBuffer(slotCount * SLOT_INTS * 4),
    links: new SharedArrayBuffer(pageCount * 4),
    // Untouched pages of a SharedArrayBuffer are never faulted in, so a generous pool costs
    // address space, not memory.
    pages: new SharedArrayBuffer(pageCount * PAGE_SIZE),
  };
  const control = new Int32Array(buffers.control);
  const slots = new Int32Array(buffers.slots);
  const links = new Int32Array(buffers.links);
  // Generations start at a random point so handles of an earlier process never validate here.
  const firstGeneration = (Math.random() * 0x3fffffff) | 0;
  for (let s = 0; s < slotCount; s++) {
    slots[s * SLOT_INTS + GEN] = firstGeneration;
    slots[s * SLOT_INTS + LENGTH] = NONE;
    slots[s * SLOT_INTS + FIRST_PAGE] = s + 1 < slotCount ? s + 1 : NONE;
  }
  for (let p = 0; p < pageCount; p++) links[p] = p + 1 < pageCount ? p + 1 : NONE;
  control[FREE_SLOT] = 0;
  control[FREE_PAGE] = 0;
  return buffers;
}

export class SnapshotStore {
  private readonly control: Int32Array;
  private readonly slots: Int32Array;
  private readonly links: Int32Array;
  private readonly pages: Buffer;
  private readonly slotCount: number;
  private readonly pageCount: number;

  constructor(buffers: SnapshotStoreBuffers) {
    this.control = new Int32Array(buffers.control);
    this.slots = new Int32Array(buffers.slots);
    this.links = new Int32Array(buffers.links);
    this.pages = Buffer.from(buffers.pages);
    this.slotCount = this.slots.length / SLOT_INTS;
    this.pageCount = this.links.length;
  }

  /** Reserves a handle; returns 0 when every slot is in use (the caller then serves unbacked). */
  open(): number {
    this.lock();
    try {
      const slot = this.control[FREE_SLOT]!;
      if (slot === NONE) return 0;
      const base = slot * SLOT_INTS;
      this.control[FREE_SLOT] = this.slots[base + FIRST_PAGE]!;
      const gen = (this.slots[base + GEN]! + 1) & 0x3fffffff;
      this.slots[base + GEN] = gen;
      this.slots[base + LENGTH] = NONE;
      this.slots[base + FIRST_PAGE] = NONE;
      this.slots[base + STATE] = 1;
      this.control[OPEN_COUNT]!++;
      return gen * this.slotCount + slot + 1;
    } finally {
      this.unlock();
    }
  }

  /**
   * Replaces the handle's snapshot. Returns false if the handle is unknown or the page pool is
   * exhausted (the old snapshot is dropped either way, so no stale bytes are served).
   */
  put(fh: number, content: Buffer): boolean {
    this.lock();
    try {
      const base = this.slotBase(fh);
      if (base < 0) return false;
      this.freeChain(this.slots[base + FIRST_PAGE]!);
      this.slots[base + FIRST_PAGE] = NONE;
      this.slots[base + LENGTH] = NONE;
      const needed = Math.ceil(content.length / PAGE_SIZE);
      const first = this.allocChain(needed);
      if (first === NONE && needed > 0) return false;
      let page = first;
      for (let pos = 0; pos < content.length; pos += PAGE_SIZE) {
        content.copy(this.pages, page * PAGE_SIZE, pos, Math.min(pos + PAGE_SIZE, content.length));
        page = this.links[page]!;
      }
      this.slots[base + FIRST_PAGE] = first;
      this.slots[base + LENGTH] = content.length;
      return true;
    } finally {
      this.unlock();
    }
  }

  /**
   * Copies up to `size` bytes from `offset` of the handle's snapshot. Returns null if the handle
   * is unknown or has no snapshot yet; an empty buffer at or past the end.
   */
  read(fh: number, offset: number, size: number): Buffer | null {
    this.lock();
    try {
      const base = this.slotBase(fh);
      if (base < 0) return null;
      const length = this.slots[base + LENGTH]!;
      if (length < 0) return null;
      const end = Math.min(length, offset + size);
      if (offset >= end) return Buffer.alloc(0);
      const out = Buffer.allocUnsafe(end - offset);
      let page = this.slots[base + FIRST_PAGE]!;
      for (let skip = Math.floor(offset / PAGE_SIZE); skip > 0; skip--) page = this.links[page]!;
      let pos = offset;
      while (pos < end) {
        const inPage = pos % PAGE_SIZE;
        const chunk = Math.min(PAGE_SIZE - inPage, end - pos);
        this.pages.copy(out, pos - offset, page * PAGE_SIZE + inPage, page * PAGE_SIZE + inPage + chunk);
        pos += chunk;
        page = this.links[page]!;
      }
      return out;
    } finally {
      this.unlock();
    }
  }

  /** Frees the handle's slot and pages; unknown handles are ignored. */
  release(fh: number): void {
    this.lock();
    try {
      const base = this.slotBase(fh);
      if (base < 0) return;
      this.freeChain(this.slots[base + FIRST_PAGE]!);
      this.slots[base + FIRST_PAGE] = this.control[FREE_SLOT]!;
      this.slots[base + LENGTH] = NONE;
      this.slots[base + STATE] = 0;
      this.control[FREE_SLOT] = base / SLOT_INTS;
      this.control[OPEN_COUNT]!--;
    } finally {
      this.unlock();
    }
  }

  stats(): SnapshotStoreStats {
    return {
      openHandles: Atomics.load(this.control, OPEN_COUNT),
      usedPages: Atomics.load(this.control, USED_PAGES),
      pageCount: this.pageCount,
      slotCount: this.slotCount,
    };
  }

  private slotBase(fh: number): number {
    if (!Number.isSafeInteger(fh) || fh <= 0) return -1;
    const slot = (fh - 1) % this.slotCount;
    const gen = Math.floor((fh - 1) / this.slotCount);
    const base = slot * SLOT_INTS;
    if (this.slots[base + STATE] !== 1 || this.slots[base + GEN] !== gen) return -1;
    return base;
  }

  private allocChain(count: number): number {
    if (count === 0) return NONE;
    if (this.control[USED_PAGES]! + count > this.pageCount) return NONE;
    const first = this.control[FREE_PAGE]!;
    let last = first;
    for (let i = 1; i < count; i++) last = this.links[last]!;
    this.control[FREE_PAGE] = this.links[last]!;
    this.links[last] = NONE;
    this.control[USED_PAGES]! += count;
    return first;
  }

  private freeChain(first: number): void {
    if (first === NONE) return;
    let last = first;
    let count = 1;
    while (this.links[last] !== NONE) {
      last = this.links[last]!;
      count++;
    }
    this.links[last] = this.control[FREE_PAGE]!;
    this.control[FREE_PAGE] = first;
    this.control[USED_PAGES]! -= count;
  }

  private lock(): void {
    // Spin briefly (critical sections are a few hundred nanoseconds), then sleep on the futex.
    for (let spins = 0; ; spins++) {
      if (Atomics.compareExchange(this.control, LOCK, 0, 1) === 0) return;
      if (spins > 64) Atomics.wait(this.control, LOCK, 1, 1);
    }
  }

  private unlock(): void {
    Atomics.store(this.control, LOCK, 0);
    Atomics.notify(this.control, LOCK, 1);
  }
}
