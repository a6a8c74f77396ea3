/**
 * Entry point of a request-loop worker thread. It builds its own filesystem instance from the
 * module named in workerData (objects cannot be shared between threads; shared state travels in
 * SharedArrayBuffers inside the config) and then blocks in the request loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger, type LogLevel } from '../common/log.js';
import { RequestDispatcher } from './dispatch.js';
import type { FuseFilesystem } from './filesystem.js';
import { type LoopBuffers, runRequestLoop } from './request-loop.js';
import { RequestRecorder, type RequestStatsBuffer } from './request-stats.js';
import { WorkerSlot, type WorkerWatchBuffer } from './worker-watch.js';

export interface WorkerData {
  fd: number;
  /** This thread's slot in the shared watch and stats buffers. */
  slot: number;
  sizes: LoopBuffers;
  /** URL of a module exporting `createFilesystem(config, log)`. */
  filesystemModule: string;
  filesystemConfig: unknown;
  logLevel: LogLevel;
  watch: WorkerWatchBuffer;
  stats: RequestStatsBuffer;
}

export interface FilesystemModule {
  createFilesystem(config: unknown, log: ReturnType<typeof createLogger>): FuseFilesystem;
}

const data = workerData as WorkerData;
const log = createLogger(data.logLevel, { thread: `fuse-${data.slot}` });
const mod = (await import(data.filesystemModule)) as FilesystemModule;
const fs = mod.createFilesystem(data.filesystemConfig, log);
const recorder = new RequestRecorder(data.stats, data.slot);
const dispatcher = new RequestDispatcher(fs, log, (opcode, nodeid, errno, seconds) =>
  recorder.record(opcode, fs.labelOf(nodeid), errno, seconds),
);
const slot = new WorkerSlot(data.watch, data.slot);
parentPort?.postMessage({ type: 'ready', slot: data.slot });
const end = runRequestLoop(data.fd, dispatcher, data.sizes, log, slot);
parentPort?.postMessage({ type: 'ended', slot: data.slot, reason: end });
