/**
 * Builds the view's filesystem inside a request-loop worker thread (see fuse/worker-main.ts).
 */
import type { Logger } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { FuseFilesystem } from '../fuse/filesystem.js';
import { HostViewSource } from './host-view-source.js';
import { SnapshotStore, type SnapshotStoreBuffers } from './snapshot-store.js';
import { ViewFilesystem } from './view-filesystem.js';

export interface ViewFilesystemConfig {
  view: ViewOptions;
  store: SnapshotStoreBuffers;
  entryTtlMs: number;
  attrTtlMs: number;
  mountedAtMs: number;
}

export function createFilesystem(config: ViewFilesystemConfig, log: Logger): FuseFilesystem {
  const source = new HostViewSource(config.view);
  return new ViewFilesystem(
    source,
    new SnapshotStore(config.store),
    {
      procRoot: config.view.procRoot,
      sysRoot: config.view.sysRoot,
      entryTtlMs: config.entryTtlMs,
      attrTtlMs: config.attrTtlMs,
      mountedAtMs: config.mountedAtMs,
    },
    log,
  );
}
