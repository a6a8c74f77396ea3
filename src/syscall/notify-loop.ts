/**
 * The syscall view's thread in the serving process: waits on every seccomp listener at once
 * (poll), takes each `sysinfo` notification, writes the caller's container view into its
 * `struct sysinfo` and lets the call return 0. Synchronous from end to end, like the FUSE request
 * threads, and for the same reason: nothing else runs on this thread, so a blocking wait is free.
 *
 * Listeners arrive as descriptor numbers of the supervisor's process (it holds the originals);
 * this thread copies them with pidfd_getfd. A listener whose processes are all gone reports
 * POLLHUP: its copy is closed and the supervisor is told to close the original.
 *
 * Crash safety: the notification being answered is recorded (listener, id, caller, address) in
 * a file the supervisor holds, by the kernel as it hands the notification over; the next serving
 * process answers it if the kernel still has it waiting (NOTIF_ID_VALID), so a kill -9 at any
 * point between receive and answer costs the caller a short wait.
 */
import { type MessagePort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { createSysinfoViews, type SharedViewState, type SysinfoViews } from '../container/container-views.js';
import { createLogger, type LogLevel } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import {
  closeFd,
  ioctlErrno,
  NativeError,
  nativeArch,
  pidfdGetfd,
  pidfdOpen,
  poll,
  processVmWrite,
} from '../native/libc.js';
import {
  AUDIT_ARCH,
  decodeNotification,
  encodeResponse,
  encodeSysinfo,
  type Notification,
  NOTIF_RESP_SIZE,
  SECCOMP_IOCTL_NOTIF_ID_VALID,
  SECCOMP_IOCTL_NOTIF_RECV,
  SECCOMP_IOCTL_NOTIF_SEND,
  SECCOMP_IOCTL_NOTIF_SET_FLAGS,
  SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
  SECCOMP_USER_NOTIF_FLAG_CONTINUE,
  SYSINFO_NR,
  SYSINFO_SIZE,
} from './seccomp-abi.js';
import { composeSysinfo } from './sysinfo-answer.js';
import { InflightRecord } from './inflight-record.js';
import { SyscallStats } from './syscall-stats.js';

export interface NotifyLoopData {
  view: ViewOptions;
  shared: SharedViewState;
  logLevel: LogLevel;
  /** The process that holds the listeners (the supervisor). */
  holderPid: number;
  /** The in-flight record's descriptor (see InflightRecord). */
  inflightFd: number;
  /** Shared counters read by /metrics. */
  stats: SharedArrayBuffer;
  /** Messages from the serving process's main thread: `{ add: number[] }`. */
  port: MessagePort;
}

/** Messages this thread posts to the main thread. */
export type NotifyLoopMessage = { type: 'ready' } | { type: 'released'; fd: number };

const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const POLLNVAL = 0x20;
/** How often the thread looks for new listeners while no notification arrives. */
const POLL_TIMEOUT_MS = 50;
const EFAULT = 14;

interface Copy {
  /** The listener's number in the holder's process. */
  readonly holderFd: number;
  /** Our copy. */
  readonly fd: number;
}

class NotifyLoop {
  private readonly log;
  private readonly views: SysinfoViews;
  private readonly holderPidfd: number;
  private readonly copies: Copy[] = [];
  private pollfds = Buffer.alloc(0);
  private readonly resp = Buffer.alloc(NOTIF_RESP_SIZE);
  private readonly idBuf = Buffer.alloc(8);
  private readonly flagsBuf = Buffer.alloc(8);
  private readonly sysinfo = Buffer.alloc(SYSINFO_SIZE);
  private readonly arch = nativeArch();
  private readonly inflight: InflightRecord;
  private readonly stats: SyscallStats;

  constructor(private readonly data: NotifyLoopData) {
    this.log = createLogger(data.logLevel, { thread: 'sysinfo' });
    this.views = createSysinfoViews(data.view, data.shared, this.log);
    this.holderPidfd = pidfdOpen(data.holderPid);
    this.inflight = new InflightRecord(data.inflightFd);
    this.stats = new SyscallStats(data.stats);
  }

  run(): never {
    this.takeNewListeners();
    this.post({ type: 'ready' });
    for (;;) {
      const ready = poll(this.pollfds, this.copies.length, POLL_TIMEOUT_MS);
      if (ready > 0) this.serveReady();
      this.takeNewListeners();
    }
  }

  private serveReady(): void {
    // Walk backwards: a released entry is removed in place.
    for (let i = this.copies.length - 1; i >= 0; i--) {
      const revents = this.pollfds.readInt16LE(i * 8 + 6);
      if (revents === 0) continue;
      const copy = this.copies[i]!;
      if (revents & POLLIN) this.receiveOne(copy);
      else if (revents & (POLLHUP | POLLERR | POLLNVAL)) this.release(i);
    }
  }

  private receiveOne(copy: Copy): void {
    // The kernel writes the notification into the in-flight record itself (see inflight-record.ts).
    this.inflight.beforeReceive(copy.holderFd);
    const rc = ioctlErrno(copy.fd, SECCOMP_IOCTL_NOTIF_RECV, this.inflight.notification);
    // ENOENT: the caller was interrupted (killed) before we took it. Nothing to answer.
    if (rc < 0) {
      if (-rc !== 2 && -rc !== 4) this.log.warn({ errno: -rc, fd: copy.holderFd }, 'NOTIF_RECV failed');
      return;
    }
    const n = decodeNotification(this.inflight.notification);
    const started = process.hrtime.bigint();
    // The record is not cleared after the answer: a successor asks the kernel (NOTIF_ID_VALID)
    // whether the recorded call still waits, which saves a store per call.
    this.answer(copy.fd, n);
    this.stats.record(Number(process.hrtime.bigint() - started));
  }

  /**
   * Writes the view into the caller's struct and returns 0, or lets the kernel run the real call
   * when the caller is not one we serve. process_vm_writev honours page protections, so a bad or
   * read-only pointer fails with EFAULT exactly where the kernel's own sysinfo would. The pid is
   * checked against pid reuse on both sides of the write: a caller that is still waiting holds
   * its pid, so a notification valid after the write proves the write reached the caller.
   */
  private answer(fd: number, n: Notification): void {
    if (n.arch !== AUDIT_ARCH[this.arch] || n.nr !== SYSINFO_NR[this.arch]) return this.send(fd, n.id, 'continue');
    const figures = this.views.figures(n.pid);
    if (figures === null) {
      this.stats.continued();
      return this.send(fd, n.id, 'continue');
    }
    const fields = composeSysinfo(figures);
    if (!this.idValid(fd, n.id)) return; // the caller is gone; the kernel dropped its notification
    try {
      processVmWrite(n.pid, n.arg0, encodeSysinfo(fields, this.sysinfo));
    } catch (err) {
      if (err instanceof NativeError && err.code === 'ESRCH') return;
      this.stats.faulted();
      return this.send(fd, n.id, 'efault');
    }
    if (!this.idValid(fd, n.id)) {
      this.log.warn({ pid: n.pid }, 'a sysinfo caller died while its answer was written');
      return;
    }
    this.send(fd, n.id, 'ok');
  }

  private idValid(fd: number, id: bigint): boolean {
    this.idBuf.writeBigUInt64LE(id);
    return ioctlErrno(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, this.idBuf) === 0;
  }

  private send(fd: number, id: bigint, outcome: 'ok' | 'continue' | 'efault'): void {
    encodeResponse(this.resp, id, {
      val: 0,
      error: outcome === 'efault' ? -EFAULT : 0,
      flags: outcome === 'continue' ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0,
    });
    // ENOENT: the caller died meanwhile. Nothing else can go wrong that an answer could fix.
    const rc = ioctlErrno(fd, SECCOMP_IOCTL_NOTIF_SEND, this.resp);
    if (rc < 0 && -rc !== 2) this.log.warn({ errno: -rc }, 'NOTIF_SEND failed');
  }

  /**
   * A notification the previous serving process took but did not answer (it was killed). Looked
   * for again whenever listeners arrive: after a takeover they arrive after the start, and until
   * the record's listener is among ours it is left as it is (it may be another process's still).
   */
  private finishInterrupted(): void {
    const left = this.inflight.read();
    if (left === null) return;
    const copy = this.copies.find((c) => c.holderFd === left.holderFd);
    if (copy === undefined) return;
    this.inflight.end();
    if (!this.idValid(copy.fd, left.notification.id)) return;
    this.log.info({ pid: left.notification.pid }, 'answering the sysinfo call the previous serving process left open');
    this.answer(copy.fd, left.notification);
    this.stats.recovered();
  }

  private takeNewListeners(): void {
    let changed = false;
    for (let m = receiveMessageOnPort(this.data.port); m !== undefined; m = receiveMessageOnPort(this.data.port)) {
      for (const holderFd of (m.message as { add: number[] }).add) {
        if (this.copies.some((c) => c.holderFd === holderFd)) continue;
        try {
          const fd = pidfdGetfd(this.holderPidfd, holderFd);
          this.copies.push({ holderFd, fd });
          this.syncWakeUp(fd);
          changed = true;
        } catch (err) {
          this.log.error({ err, holderFd }, 'cannot copy a seccomp listener from the supervisor');
        }
      }
    }
    if (!changed) return;
    this.rebuildPollSet();
    this.finishInterrupted();
  }

  /**
   * Asks for synchronous wake-ups (Linux 6.6+): the caller blocked in sysinfo and this thread then
   * hand the CPU to each other directly instead of through the scheduler's wake-up path, which
   * is most of a notification's round trip. Older kernels refuse (EINVAL): nothing changes.
   */
  private syncWakeUp(fd: number): void {
    this.flagsBuf.writeBigUInt64LE(BigInt(SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP));
    ioctlErrno(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, this.flagsBuf);
  }

  private release(index: number): void {
    const [copy] = this.copies.splice(index, 1);
    if (copy === undefined) return;
    try {
      closeFd(copy.fd);
    } catch (err) {
      if (!(err instanceof NativeError)) throw err;
    }
    this.rebuildPollSet();
    this.post({ type: 'released', fd: copy.holderFd });
  }

  private rebuildPollSet(): void {
    this.pollfds = Buffer.alloc(Math.max(1, this.copies.length) * 8);
    this.copies.forEach((c, i) => {
      this.pollfds.writeInt32LE(c.fd, i * 8);
      this.pollfds.writeInt16LE(POLLIN, i * 8 + 4);
    });
    this.stats.setListeners(this.copies.length);
  }

  private post(message: NotifyLoopMessage): void {
    this.data.port.postMessage(message);
  }
}

new NotifyLoop(workerData as NotifyLoopData).run();
