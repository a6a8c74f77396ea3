/**
 * Builds ASCII output directly into bytes, for the views on the hot path (meminfo, stat): no
 * intermediate strings, no per-line allocations. One writer per thread (module state is
 * per-worker-thread in Node), reused for every render.
 */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private len = 0;
  private readonly digits = new Uint8Array(24);

  reset(): this {
    this.len = 0;
    return this;
  }

  get length(): number {
    return this.len;
  }

  bytes(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    const buf = this.buf;
    if (n <= 96) {
      // short lines: a plain loop beats creating a subarray view per copy
      let at = this.len;
      for (let i = start; i < end; i++) buf[at++] = src[i]!;
    } else {
      buf.set(src.subarray(start, end), this.len);
    }
    this.len += n;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.len++] = c;
  }

  ascii(s: string): void {
    this.ensure(s.length);
    if (s.length > 32) {
      this.len += this.buf.write(s, this.len, 'latin1');
      return;
    }
    for (let i = 0; i < s.length; i++) this.buf[this.len++] = s.charCodeAt(i);
  }

  /** A non-negative integer (fractions truncated), right-aligned in `width` columns. */
  uint(value: number, width = 0): void {
    let v = value > 0 && Number.isFinite(value) ? Math.floor(value) : 0;
    let n = 0;
    do {
      const q = Math.floor(v / 10);
      this.digits[n++] = 0x30 + (v - q * 10);
      v = q;
    } while (v > 0 && n < 24);
    this.ensure(Math.max(n, width));
    for (let pad = width - n; pad > 0; pad--) this.buf[this.len++] = 0x20;
    while (n > 0) this.buf[this.len++] = this.digits[--n]!;
  }

  /** A copy of what was written, in memory the writer will never touch again. */
  toBuffer(): Buffer {
    return outputCopy(this.buf, this.len);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
}

/** A private copy of `src[0, len)` (Node's allocator pools small buffers, so this is cheap). */
export function outputCopy(src: Uint8Array, len: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  out.set(src.subarray(0, len));
  return out;
}
