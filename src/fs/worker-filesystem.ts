/**
 * Builds the view's filesystem inside a request-loop worker thread (see fuse/worker-main.ts).
 */
import { createContainerViewSource, type SharedViewState } from '../container/container-views.js';
import type { Logger } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { FuseFilesystem } from '../fuse/filesystem.js';
import { HostViewSource } from './host-view-source.js';
import { SnapshotStore, type SnapshotStoreBuffers } from './snapshot-store.js';
import { ViewFilesystem } from './view-filesystem.js';
import type { ViewSource } from '../container/view-source.js';

export interface ViewFilesystemConfig {
  view: ViewOptions;
  /** Per-container state every request worker shares (SharedArrayBuffers). */
  shared: SharedViewState;
  store: SnapshotStoreBuffers;
  entryTtlMs: number;
  attrTtlMs: number;
  mountedAtMs: number;
}

export function createFilesystem(config: ViewFilesystemConfig, log: Logger): FuseFilesystem {
  return viewFilesystem(createContainerViewSource(config.view, config.shared, log), config, log);
}

/** The same tree showing every caller the host's own files (the fallback when a view is late). */
export function createHostFilesystem(config: ViewFilesystemConfig, log: Logger): FuseFilesystem {
  return viewFilesystem(new HostViewSource(config.view), config, log);
}

function viewFilesystem(source: ViewSource, config: ViewFilesystemConfig, log: Logger): FuseFilesystem {
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
