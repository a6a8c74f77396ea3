/**
 * Runs N request-loop worker threads on one /dev/fuse descriptor, replaces any that dies, and
 * enforces a deadline per request: a request a worker has not answered in time is answered by
 * this (main) thread through `rescue`, and the stuck worker is retired and replaced. The number
 * of threads stays bounded even if every handler hangs.
 */
import { EventEmitter } from 'node:events';
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger, LogLevel } from '../common/log.js';
import type { LoopBuffers } from './request-loop.js';
import { createRequestStatsBuffer, type RequestStatsBuffer } from './request-stats.js';
import type { WorkerData } from './worker-main.js';
import { createWorkerWatchBuffer, WorkerWatch, type WorkerWatchBuffer } from './worker-watch.js';

export interface WorkerPoolOptions {
  fd: number;
  count: number;
  sizes: LoopBuffers;
  filesystemModule: string;
  filesystemConfig: unknown;
  /** Metric labels the filesystem reports (see FuseFilesystem.labels). */
  labels: readonly string[];
  logLevel: LogLevel;
  /** A request unanswered for this long is answered by `rescue` instead. */
  deadlineMs: number;
  /** Builds the fallback reply for a raw request; null means no reply is due (FORGET...). */
  rescue: (request: Buffer) => Buffer | null;
  /** Threads allowed beyond `count` while stuck ones are still blocked. */
  maxStuckWorkers?: number;
  /** A worker's V8 heap limit: a runaway handler kills its own thread, not the process. */
  maxOldGenerationSizeMb?: number;
}

const RESTART_DELAY_MS = 100;
const SLOTS = 32;

interface Running {
  worker: Worker;
  retired: boolean;
  ready: boolean;
}

export interface PoolStatus {
  /** Worker threads alive, stuck ones included. */
  threads: number;
  serving: number;
  stuck: number;
  restarts: number;
  rescues: number;
}

/** Emits 'ready' once the first `count` workers serve, 'unmounted' when the connection is gone. */
export class RequestWorkerPool extends EventEmitter {
  readonly stats: RequestStatsBuffer;
  private readonly watchBuffer: WorkerWatchBuffer;
  private readonly watch: WorkerWatch;
  private readonly running = new Map<number, Running>();
  private readonly freeSlots: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private unmounted = false;
  private announcedReady = false;
  private restarts = 0;
  private rescues = 0;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly log: Logger,
  ) {
    super();
    this.stats = createRequestStatsBuffer(options.labels, SLOTS);
    this.watchBuffer = createWorkerWatchBuffer(SLOTS);
    this.watch = new WorkerWatch(this.watchBuffer);
  }

  start(): void {
    for (let i = 0; i < this.options.count; i++) this.spawn();
    const period = Math.max(20, Math.min(250, Math.floor(this.options.deadlineMs / 4)));
    this.timer = setInterval(() => this.enforceDeadlines(), period);
    this.timer.unref();
  }

  status(): PoolStatus {
    let serving = 0;
    let stuck = 0;
    for (const [slot, r] of this.running) {
      if (r.retired || this.watch.busyForMs(slot) > this.options.deadlineMs) stuck++;
      else if (r.ready) serving++;
    }
    return { threads: this.running.size, serving, stuck, restarts: this.restarts, rescues: this.rescues };
  }

  /** Stops replacing workers; blocked ones end when the connection is unmounted. */
  stop(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
  }

  private spawn(): void {
    const limit = this.options.count + (this.options.maxStuckWorkers ?? 4);
    const slot = this.running.size < limit ? this.freeSlots.shift() : undefined;
    if (slot === undefined) {
      this.log.error(
        { threads: this.running.size },
        'too many request threads are stuck; not starting another',
      );
      return;
    }
    const data: WorkerData = {
      fd: this.options.fd,
      slot,
      sizes: this.options.sizes,
      filesystemModule: this.options.filesystemModule,
      filesystemConfig: this.options.filesystemConfig,
      logLevel: this.options.logLevel,
      watch: this.watchBuffer,
      stats: this.stats,
    };
    const worker = new Worker(new URL('./worker-main.js', import.meta.url), {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb ?? 64, maxYoungGenerationSizeMb: 2 },
    });
    const entry: Running = { worker, retired: false, ready: false };
    this.running.set(slot, entry);
    worker.on('message', (msg: { type: string; reason?: string }) => {
      if (msg.type === 'ready') {
        entry.ready = true;
        if (!this.announcedReady && this.serving() >= this.options.count) {
          this.announcedReady = true;
          this.emit('ready');
        }
      } else if (msg.type === 'ended' && msg.reason === 'unmounted') {
        this.unmounted = true;
      }
    });
    worker.on('error', (err) => this.log.error({ err, slot }, 'request worker failed'));
    worker.on('exit', (code) => {
      this.running.delete(slot);
      this.freeSlots.push(slot);
      if (this.unmounted || this.stopping) {
        if (this.running.size === 0) this.emit(this.unmounted ? 'unmounted' : 'stopped');
        return;
      }
      if (entry.retired) {
        // Its replacement may have been refused while too many threads were stuck.
        if (this.active() < this.options.count) this.spawn();
        return;
      }
      this.restarts++;
      this.log.error({ slot, code }, 'request worker exited unexpectedly; replacing it');
      setTimeout(() => {
        if (!this.stopping && !this.unmounted) this.spawn();
      }, RESTART_DELAY_MS);
    });
  }

  /** Workers that are (or will be, once loaded) taking requests. */
  private active(): number {
    let n = 0;
    for (const r of this.running.values()) if (!r.retired) n++;
    return n;
  }

  private serving(): number {
    let n = 0;
    for (const r of this.running.values()) if (r.ready && !r.retired) n++;
    return n;
  }

  private enforceDeadlines(): void {
    const overdue = this.watch.claimOverdue(this.running.keys(), this.options.deadlineMs);
    for (const { slot, request, elapsedMs } of overdue) {
      this.rescues++;
      const entry = this.running.get(slot);
      if (entry) entry.retired = true;
      let reply: Buffer | null = null;
      try {
        reply = this.options.rescue(request);
        if (reply) writeSync(this.options.fd, reply);
      } catch (err) {
        // ENOENT: the caller gave up (interrupted) in the meantime.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          this.log.error({ err }, 'fallback reply failed');
      }
      this.log.warn(
        { slot, elapsedMs, opcode: request.readUInt32LE(4), pid: request.readUInt32LE(32) },
        'request missed its deadline: answered with the fallback, worker replaced',
      );
      this.spawn();
    }
  }
}
