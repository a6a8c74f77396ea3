/**
 * The serving process: answers requests on a FUSE connection its supervisor mounted and passed
 * in as fd 3. It can die and be replaced at any time; the connection (and every container's bind
 * mount) lives on in the supervisor.
 */
import { writeSync } from 'node:fs';
import { createLogger } from '../common/log.js';
import { createSnapshotStoreBuffers } from '../fs/snapshot-store.js';
import { viewFilesystemLabels } from '../fs/view-filesystem.js';
import { createHostFilesystem, type ViewFilesystemConfig } from '../fs/worker-filesystem.js';
import { writeOutHeader } from '../fuse/codec.js';
import { RequestDispatcher } from '../fuse/dispatch.js';
import { NotifyCode, StructSize } from '../fuse/protocol.js';
import { RequestWorkerPool } from '../fuse/worker-pool.js';
import { createSharedViewState } from '../container/container-views.js';
import { startLoadavgSampler } from './loadavg-sampler.js';
import { startHealthServer } from './health-server.js';
import { AgentMetrics } from './metrics.js';
import { SyscallView, type ListenersMessage, type ReleaseMessage } from '../syscall/syscall-view.js';
import {
  type RepairTotalsMessage,
  type ResendMessage,
  SERVE_CONFIG_ENV,
  SERVE_FUSE_FD,
  SERVE_INFLIGHT_FD,
  type ServeConfig,
} from './serve-config.js';

const config = JSON.parse(process.env[SERVE_CONFIG_ENV] ?? 'null') as ServeConfig | null;
if (!config) {
  console.error(
    `lxcfs-ts serving process: ${SERVE_CONFIG_ENV} is not set; it is started by the lxcfs-ts daemon, not by hand`,
  );
  process.exit(2);
}
const log = createLogger(config.logLevel, { role: 'server', generation: config.generation });

/**
 * Requests a serving process before us had read but not answered go back to the queue, so their
 * callers get an answer from us instead of an error: at start after a crash, and when asked to
 * after a takeover (the old agent's process is gone only once we already serve).
 */
function askForResend(after: string): void {
  if (!config!.session.canResend) {
    log.warn(
      { after },
      'this kernel cannot resend in-flight requests (FUSE < 7.40): callers whose requests the previous serving process had taken stay blocked until the connection ends',
    );
    return;
  }
  const notify = Buffer.alloc(StructSize.OUT_HEADER);
  writeOutHeader(notify, notify.length, 0, 0n);
  notify.writeInt32LE(NotifyCode.RESEND, 4);
  try {
    writeSync(SERVE_FUSE_FD, notify);
    log.info({ after }, 'asked the kernel to resend requests left unanswered by the previous serving process');
  } catch (err) {
    log.warn({ err }, 'resend of in-flight requests refused by the kernel');
  }
}

if (config.generation > 0) askForResend('restart');

const shared = createSharedViewState(config.view);
// -l: per-container load averages, sampled on this (main) thread, read by the request workers.
if (config.view.enableLoadavg) startLoadavgSampler(config.view, shared, log);

// sysinfo(2) for containers whose seccomp listener the supervisor holds (--sysinfo-socket).
const syscallView = config.sysinfo
  ? new SyscallView(
      {
        view: config.view,
        shared,
        logLevel: config.logLevel,
        holderPid: process.ppid,
        inflightFd: SERVE_INFLIGHT_FD,
        release: (fd) => {
          const message: ReleaseMessage = { type: 'seccomp-release', fd };
          process.send?.(message);
        },
      },
      log,
    )
  : null;

const filesystemConfig: ViewFilesystemConfig = {
  view: config.view,
  shared,
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
    labels: viewFilesystemLabels,
    logLevel: config.logLevel,
    deadlineMs: config.deadlineMs,
    rescue: fallbackAnswerer(filesystemConfig),
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
/**
 * Answers a request a worker could not answer in time, on this thread, from the host's files:
 * a degraded but immediate answer beats a caller stuck in uninterruptible sleep.
 */
function fallbackAnswerer(fsConfig: ViewFilesystemConfig): (request: Buffer) => Buffer | null {
  const dispatcher = new RequestDispatcher(createHostFilesystem(fsConfig, log), log);
  const out = Buffer.alloc(StructSize.OUT_HEADER + config!.session.maxRead);
  return (request) => {
    const length = dispatcher.handle(request, request.length, out);
    return length > 0 ? Buffer.from(out.subarray(0, length)) : null;
  };
}

/**
 * Leaves at once. process.exit() would wait for the worker threads, and a worker blocked in
 * read(2) on /dev/fuse never returns while the connection lives (containers' binds keep it alive
 * after an unmount), so the process kills itself instead; its logs are already written (sync).
 */
function leaveNow(reason: string): void {
  log.info({ reason }, 'serving process exits');
  process.kill(process.pid, 'SIGKILL');
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => leaveNow(signal));
}
// Without its supervisor nobody would replace this process or unmount on stop; leaving then
// turns the mount into a dead one that the next start detaches, instead of an orphan that
// blocks the next start as "already served".
process.on('disconnect', () => leaveNow('supervisor is gone'));
pool.start();
// The supervisor repairs containers and sends its running totals here, where /metrics is served.
let repairs: Readonly<Record<string, number>> = {};
process.on('message', (msg: Partial<RepairTotalsMessage> | ListenersMessage | ResendMessage) => {
  if (msg.type === 'repairs' && 'totals' in msg && msg.totals) repairs = msg.totals;
  if (msg.type === 'resend') askForResend('takeover');
  if (msg.type === 'seccomp-listeners' && 'fds' in msg) syscallView?.add(msg.fds);
});
if (config.healthAddress) {
  const metrics = new AgentMetrics({
    requests: pool.stats,
    pool: () => pool.status(),
    serverRestarts: config.generation,
    repairs: () => repairs,
    ...(syscallView && { syscalls: () => syscallView.stats.totals() }),
  });
  startHealthServer(
    config.healthAddress,
    { mountpoint: config.mountpoint, pool: () => pool.status(), metrics },
    log,
  );
}
