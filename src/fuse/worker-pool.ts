/**
 * Runs N request-loop worker threads on one /dev/fuse descriptor and replaces any that dies.
 * The calling thread stays free (signals, timers, health) while the workers block in read(2).
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Logger, LogLevel } from '../common/log.js';
import type { LoopBuffers } from './request-loop.js';
import type { WorkerData } from './worker-main.js';

export interface WorkerPoolOptions {
  fd: number;
  count: number;
  sizes: LoopBuffers;
  filesystemModule: string;
  filesystemConfig: unknown;
  logLevel: LogLevel;
  /** A worker's V8 heap limit: a runaway handler kills its own thread, not the process. */
  maxOldGenerationSizeMb?: number;
}

const RESTART_DELAY_MS = 100;

/** Emits 'ready' when every worker serves, 'unmounted' when the connection is gone. */
export class RequestWorkerPool extends EventEmitter {
  private readonly workers = new Map<number, Worker>();
  private readonly readyOnce = new Set<number>();
  private stopping = false;
  private unmounted = false;
  restarts = 0;

  constructor(
    private readonly options: WorkerPoolOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  start(): void {
    for (let i = 0; i < this.options.count; i++) this.spawn(i);
  }

  /** Stops replacing workers; they end by themselves once the connection is unmounted. */
  stop(): Promise<void> {
    this.stopping = true;
    return Promise.all([...this.workers.values()].map((w) => w.terminate())).then(() => undefined);
  }

  private spawn(index: number): void {
    const data: WorkerData = {
      fd: this.options.fd,
      index,
      sizes: this.options.sizes,
      filesystemModule: this.options.filesystemModule,
      filesystemConfig: this.options.filesystemConfig,
      logLevel: this.options.logLevel,
    };
    const worker = new Worker(new URL('./worker-main.js', import.meta.url), {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxOldGenerationSizeMb ?? 64 },
    });
    this.workers.set(index, worker);
    worker.on('message', (msg: { type: string; index: number }) => {
      if (msg.type === 'ready') {
        this.readyOnce.add(index);
        if (this.readyOnce.size === this.options.count) this.emit('ready');
      } else if (msg.type === 'ended') {
        this.unmounted = true;
      }
    });
    worker.on('error', (err) => this.log.error({ err, worker: index }, 'request worker failed'));
    worker.on('exit', (code) => {
      this.workers.delete(index);
      if (this.unmounted || this.stopping) {
        if (this.workers.size === 0) this.emit(this.unmounted ? 'unmounted' : 'stopped');
        return;
      }
      this.restarts++;
      this.log.error({ worker: index, code }, 'request worker exited unexpectedly; starting a new one');
      setTimeout(() => {
        if (!this.stopping && !this.unmounted) this.spawn(index);
      }, RESTART_DELAY_MS);
    });
  }
}
