/**
 * Allocation-free parsing of "key value" lines (memory.stat, cpu.stat, cpuacct.stat...): each
 * wanted key maps to a slot of a Float64Array. Keys are hashed while scanning and confirmed
 * byte by byte, so the hot path builds no strings.
 */
export class KeyValueSchema {
  private readonly slotByHash = new Map<number, number>();
  private readonly keyBytes: Buffer[] = [];
  /** Bytes some wanted key starts with: other lines are skipped without hashing. */
  private readonly firstBytes = new Uint8Array(256);

  /** `keys[i]` is stored in slot `slots[i]` (defaults to i); several keys may share a slot. */
  constructor(
    keys: readonly string[],
    private readonly slots: readonly number[] = keys.map((_, i) => i),
    readonly size = Math.max(0, ...slots) + 1,
  ) {
    keys.forEach((key, i) => {
      const bytes = Buffer.from(key, 'latin1');
      const hash = hashBytes(bytes, 0, bytes.length);
      if (this.slotByHash.has(hash)) throw new Error(`key hash collision: ${key}`);
      this.slotByHash.set(hash, i);
      this.keyBytes.push(bytes);
      if (bytes.length > 0) this.firstBytes[bytes[0]!] = 1;
    });
  }

  /**
   * Fills `out` (length >= size) from `buf[0, len)`: slots whose key is absent become NaN.
   * A value that is not a plain integer (e.g. "max") is stored as +Infinity.
   */
  parse(buf: Buffer, len: number, out: Float64Array): void {
    out.fill(Number.NaN, 0, this.size);
    let i = 0;
    while (i < len) {
      if (this.firstBytes[buf[i]!] === 0) {
        const nl = buf.indexOf(0x0a, i);
        if (nl < 0) break;
        i = nl + 1;
        continue;
      }
      // key: up to the first space or tab
      const keyStart = i;
      let hash = 0x811c9dc5;
      while (i < len) {
        const c = buf[i]!;
        if (c === 0x20 || c === 0x09 || c === 0x0a) break;
        hash = Math.imul(hash ^ c, 0x01000193);
        i++;
      }
      const keyEnd = i;
      const index = this.slotByHash.get(hash >>> 0);
      if (index === undefined || !this.sameKey(index, buf, keyStart, keyEnd)) {
        while (i < len && buf[i] !== 0x0a) i++;
        i++;
        continue;
      }
      while (i < len && (buf[i] === 0x20 || buf[i] === 0x09)) i++;
      let value = 0;
      let digits = 0;
      let negative = false;
      if (buf[i] === 0x2d) {
        negative = true;
        i++;
      }
      while (i < len) {
        const d = buf[i]! - 0x30;
        if (d < 0 || d > 9) break;
        value = value * 10 + d;
        digits++;
        i++;
      }
      const rest = i < len ? buf[i] : 0x0a;
      out[this.slots[index]!] =
        digits > 0 && (rest === 0x0a || rest === 0x20)
          ? negative
            ? -value
            : value
          : Number.POSITIVE_INFINITY;
      while (i < len && buf[i] !== 0x0a) i++;
      i++;
    }
  }

  private sameKey(index: number, buf: Buffer, start: number, end: number): boolean {
    const key = this.keyBytes[index]!;
    if (key.length !== end - start) return false;
    for (let k = 0; k < key.length; k++) if (key[k] !== buf[start + k]) return false;
    return true;
  }
}

/** FNV-1a, the same hash parse() computes incrementally. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ buf[i]!, 0x01000193);
  return hash >>> 0;
}

/**
 * Parses a single integer file (memory.current, cpuacct.usage...). "max" (cgroup v2's "no limit")
 * gives +Infinity; an empty or malformed file gives NaN.
 */
export function parseSingleNumber(buf: Buffer, len: number): number {
  let i = 0;
  while (i < len && (buf[i] === 0x20 || buf[i] === 0x0a)) i++;
  if (i + 3 <= len && buf[i] === 0x6d && buf[i + 1] === 0x61 && buf[i + 2] === 0x78)
    return Number.POSITIVE_INFINITY;
  let value = 0;
  let digits = 0;
  let negative = false;
  if (buf[i] === 0x2d) {
    negative = true;
    i++;
  }
  while (i < len) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
    digits++;
    i++;
  }
  if (digits === 0) return Number.NaN;
  return negative ? -value : value;
}
