/**
 * The one notification the syscall thread is answering, kept in a file whose descriptor the
 * supervisor holds and passes to every serving process, so that after a kill -9 mid-answer the
 * next serving process knows which call may still be waiting (see notify-loop.ts); the kernel
 * says whether it is (NOTIF_ID_VALID). One pwrite per notification; the file is unlinked at
 * creation, so nothing is left on disk.
 *
 * Layout (32 bytes): u32 state (1 = answering), i32 listener fd in the supervisor, u64 id,
 * u32 pid, u32 arch, u64 address of the caller's struct.
 */
import { readSync, writeSync } from 'node:fs';
import type { Notification } from './seccomp-abi.js';
import { SYSINFO_NR } from './seccomp-abi.js';

const SIZE = 32;

export class InflightRecord {
  private readonly buf = Buffer.alloc(SIZE);
  private readonly idle = Buffer.alloc(4);

  constructor(private readonly fd: number) {}

  begin(holderFd: number, n: Notification): void {
    const b = this.buf;
    b.writeUInt32LE(1, 0);
    b.writeInt32LE(holderFd, 4);
    b.writeBigUInt64LE(n.id, 8);
    b.writeUInt32LE(n.pid, 16);
    b.writeUInt32LE(n.arch, 20);
    b.writeBigUInt64LE(n.arg0, 24);
    writeSync(this.fd, b, 0, SIZE, 0);
  }

  /** Marks the record answered (after a successor dealt with it). */
  end(): void {
    writeSync(this.fd, this.idle, 0, 4, 0);
  }

  /** The notification left unanswered, or null. */
  read(): { holderFd: number; notification: Notification } | null {
    const b = Buffer.alloc(SIZE);
    if (readSync(this.fd, b, 0, SIZE, 0) < SIZE || b.readUInt32LE(0) !== 1) return null;
    const arch = b.readUInt32LE(20);
    return {
      holderFd: b.readInt32LE(4),
      notification: {
        id: b.readBigUInt64LE(8),
        pid: b.readUInt32LE(16),
        arch,
        // Only sysinfo is ever recorded (the filter sends nothing else).
        nr: arch === 0xc00000b7 ? SYSINFO_NR.arm64 : SYSINFO_NR.x64,
        arg0: b.readBigUInt64LE(24),
      },
    };
  }
}
