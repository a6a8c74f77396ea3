/**
 * The serving process: answers requests on a FUSE connection its supervisor mounted and passed
 * in as fd 3. It can die and be replaced at any time; the connection (and every container's bind
 * mount) lives on in the supervisor.
 */
import { writeSync } from 'node:fs';
import { createLogger } from '../common/log.js';
import { createSnapshotStoreBuffers } from '../fs/snapshot-store.js';
import type { ViewFilesystemConfig } from '../fs/worker-filesystem.js';
import { writeOutHeader } from '../fuse/codec.js';
import { NotifyCode, StructSize } from '../fuse/protocol.js';
import { RequestWorkerPool } from '../fuse/worker-pool.js';
import { SERVE_CONFIG_ENV, SERVE_FUSE_FD, type ServeConfig } from './serve-config.js';

const config = JSON.parse(process.env[SERVE_CONFIG_ENV] ?? 'null') as ServeConfig | null;
if (!config) {
  console.error(
    `lxcfs-ts serving process: ${SERVE_CONFIG_ENV} is not set; it is started by the lxcfs-ts daemon, not by hand`,
  );
  process.exit(2);
}
const log = createLogger(config.logLevel, { role: 'server', generation: config.generation });

if (config.generation > 0) {
  if (config.session.canResend) {
    // Requests the previous process had read but not answered go back to the queue, so their
    // callers get an answer from us instead of an error.
    const notify = Buffer.alloc(StructSize.OUT_HEADER);
    writeOutHeader(notify, notify.length, 0, 0n);
    notify.writeInt32LE(NotifyCode.RESEND, 4);
    try {
      writeSync(SERVE_FUSE_FD, notify);
      log.info('asked the kernel to resend requests left unanswered by the previous serving process');
    } catch (err) {
      log.warn({ err }, 'resend of in-flight requests refused by the kernel');
    }
  } else {
    log.warn(
      'this kernel cannot resend in-flight requests (FUSE < 7.40): callers that were waiting on the previous serving process got an error',
    );
  }
}

const filesystemConfig: ViewFilesystemConfig = {
  view: config.view,
  store: createSnapshotStoreBuffers(),
  entryTtlMs: config.entryTtlMs,
  attrTtlMs: config.attrTtlMs,
  mountedAtMs: config.mountedAtMs,
};

const pool = new RequestWorkerPool(
  {
    fd: SERVE_FUSE_FD,
    count: config.threads,
    sizes: { readBufferSize: config.session.readBufferSize, maxRead: config.session.maxRead },
    filesystemModule: new URL('../fs/worker-filesystem.js', import.meta.url).href,
    filesystemConfig,
    logLevel: config.logLevel,
  },
  log,
);
pool.on('ready', () => {
  log.debug({ threads: config.threads }, 'request workers serving');
  process.send?.({ type: 'ready' });
});
pool.on('unmounted', () => {
  log.info('connection closed (unmounted); serving process exits');
  process.exit(0);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => process.exit(0));
}
// Without its supervisor nobody would replace this process or unmount on stop; leaving then
// turns the mount into a dead one that the next start detaches, instead of an orphan that
// blocks the next start as "already served".
process.on('disconnect', () => {
  log.error('supervisor is gone; serving process exits');
  process.exit(1);
});
pool.start();
