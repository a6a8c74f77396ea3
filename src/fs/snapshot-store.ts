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
 *
 * The pool is bounded and shared fairly: a new snapshot always gets pages, by evicting the oldest
 * snapshots (least recently taken, whoever holds them) when the pool is full, and a new handle
 * always gets a slot, by taking the slot of the oldest handle when every slot is in use. A handle
 * whose snapshot was evicted keeps its slot and remembers how many bytes of the snapshot it was
 * served and their checksum, so its next read can tell whether a fresh rendering continues what
 * the reader already has (see ViewFilesystem.read); a handle whose slot was taken is unknown.
 */

const PAGE_SIZE = 4096;
const NONE = -1;

// control[] fields
const LOCK = 0;
const FREE_SLOT = 1;
const FREE_PAGE = 2;
const OPEN_COUNT = 3;
const USED_PAGES = 4;
const OLDEST = 5; // head of the open slots in the order their snapshots were taken
const NEWEST = 6; // its tail
const NEVER_USED = 7; // slots from here on were never handed out (and never touched)
const FIRST_GENERATION = 8;
const EVICTIONS = 9; // snapshots evicted to make room
const TAKEN_SLOTS = 10; // slots taken from the oldest open handle
const CONTROL_INTS = 16;

// slot record fields (8 x int32)
const SLOT_INTS = 8;
const GEN = 0;
const LENGTH = 1; // NONE while no snapshot has been taken, EVICTED after eviction
const FIRST_PAGE = 2; // also the free-list link while the slot is free
const STATE = 3; // 0 free, 1 open
const PREV = 4; // neighbours in the age list (open slots only)
const NEXT = 5;
const SERVED = 6; // bytes of the snapshot served so far (from offset 0 up to the furthest read)
const CHECKSUM = 7; // after eviction: FNV-1a of those bytes

const EVICTED = -2;

/** FNV-1a (32 bits) of some bytes: what a handle whose snapshot was evicted remembers of it. */
export function checksum(bytes: Uint8Array, start = 0, end = bytes.length, hash = 0x811c9dc5): number {
  let h = hash;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h | 0;
}

/** What a handle whose snapshot was evicted knows of it. */
export interface EvictedSnapshot {
  /** Bytes of it the reader was served, from offset 0. */
  readonly served: number;
  /** checksum() of those bytes. */
  readonly checksum: number;
}

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
  /** Snapshots evicted to make room for newer ones, since start. */
  evictions: number;
  /** Slots taken from the oldest open handle for a new one, since start. */
  takenSlots: number;
}

/**
 * Allocates the shared memory once (on the serving process's main thread) for all workers.
 * 131,072 slots of 32 bytes and 16,384 pages of 4 KiB (64 MiB): untouched parts of a
 * SharedArrayBuffer are never faulted in, and slots are touched only once handed out, so a
 * generous pool costs address space, not memory.
 */
export function createSnapshotStoreBuffers(slotCount = 131_072, pageCount = 16_384): SnapshotStoreBuffers {
  const buffers: SnapshotStoreBuffers = {
    control: new SharedArrayBuffer(CONTROL_INTS * 4),
    slots: new SharedArrayBuffer(slotCount * SLOT_INTS * 4),
    links: new SharedArrayBuffer(pageCount * 4),
    pages: new SharedArrayBuffer(pageCount * PAGE_SIZE),
  };
  const control = new Int32Array(buffers.control);
  const links = new Int32Array(buffers.links);
  for (let p = 0; p < pageCount; p++) links[p] = p + 1 < pageCount ? p + 1 : NONE;
  // Generations start at a random point so handles of an earlier process never validate here.
  control[FIRST_GENERATION] = (Math.random() * 0x3fffffff) | 0;
  control[FREE_SLOT] = NONE;
  control[FREE_PAGE] = 0;
  control[OLDEST] = NONE;
  control[NEWEST] = NONE;
  control[NEVER_USED] = 0;
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

  /**
   * Reserves a handle. When every slot is in use, the slot of the oldest handle (the one whose
   * snapshot was taken longest ago) is taken: that handle becomes unknown.
   */
  open(): number {
    this.lock();
    try {
      let slot = this.control[FREE_SLOT]!;
      let base: number;
      if (slot !== NONE) {
        base = slot * SLOT_INTS;
        this.control[FREE_SLOT] = this.slots[base + FIRST_PAGE]!;
        this.control[OPEN_COUNT]!++;
      } else if (this.control[NEVER_USED]! < this.slotCount) {
        slot = this.control[NEVER_USED]!++;
        base = slot * SLOT_INTS;
        this.slots[base + GEN] = this.control[FIRST_GENERATION]!;
        this.control[OPEN_COUNT]!++;
      } else {
        slot = this.control[OLDEST]!;
        if (slot === NONE) return 0; // no slots at all
        base = slot * SLOT_INTS;
        this.unlink(base);
        this.freeChain(this.slots[base + FIRST_PAGE]!);
        this.control[TAKEN_SLOTS]!++;
      }
      const gen = (this.slots[base + GEN]! + 1) & 0x3fffffff;
      this.slots[base + GEN] = gen;
      this.slots[base + LENGTH] = NONE;
      this.slots[base + FIRST_PAGE] = NONE;
      this.slots[base + STATE] = 1;
      this.slots[base + SERVED] = 0;
      this.slots[base + CHECKSUM] = 0;
      this.append(base);
      return gen * this.slotCount + slot + 1;
    } finally {
      this.unlock();
    }
  }

  /**
   * Replaces the handle's snapshot; `served` is how many of its bytes (from offset 0) the reader
   * is being given with it. When the pool is full, the oldest snapshots of any handle are evicted
   * to make room. Returns false if the handle is unknown or the content is larger than the whole
   * pool (the old snapshot is dropped either way, so no stale bytes are served).
   */
  put(fh: number, content: Buffer, served = 0): boolean {
    this.lock();
    try {
      const base = this.slotBase(fh);
      if (base < 0) return false;
      this.freeChain(this.slots[base + FIRST_PAGE]!);
      this.slots[base + FIRST_PAGE] = NONE;
      this.slots[base + LENGTH] = NONE;
      this.slots[base + SERVED] = 0;
      const needed = Math.ceil(content.length / PAGE_SIZE);
      if (needed > this.pageCount) return false;
      // The newest snapshot from now on: the eviction below never picks it.
      this.unlink(base);
      this.append(base);
      while (this.control[USED_PAGES]! + needed > this.pageCount) this.evictOldest();
      const first = this.allocChain(needed);
      let page = first;
      for (let pos = 0; pos < content.length; pos += PAGE_SIZE) {
        content.copy(this.pages, page * PAGE_SIZE, pos, Math.min(pos + PAGE_SIZE, content.length));
        page = this.links[page]!;
      }
      this.slots[base + FIRST_PAGE] = first;
      this.slots[base + LENGTH] = content.length;
      this.slots[base + SERVED] = Math.min(Math.max(0, served), content.length);
      return true;
    } finally {
      this.unlock();
    }
  }

  /** For a handle whose snapshot was evicted: what it was served of it; null for any other handle. */
  evicted(fh: number): EvictedSnapshot | null {
    this.lock();
    try {
      const base = this.slotBase(fh);
      if (base < 0 || this.slots[base + LENGTH] !== EVICTED) return null;
      return { served: this.slots[base + SERVED]!, checksum: this.slots[base + CHECKSUM]! };
    } finally {
      this.unlock();
    }
  }

  /**
   * Copies up to `size` bytes from `offset` of the handle's snapshot. Returns null if the handle
   * is unknown or has no snapshot (not yet, or evicted); an empty buffer at or past the end.
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
      if (end > this.slots[base + SERVED]!) this.slots[base + SERVED] = end;
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
      this.unlink(base);
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
      evictions: Atomics.load(this.control, EVICTIONS),
      takenSlots: Atomics.load(this.control, TAKEN_SLOTS),
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

  /**
   * Evicts the oldest snapshot that holds pages: the handle keeps its slot and remembers how
   * much of the snapshot it was served, and its checksum.
   */
  private evictOldest(): void {
    let slot = this.control[OLDEST]!;
    while (slot !== NONE && this.slots[slot * SLOT_INTS + FIRST_PAGE] === NONE) slot = this.slots[slot * SLOT_INTS + NEXT]!;
    if (slot === NONE) throw new Error('snapshot store: pages in use but no snapshot holds any');
    const base = slot * SLOT_INTS;
    const served = this.slots[base + SERVED]!;
    let hash = 0x811c9dc5;
    let page = this.slots[base + FIRST_PAGE]!;
    for (let pos = 0; pos < served; pos += PAGE_SIZE) {
      hash = checksum(this.pages, page * PAGE_SIZE, page * PAGE_SIZE + Math.min(PAGE_SIZE, served - pos), hash);
      page = this.links[page]!;
    }
    this.freeChain(this.slots[base + FIRST_PAGE]!);
    this.slots[base + FIRST_PAGE] = NONE;
    this.slots[base + LENGTH] = EVICTED;
    this.slots[base + CHECKSUM] = hash;
    this.control[EVICTIONS]!++;
  }

  /** Appends an open slot to the age list as its newest. */
  private append(base: number): void {
    const slot = base / SLOT_INTS;
    const newest = this.control[NEWEST]!;
    this.slots[base + PREV] = newest;
    this.slots[base + NEXT] = NONE;
    if (newest === NONE) this.control[OLDEST] = slot;
    else this.slots[newest * SLOT_INTS + NEXT] = slot;
    this.control[NEWEST] = slot;
  }

  private unlink(base: number): void {
    const prev = this.slots[base + PREV]!;
    const next = this.slots[base + NEXT]!;
    if (prev === NONE) this.control[OLDEST] = next;
    else this.slots[prev * SLOT_INTS + NEXT] = next;
    if (next === NONE) this.control[NEWEST] = prev;
    else this.slots[next * SLOT_INTS + PREV] = prev;
    this.slots[base + PREV] = NONE;
    this.slots[base + NEXT] = NONE;
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
