/**
 * The one notification the syscall thread is answering, kept in a file whose descriptor the
 * supervisor holds and passes to every serving process, so that after a kill -9 mid-answer the
 * next serving process knows which call may still be waiting (see notify-loop.ts); the kernel
 * says whether it is (NOTIF_ID_VALID).
 *
 * The file is mapped shared and NOTIF_RECV writes the notification straight into the mapping.
 * That closes the window a separate write after the receive would leave open: a serving process
 * killed between taking a notification and recording it would leave the caller blocked for good,
 * since the kernel hands each notification out once. With the kernel writing the record itself,
 * a notification is recorded the moment it is taken. Marking which listener is being received on
 * is a store into the mapping, so a notification costs no system call for its record at all.
 *
 * Layout: i32 listener fd in the supervisor (stored before every receive), 4 bytes unused, then
 * the kernel's struct seccomp_notif (NOTIF_SIZE bytes; pid 0 = nothing taken).
 */
import { ftruncateSync } from 'node:fs';
import { mapShared } from '../native/libc.js';
import { decodeNotification, type Notification, NOTIF_SIZE } from './seccomp-abi.js';

const NOTIF_OFFSET = 8;
/** One page: the mapping cannot be smaller, and the file is sized to it. */
const FILE_SIZE = 4096;

/** Gives a new record file its size (a mapping past the end of a file faults). */
export function sizeInflightFile(fd: number): void {
  ftruncateSync(fd, FILE_SIZE);
}

export class InflightRecord {
  private readonly map: Buffer;
  /** Where NOTIF_RECV writes: pass it as the ioctl's buffer. */
  readonly notification: Buffer;

  constructor(fd: number) {
    this.map = mapShared(fd, FILE_SIZE);
    this.notification = this.map.subarray(NOTIF_OFFSET, NOTIF_OFFSET + NOTIF_SIZE);
  }

  /**
   * Prepares a receive on the listener the supervisor knows as `holderFd`: NOTIF_RECV wants a
   * zeroed buffer, and a zero pid also says "nothing taken" should the receive fail or not happen.
   */
  beforeReceive(holderFd: number): void {
    this.notification.fill(0);
    this.map.writeInt32LE(holderFd, 0);
  }

  /** Marks the record answered (after a successor dealt with it). */
  end(): void {
    this.notification.fill(0);
  }

  /**
   * After a takeover the listeners have other descriptor numbers in the new supervisor: the
   * record must name the one the successor will look for. `renumbered` maps old to new.
   */
  renumber(renumbered: ReadonlyMap<number, number>): void {
    const next = renumbered.get(this.map.readInt32LE(0));
    if (next !== undefined) this.map.writeInt32LE(next, 0);
  }

  /** The notification a previous serving process took (answered or not: ask the kernel), or null. */
  read(): { holderFd: number; notification: Notification } | null {
    const notification = decodeNotification(this.notification);
    if (notification.pid === 0) return null;
    return { holderFd: this.map.readInt32LE(0), notification };
  }
}
