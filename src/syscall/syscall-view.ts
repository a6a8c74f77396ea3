/**
 * The serving process's side of the syscall view: starts the notification thread
 * (notify-loop.ts), forwards it the listeners the supervisor announces, and reports back the
 * ones whose containers are gone. If the thread dies, the process exits so the supervisor starts
 * a fresh one: the listeners (held by the supervisor) and the in-flight record carry over.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { SharedViewState } from '../container/container-views.js';
import type { Logger, LogLevel } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { NotifyLoopData, NotifyLoopMessage } from './notify-loop.js';
import { createSyscallStatsBuffer, SyscallStats } from './syscall-stats.js';

/** Supervisor -> serving process: listeners now held (descriptor numbers in the supervisor). */
export interface ListenersMessage {
  readonly type: 'seccomp-listeners';
  readonly fds: readonly number[];
}

/** Serving process -> supervisor: this listener's processes are all gone; close it. */
export interface ReleaseMessage {
  readonly type: 'seccomp-release';
  readonly fd: number;
}

export interface SyscallViewOptions {
  readonly view: ViewOptions;
  readonly shared: SharedViewState;
  readonly logLevel: LogLevel;
  readonly holderPid: number;
  readonly inflightFd: number;
  /** Called for a listener the supervisor should close. */
  readonly release: (fd: number) => void;
}

export class SyscallView {
  readonly stats: SyscallStats;
  private readonly worker: Worker;
  private readonly port;

  constructor(options: SyscallViewOptions, log: Logger) {
    const statsBuffer = createSyscallStatsBuffer();
    this.stats = new SyscallStats(statsBuffer);
    const channel = new MessageChannel();
    this.port = channel.port1;
    const data: NotifyLoopData = {
      view: options.view,
      shared: options.shared,
      logLevel: options.logLevel,
      holderPid: options.holderPid,
      inflightFd: options.inflightFd,
      stats: statsBuffer,
      port: channel.port2,
    };
    this.worker = new Worker(new URL('./notify-loop.js', import.meta.url), {
      workerData: data,
      transferList: [channel.port2],
      // The thread parses small texts; a runaway heap must end it, not the process.
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    this.port.on('message', (m: NotifyLoopMessage) => {
      if (m.type === 'ready') log.debug('sysinfo thread serving');
      else if (m.type === 'released') options.release(m.fd);
    });
    this.worker.on('error', (err) => log.error({ err }, 'sysinfo thread failed'));
    this.worker.on('exit', (code) => {
      log.error({ code }, 'sysinfo thread ended; exiting so that a fresh serving process takes over');
      process.kill(process.pid, 'SIGKILL');
    });
    // Messages from the main thread are read by the (blocking) loop with receiveMessageOnPort.
    this.worker.unref();
    this.port.unref();
  }

  /** Listeners to serve (the loop ignores those it already has). */
  add(fds: readonly number[]): void {
    if (fds.length > 0) this.port.postMessage({ add: [...fds] });
  }
}
