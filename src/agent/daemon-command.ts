/**
 * `lxcfs-ts [options] [MOUNTPOINT]`: the supervisor. It owns the FUSE connection (opens
 * /dev/fuse, mounts, negotiates INIT) and keeps a serving process attached to it, starting a new
 * one whenever the previous one dies. Because this process holds the descriptor, the connection
 * and every container's bind mount of the view survive a crash of the serving process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { defaultViewOptions } from '../common/options.js';
import { packageVersion } from '../common/version.js';
import { type NegotiatedSession, negotiateInit } from '../fuse/init.js';
import { MountError, mountFuse, openFuseDevice, unmount } from '../fuse/mount.js';
import { type DaemonArgs, daemonUsage, parseDaemonArgs, UsageError } from './daemon-args.js';
import { readMountinfo } from './mountinfo.js';
import { canonicalMountpoint, cgroupNamespaceProblem, prepareMountpoint, requireRoot, StartupError } from './preflight.js';
import { unbindForStop } from './repair/planned-stop.js';
import { RepairWatcher } from './repair/repair-watcher.js';
import { topmostAt } from './repair/view-mounts.js';
import { type RepairTotalsMessage, SERVE_CONFIG_ENV, type ServeConfig } from './serve-config.js';
import { ensureSharedParent } from './shared-parent.js';
import { sizeInflightFile } from '../syscall/inflight-record.js';
import { ListenerHub } from '../syscall/listener-hub.js';
import type { ListenersMessage, ReleaseMessage } from '../syscall/syscall-view.js';
import { installSysinfoProfile, sysinfoProfileName } from '../syscall/seccomp-profile.js';
import { nativeArch } from '../native/libc.js';

const MAX_RESTART_DELAY_MS = 5_000;
const STOP_GRACE_MS = 3_000;
/** How long a planned stop may spend detaching containers' binds before it unmounts anyway. */
const UNBIND_TIMEOUT_MS = 20_000;

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseDaemonArgs>;
  try {
    parsed = parseDaemonArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lxcfs-ts: ${err.message}\n\n${daemonUsage}`);
    return 2;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(daemonUsage);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`lxcfs-ts ${packageVersion()}\n`);
    return 0;
  }
  const args = parsed.args;
  const log = createLogger(args.logLevel, { role: 'supervisor' });
  try {
    return await supervise(args, log);
  } catch (err) {
    if (err instanceof StartupError || err instanceof MountError) {
      log.error({ mountpoint: args.mountpoint }, err.message);
      process.stderr.write(`lxcfs-ts: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/**
 * The syscall view's in-flight record: a file with no name (unlinked at once), for state that
 * must outlive serving processes but not this one.
 */
function inflightRecordFile(): number {
  const path = join(tmpdir(), `.lxcfs-ts-inflight-${process.pid}`);
  const fd = openSync(path, 'w+', 0o600);
  unlinkSync(path);
  sizeInflightFile(fd);
  return fd;
}

async function supervise(args: DaemonArgs, log: Logger): Promise<number> {
  requireRoot();
  const mountpoint = canonicalMountpoint(args.mountpoint);
  prepareMountpoint(mountpoint, args.allowNonEmpty, log);
  if (args.shareParent) ensureSharedParent(mountpoint, log);
  const fd = openFuseDevice();
  mountFuse({ fd, mountpoint, source: 'lxcfs', subtype: 'lxcfs', options: ['ro', 'default_permissions'] });
  let session: NegotiatedSession;
  try {
    session = negotiateInit(fd, { requestTimeoutSec: args.requestTimeoutSec });
  } catch (err) {
    unmount(mountpoint, true);
    throw new MountError(`FUSE INIT failed: ${(err as Error).message}`);
  }
  const mountedAtMs = Date.now();
  log.info(
    {
      mountpoint,
      fuseMinor: session.minor,
      resend: session.canResend,
      requestTimeoutSec: session.requestTimeoutSec,
    },
    'mounted',
  );
  const cgroupProblem = cgroupNamespaceProblem(defaultViewOptions.procRoot);
  if (cgroupProblem) log.error({ mountpoint }, cgroupProblem);
  if (args.pidfile) writeFileSync(args.pidfile, `${process.pid}\n`, { mode: 0o644 });
  // The connection's device number: every bind of this view in any container shows it.
  const liveDevice = topmostAt(readMountinfo(), mountpoint)?.device;
  if (!liveDevice) log.warn({ mountpoint }, 'the new mount is not in the mount table; containers will not be repaired');

  const baseConfig: Omit<ServeConfig, 'generation'> = {
    view: {
      ...defaultViewOptions,
      enableLoadavg: args.enableLoadavg,
      enableCfs: args.enableCfs,
      disableSwap: args.disableSwap,
      uptime: args.uptime,
    },
    session,
    logLevel: args.logLevel,
    threads: args.threads,
    entryTtlMs: args.entryTtlMs,
    attrTtlMs: args.attrTtlMs,
    mountedAtMs,
    mountpoint,
    deadlineMs: args.deadlineMs,
    healthAddress: args.healthAddress,
    sysinfo: args.sysinfoSocket !== null,
  };
  // The syscall view's listeners and in-flight record live here, beside the FUSE descriptor.
  const inflightFd = args.sysinfoSocket !== null ? inflightRecordFile() : null;

  return new Promise<number>((resolveExit) => {
    let child: ChildProcess | null = null;
    let generation = 0;
    let stopping = false;
    let restartDelay = 0;
    let startedAt = 0;
    let ready = false;
    // Repairs start right away: a re-bound file answers as soon as the serving process is up.
    const watcher =
      args.repair && liveDevice
        ? new RepairWatcher({
            mountpoint,
            liveDevice,
            intervalMs: args.repairIntervalMs,
            log: log.child({ component: 'repair' }),
            onTotals: () => sendRepairTotals(),
          })
        : null;
    // The totals live here; the serving process (which serves /metrics) gets them when it starts and when they change.
    const sendRepairTotals = () => {
      if (!watcher || !child?.connected) return;
      const message: RepairTotalsMessage = { type: 'repairs', totals: { ...watcher.totals } };
      child.send(message);
    };

    const hub =
      args.sysinfoSocket !== null
        ? new ListenerHub(
            args.sysinfoSocket,
            { onListener: (listener) => sendListeners([listener.fd]) },
            log.child({ component: 'sysinfo' }),
          )
        : null;
    const sendListeners = (fds: number[]) => {
      if (!child?.connected || fds.length === 0) return;
      const message: ListenersMessage = { type: 'seccomp-listeners', fds };
      child.send(message);
    };

    const startServer = () => {
      const config: ServeConfig = { ...baseConfig, generation };
      startedAt = Date.now();
      ready = false;
      const serverPath = new URL('./serve-main.js', import.meta.url).pathname;
      child = spawn(process.execPath, ['--max-semi-space-size=1', serverPath], {
        stdio: ['ignore', 'inherit', 'inherit', fd, inflightFd ?? 'ignore', 'ipc'],
        env: {
          // glibc gives every thread its own malloc arena; the request threads allocate little,
          // and two arenas keep the long-lived process's resident memory about 4 MiB lower.
          MALLOC_ARENA_MAX: '2',
          ...process.env,
          [SERVE_CONFIG_ENV]: JSON.stringify(config),
        },
      });
      const thisChild = child;
      // Every listener held goes to each new serving process at once: their callers are waiting.
      if (hub) sendListeners(hub.listeners().map((l) => l.fd));
      thisChild.on('message', (msg: { type?: string; fd?: number }) => {
        if (msg.type === 'seccomp-release' && hub) hub.release((msg as ReleaseMessage).fd);
        if (msg.type !== 'ready') return;
        ready = true;
        log.info({ serverPid: thisChild.pid, generation: config.generation }, 'serving');
        sendRepairTotals();
      });
      thisChild.on('exit', (code, signal) => {
        if (child === thisChild) child = null;
        if (stopping) return;
        if (code === 0) {
          // The serving process only exits by itself when the connection is gone: someone
          // unmounted the view (or aborted the connection) behind our back. Nothing left to serve.
          stopping = true;
          void watcher?.stop();
          log.error({ mountpoint }, 'the FUSE connection was closed from outside (unmounted or aborted); exiting');
          closeSync(fd);
          if (args.pidfile) rmSync(args.pidfile, { force: true });
          resolveExit(1);
          return;
        }
        // Callers are waiting: a process that had been serving is replaced at once. One that dies
        // before it serves (or right after) is a crash loop, which backs off up to 5 s.
        const crashLoop = !ready || Date.now() - startedAt < 1_000;
        restartDelay = crashLoop ? Math.min(Math.max(restartDelay * 2, 100), MAX_RESTART_DELAY_MS) : 0;
        log.error(
          { serverPid: thisChild.pid, code, signal, restartInMs: restartDelay },
          'serving process died; starting a new one on the same connection',
        );
        generation++;
        setTimeout(() => {
          if (!stopping) startServer();
        }, restartDelay);
      });
    };

    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      hub?.stop();
      await watcher?.stop();
      if (args.unbindOnStop && liveDevice) {
        log.info({ signal, mountpoint }, 'planned stop: detaching containers\' binds of the view');
        await Promise.race([
          unbindForStop({ mountpoint, liveDevice, log }).catch((err: unknown) =>
            log.error({ err }, 'planned stop: detaching the binds failed'),
          ),
          new Promise((resolve) => setTimeout(resolve, UNBIND_TIMEOUT_MS).unref()),
        ]);
      }
      log.info({ signal, mountpoint }, 'stopping: unmounting');
      const result = unmount(mountpoint, true);
      if (!result.ok) log.error({ mountpoint, message: result.message }, 'unmount failed');
      const finish = () => {
        closeSync(fd);
        if (args.pidfile) rmSync(args.pidfile, { force: true });
        log.info('stopped');
        resolveExit(0);
      };
      const running = child as ChildProcess | null;
      if (!running || running.exitCode !== null) return finish();
      const timer = setTimeout(() => running.kill('SIGKILL'), STOP_GRACE_MS);
      running.once('exit', () => {
        clearTimeout(timer);
        finish();
      });
      running.kill('SIGTERM');
    };
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    const startSyscallView = async () => {
      if (!hub) return;
      try {
        await hub.start();
        if (args.seccompProfileDir !== null) {
          const path = installSysinfoProfile(args.seccompProfileDir, args.sysinfoSocket!, nativeArch());
          log.info({ path, localhostProfile: sysinfoProfileName }, 'seccomp profile for the syscall view written');
        }
      } catch (err) {
        log.error({ err, socket: args.sysinfoSocket }, `the syscall view cannot start: ${(err as Error).message}`);
      }
    };
    void startSyscallView();
    startServer();
    watcher?.start();
  });
}
