import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/**
 * Keeps files open and re-reads them with pread at offset 0. procfs, sysfs and cgroupfs regenerate
 * a file's content on every read at offset 0, so one open fd per file serves every later request
 * and saves the open/close pair (about half the cost of a small read).
 *
 * One instance per thread: reads land in a shared scratch buffer that the caller must consume
 * (parse or copy) before the next read.
 */
export class PreadFiles {
  private readonly fds = new Map<string, number>();
  /**
   * Files found missing, with when: a failed open costs a thrown exception (~20 µs in Node), and
   * missing files are common (v1 has no PSI files, blk-mq kernels no CFQ blkio files...).
   */
  private readonly missing = new Map<string, number>();
  private scratch: Buffer;

  constructor(
    private readonly maxOpen = 1024,
    initialBufferSize = 64 * 1024,
    /** How long a missing file is believed missing (ms). */
    private readonly missingTtlMs = 1000,
  ) {
    this.scratch = Buffer.allocUnsafe(initialBufferSize);
  }

  /** The buffer the last successful read() filled. */
  get buffer(): Buffer {
    return this.scratch;
  }

  /**
   * Reads the whole file into `buffer` and returns its length, or -1 when the file cannot be read
   * (missing, removed cgroup, exited process, permission...). Never throws.
   */
  read(path: string): number {
    let fd = this.fds.get(path);
    let fresh = false;
    if (fd === undefined) {
      fd = this.open(path);
      if (fd < 0) return -1;
      fresh = true;
    }
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, this.scratch, 0, this.scratch.length, 0);
      } catch {
        // ENODEV: the cgroup was removed (maybe recreated at the same path); ESRCH: the process
        // exited; anything else: the file is unusable. Retry once through a fresh open.
        this.close(path);
        if (fresh) return -1;
        fd = this.open(path);
        if (fd < 0) return -1;
        fresh = true;
        continue;
      }
      if (n < this.scratch.length) return n;
      // The file did not fit: grow and read again from offset 0 so the content stays one snapshot.
      this.scratch = Buffer.allocUnsafe(this.scratch.length * 2);
    }
  }

  /** Reads the file as latin1 text (procfs and cgroupfs are ASCII), or null when unreadable. */
  readText(path: string): string | null {
    const n = this.read(path);
    return n < 0 ? null : this.scratch.toString('latin1', 0, n);
  }

  /** Reads the file and returns a private copy of its bytes, or null when unreadable. */
  readCopy(path: string): Buffer | null {
    const n = this.read(path);
    if (n < 0) return null;
    const out = Buffer.allocUnsafe(n);
    this.scratch.copy(out, 0, 0, n);
    return out;
  }

  /** Forgets (closes) one file, e.g. when the object it belongs to is known to be gone. */
  close(path: string): void {
    const fd = this.fds.get(path);
    if (fd === undefined) return;
    this.fds.delete(path);
    try {
      closeSync(fd);
    } catch {
      // already closed or invalid: nothing to release
    }
  }

  closeAll(): void {
    for (const path of [...this.fds.keys()]) this.close(path);
  }

  get openCount(): number {
    return this.fds.size;
  }

  private open(path: string): number {
    const missingAt = this.missing.get(path);
    if (missingAt !== undefined) {
      if (performance.now() - missingAt < this.missingTtlMs) return -1;
      this.missing.delete(path);
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (this.missing.size >= 4096) this.missing.clear();
        this.missing.set(path, performance.now());
      }
      return -1;
    }
    if (this.fds.size >= this.maxOpen) this.evictOldest();
    this.fds.set(path, fd);
    return fd;
  }

  /** Closes the oldest quarter of the open files (Map iteration order is insertion order). */
  private evictOldest(): void {
    let toClose = Math.max(1, this.maxOpen >> 2);
    for (const path of this.fds.keys()) {
      if (toClose-- <= 0) break;
      this.close(path);
    }
  }
}
