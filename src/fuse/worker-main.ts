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

export interface WorkerData {
  fd: number;
  index: number;
  sizes: LoopBuffers;
  /** URL of a module exporting `createFilesystem(config, log)`. */
  filesystemModule: string;
  filesystemConfig: unknown;
  logLevel: LogLevel;
}

interface FilesystemModule {
  createFilesystem(config: unknown, log: ReturnType<typeof createLogger>): FuseFilesystem;
}

const data = workerData as WorkerData;
const log = createLogger(data.logLevel, { thread: `fuse-${data.index}` });
const mod = (await import(data.filesystemModule)) as FilesystemModule;
const fs = mod.createFilesystem(data.filesystemConfig, log);
const dispatcher = new RequestDispatcher(fs, log);
parentPort?.postMessage({ type: 'ready', index: data.index });
const end = runRequestLoop(data.fd, dispatcher, data.sizes, log);
parentPort?.postMessage({ type: 'ended', index: data.index, reason: end });
