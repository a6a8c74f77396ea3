/**
 * A fixed-size hash table in SharedArrayBuffers, keyed by strings (cgroup paths), with a block of
 * float64 payload per entry. It holds the per-container state that every FUSE worker thread and
 * the main thread must agree on (a reader's successive reads can land on different threads).
 *
 * Concurrency: lookups are lock-free (an entry's key is written before it is published); inserts
 * and removals take the table lock; payload updates take the entry's lock. Locks are spin locks
 * held for a few microseconds; a lock held for longer than `staleLockMs` is taken over, so a
 * thread that died holding one cannot stall FUSE requests.
 */
export interface SharedTableBuffers {
  readonly control: SharedArrayBuffer;
  readonly keys: SharedArrayBuffer;
  readonly payload: SharedArrayBuffer;
  readonly slots: number;
  readonly keyChars: number;
  readonly payloadDoubles: number;
}

// Per-slot Int32 control words.
const STATE = 0;
const LOCK = 1;
const HASH = 2;
const KEYLEN = 3;
const GENERATION = 4;
const WORDS = 5;
// Table-wide words after the slots.
const TABLE_LOCK = 0;
const LIVE_COUNT = 1;
const TABLE_WORDS = 2;

const EMPTY = 0;
const LIVE = 1;
const TOMBSTONE = 2;

const staleLockMs = 200;

export function allocateSharedTable(
  slots: number,
  keyChars: number,
  payloadDoubles: number,
): SharedTableBuffers {
  return {
    control: new SharedArrayBuffer(4 * (slots * WORDS + TABLE_WORDS)),
    keys: new SharedArrayBuffer(2 * slots * keyChars),
    payload: new SharedArrayBuffer(8 * slots * payloadDoubles),
    slots,
    keyChars,
    payloadDoubles,
  };
}

/** A reference to a live entry: its slot and the generation it was found with. */
export interface EntryRef {
  readonly slot: number;
  readonly generation: number;
}

export class SharedTable {
  readonly slots: number;
  readonly keyChars: number;
  readonly payloadDoubles: number;
  /** The payload of every slot; slot s owns [s * payloadDoubles, (s + 1) * payloadDoubles). */
  readonly payload: Float64Array;
  private readonly control: Int32Array;
  private readonly keys: Uint16Array;
  private readonly tableBase: number;
  private readonly sleeper = new Int32Array(new SharedArrayBuffer(4));

  constructor(buffers: SharedTableBuffers) {
    this.slots = buffers.slots;
    this.keyChars = buffers.keyChars;
    this.payloadDoubles = buffers.payloadDoubles;
    this.control = new Int32Array(buffers.control);
    this.keys = new Uint16Array(buffers.keys);
    this.payload = new Float64Array(buffers.payload);
    this.tableBase = this.slots * WORDS;
  }

  /** The live entry for `key`, or null. Lock-free. */
  find(key: string): EntryRef | null {
    if (key.length > this.keyChars) return null;
    const hash = hashString(key);
    for (
      let probe = 0, slot = hash % this.slots;
      probe < this.slots;
      probe++, slot = (slot + 1) % this.slots
    ) {
      const base = slot * WORDS;
      const state = Atomics.load(this.control, base + STATE);
      if (state === EMPTY) return null;
      if (state === LIVE && this.control[base + HASH] === hash && this.keyEquals(slot, key)) {
        const generation = Atomics.load(this.control, base + GENERATION);
        // Re-check: a removal between the reads would have bumped the generation.
        if (Atomics.load(this.control, base + STATE) === LIVE) return { slot, generation };
      }
    }
    return null;
  }

  /**
   * The live entry for `key`, created (payload zeroed, then `init` run under the entry lock) when
   * missing. Null when the table is full or the key too long.
   */
  findOrInsert(key: string, init?: (slot: number) => void): EntryRef | null {
    const found = this.find(key);
    if (found !== null || key.length > this.keyChars) return found;
    this.lockWord(this.tableBase + TABLE_LOCK);
    try {
      const again = this.find(key);
      if (again !== null) return again;
      const hash = hashString(key);
      let target = -1;
      for (
        let probe = 0, slot = hash % this.slots;
        probe < this.slots;
        probe++, slot = (slot + 1) % this.slots
      ) {
        const state = this.control[slot * WORDS + STATE];
        if (state !== LIVE && target < 0) target = slot;
        if (state === EMPTY) break;
      }
      if (target < 0) return null;
      const base = target * WORDS;
      for (let i = 0; i < key.length; i++) this.keys[target * this.keyChars + i] = key.charCodeAt(i);
      this.control[base + HASH] = hash;
      this.control[base + KEYLEN] = key.length;
      this.payload.fill(0, target * this.payloadDoubles, (target + 1) * this.payloadDoubles);
      const generation = Atomics.add(this.control, base + GENERATION, 1) + 1;
      if (init) init(target);
      Atomics.store(this.control, base + STATE, LIVE);
      Atomics.add(this.control, this.tableBase + LIVE_COUNT, 1);
      return { slot: target, generation };
    } finally {
      this.unlockWord(this.tableBase + TABLE_LOCK);
    }
  }

  /** True while `ref` still names the entry it was found as. */
  isCurrent(ref: EntryRef): boolean {
    const base = ref.slot * WORDS;
    return (
      Atomics.load(this.control, base + STATE) === LIVE &&
      Atomics.load(this.control, base + GENERATION) === ref.generation
    );
  }

  /** Removes the entry if `ref` is still current. */
  remove(ref: EntryRef): void {
    this.lockWord(this.tableBase + TABLE_LOCK);
    try {
      if (!this.isCurrent(ref)) return;
      const base = ref.slot * WORDS;
      this.lockWord(base + LOCK);
      Atomics.add(this.control, base + GENERATION, 1);
      Atomics.store(this.control, base + STATE, TOMBSTONE);
      Atomics.sub(this.control, this.tableBase + LIVE_COUNT, 1);
      this.unlockWord(base + LOCK);
    } finally {
      this.unlockWord(this.tableBase + TABLE_LOCK);
    }
  }

  /** Runs `fn` holding the entry's lock; returns null (without running it) if the entry is gone. */
  withEntry<T>(ref: EntryRef, fn: (slot: number) => T): T | null {
    const word = ref.slot * WORDS + LOCK;
    this.lockWord(word);
    try {
      return this.isCurrent(ref) ? fn(ref.slot) : null;
    } finally {
      this.unlockWord(word);
    }
  }

  /** Every live entry (a snapshot; entries may come and go meanwhile). */
  * entries(): Generator<{ ref: EntryRef; key: string }> {
    for (let slot = 0; slot < this.slots; slot++) {
      const base = slot * WORDS;
      if (Atomics.load(this.control, base + STATE) !== LIVE) continue;
      const generation = Atomics.load(this.control, base + GENERATION);
      const key = this.keyAt(slot);
      if (Atomics.load(this.control, base + GENERATION) === generation)
        yield { ref: { slot, generation }, key };
    }
  }

  get liveCount(): number {
    return Atomics.load(this.control, this.tableBase + LIVE_COUNT);
  }

  keyAt(slot: number): string {
    const len = this.control[slot * WORDS + KEYLEN]!;
    const start = slot * this.keyChars;
    return String.fromCharCode(...this.keys.subarray(start, start + len));
  }

  private keyEquals(slot: number, key: string): boolean {
    if (this.control[slot * WORDS + KEYLEN] !== key.length) return false;
    const start = slot * this.keyChars;
    for (let i = 0; i < key.length; i++) if (this.keys[start + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  private lockWord(index: number): void {
    if (Atomics.compareExchange(this.control, index, 0, 1) === 0) return;
    const started = Date.now();
    for (let spins = 0; ; spins++) {
      if (Atomics.compareExchange(this.control, index, 0, 1) === 0) return;
      if (spins > 100) {
        // Sleep 50 µs at a time instead of burning the CPU the holder may need.
        Atomics.wait(this.sleeper, 0, 0, 0.05);
        if (Date.now() - started > staleLockMs) {
          // The holder died or hung: take the lock over rather than stall a FUSE request.
          Atomics.store(this.control, index, 1);
          return;
        }
      }
    }
  }

  private unlockWord(index: number): void {
    Atomics.store(this.control, index, 0);
  }
}

/** FNV-1a over UTF-16 code units, as an unsigned 31-bit number (a valid slot modulus input). */
export function hashString(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return (hash >>> 1) & 0x7fffffff;
}
