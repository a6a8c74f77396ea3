/**
 * `lxcfs-ts [options] [MOUNTPOINT]`: the supervisor. It owns the FUSE connection (opens
 * /dev/fuse, mounts, negotiates INIT) and keeps a serving process attached to it, starting a new
 * one whenever the previous one dies. Because this process holds the descriptor, the connection
 * and every container's bind mount of the view survive a crash of the serving process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../common/log.js';
import { defaultViewOptions } from '../common/options.js';
import { packageVersion } from '../common/version.js';
import { MountError, unmount } from '../fuse/mount.js';
import { type DaemonArgs, daemonUsage, parseDaemonArgs, UsageError } from './daemon-args.js';
import { readMountinfo } from './mountinfo.js';
import { canonicalMountpoint, cgroupNamespaceProblem, prepareMountpoint, requireRoot, StartupError } from './preflight.js';
import { unbindForStop } from './repair/planned-stop.js';
import { RepairWatcher } from './repair/repair-watcher.js';
import { topmostAt } from './repair/view-mounts.js';
import { type RepairTotalsMessage, type ResendMessage, SERVE_CONFIG_ENV, type ServeConfig } from './serve-config.js';
import { acquireConnection } from './takeover/acquire-connection.js';
import { handoverSocketPath } from './takeover/handover-protocol.js';
import { HandoverServer } from './takeover/handover-server.js';
import type { AdoptedConnection } from './takeover/takeover-client.js';
import { ensureSharedParent } from './shared-parent.js';
import type { ListenersMessage, ReleaseMessage } from '../syscall/syscall-view.js';

/** Loaded only when needed (see syscall-parts.ts). */
type SyscallParts = typeof import('./syscall-parts.js');

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
function inflightRecordFile(syscall: SyscallParts): number {
  const path = join(tmpdir(), `.lxcfs-ts-inflight-${process.pid}`);
  const fd = openSync(path, 'w+', 0o600);
  unlinkSync(path);
  syscall.sizeInflightFile(fd);
  return fd;
}

/** A call the old agent's serving process had taken names its listener by the old agent's number. */
function renumberInflightRecord(syscall: SyscallParts, inflightFd: number, adopted: AdoptedConnection): void {
  const renumbered = new Map(adopted.offer.listeners.map((l, i) => [l.fd, adopted.listeners[i]!.fd]));
  new syscall.InflightRecord(inflightFd).renumber(renumbered);
}

async function supervise(args: DaemonArgs, log: Logger): Promise<number> {
  requireRoot();
  // A stop signal during the start (a takeover takes a second or so) is kept for when the
  // supervisor can act on it: dying at once could leave the connection half taken over.
  let earlySignal: string | null = null;
  const keepSignal = (signal: string) => (earlySignal ??= signal);
  process.on('SIGTERM', keepSignal);
  process.on('SIGINT', keepSignal);
  const mountpoint = canonicalMountpoint(args.mountpoint);
  const live = prepareMountpoint(mountpoint, args.allowNonEmpty, log);
  const connection = await acquireConnection(mountpoint, live, args, packageVersion(), log, () => {
    if (args.shareParent) ensureSharedParent(mountpoint, log);
  });
  const { fd, session, mountedAtMs } = connection;
  log.info(
    {
      mountpoint,
      fuseMinor: session.minor,
      resend: session.canResend,
      requestTimeoutSec: session.requestTimeoutSec,
      ...(connection.takeover && { takenOverFrom: connection.takeover.connection.offer.pid }),
    },
    connection.takeover ? 'taking over the live connection' : 'mounted',
  );
  const cgroupProblem = cgroupNamespaceProblem(defaultViewOptions.procRoot);
  if (cgroupProblem) log.error({ mountpoint }, cgroupProblem);
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
  const needsSyscall = args.sysinfoSocket !== null || connection.inflightFd !== null;
  const syscall = needsSyscall ? await import('./syscall-parts.js') : null;
  const inflightFd =
    args.sysinfoSocket !== null ? (connection.inflightFd ?? inflightRecordFile(syscall!)) : connection.inflightFd;
  if (args.sysinfoSocket === null && connection.listeners.length > 0) {
    log.warn(
      { listeners: connection.listeners.length },
      'the agent taken over from served sysinfo(2) and this one runs without --sysinfo-socket: those containers\' sysinfo calls fail (ENOSYS) from now on',
    );
  }

  return new Promise<number>((resolveExit) => {
    let child: ChildProcess | null = null;
    let generation = connection.generation;
    /** serving; handing-over: a newcomer is taking the connection; handed-over: it has it. */
    let phase: 'serving' | 'handing-over' | 'handed-over' = 'serving';
    /** Set while the serving process is stopped for a newcomer: it is not replaced then. */
    let heldBack = false;
    /** Set until we, the newcomer, serve the connection alone: until then it is the old agent's. */
    let takingOver = connection.takeover !== null;
    /** Keeps a handed-over agent (--after-handover wait) alive until its stop signal. */
    let lingering: NodeJS.Timeout | undefined;
    let stopping = false;
    let restartDelay = 0;
    let startedAt = 0;
    let ready = false;
    let whenReady: { resolve: () => void; reject: (err: Error) => void } | null = null;
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
      syscall && args.sysinfoSocket !== null
        ? new syscall.ListenerHub(
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
    const askForResend = () => {
      const message: ResendMessage = { type: 'resend' };
      if (child?.connected) child.send(message);
    };

    const startServer = (withListeners = true) => {
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
      if (hub && withListeners) sendListeners(hub.listeners().map((l) => l.fd));
      thisChild.on('message', (msg: { type?: string; fd?: number }) => {
        if (msg.type === 'seccomp-release' && hub) hub.release((msg as ReleaseMessage).fd);
        if (msg.type !== 'ready') return;
        ready = true;
        log.info({ serverPid: thisChild.pid, generation: config.generation }, 'serving');
        sendRepairTotals();
        whenReady?.resolve();
        whenReady = null;
      });
      thisChild.on('exit', (code, signal) => {
        if (child === thisChild) child = null;
        if (!ready) whenReady?.reject(new Error(`the serving process exited (${signal ?? code}) before it served`));
        if (stopping || heldBack || phase === 'handed-over') return;
        if (code === 0) {
          // The serving process only exits by itself when the connection is gone: someone
          // unmounted the view (or aborted the connection) behind our back. Nothing left to serve.
          stopping = true;
          void watcher?.stop();
          log.error({ mountpoint }, 'the FUSE connection was closed from outside (unmounted or aborted); exiting');
          closeSync(fd);
          removeOwnPidfile();
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
          if (!stopping && !heldBack && phase !== 'handed-over') startServer();
        }, restartDelay);
      });
    };
    /** Resolves when the current serving process serves; rejects if it dies first. */
    const serverReady = () =>
      new Promise<void>((resolve, reject) => {
        if (ready) resolve();
        else whenReady = { resolve, reject };
      });

    const removeOwnPidfile = () => {
      if (!args.pidfile) return;
      try {
        // After a takeover the file may name the newcomer already.
        if (readFileSync(args.pidfile, 'utf8').trim() === String(process.pid)) rmSync(args.pidfile, { force: true });
      } catch {
        // gone already
      }
    };

    const handover = liveDevice && args.takeover
      ? new HandoverServer(
          handoverSocketPath(mountpoint),
          packageVersion(),
          {
            offer: () => {
              phase = 'handing-over';
              // Listeners that arrive from here on would be the newcomer's to know about.
              hub?.stop();
              return {
                generation,
                fuseFd: fd,
                inflightFd,
                listeners: (hub?.listeners() ?? []).map(({ fd: lfd, pid, id, metadata, listenerIndex }) => ({
                  fd: lfd,
                  pid,
                  id,
                  metadata,
                  listenerIndex,
                })),
                session,
                mountedAtMs,
              };
            },
            stopServing: async () => {
              heldBack = true;
              const running = child as ChildProcess | null;
              if (!running || running.exitCode !== null || running.signalCode !== null) return;
              const gone = new Promise((resolve) => running.once('exit', resolve));
              running.kill('SIGKILL');
              await gone;
            },
            resume: () => {
              phase = 'serving';
              heldBack = false;
              if (stopping) return;
              if (child) askForResend();
              else {
                generation++;
                startServer();
              }
              void startSyscallView(false);
            },
            handedOver: (newcomerPid) => {
              phase = 'handed-over';
              stopping = true;
              void watcher?.stop();
              removeOwnPidfile();
              // Our copies go at once: a lingering holder would keep the connection alive with
              // nobody serving it should the newcomer die, and callers would hang instead of
              // failing (the next agent then repairs them).
              closeSync(fd);
              if (inflightFd !== null) closeSync(inflightFd);
              hub?.closeAll();
              if (args.afterHandover === 'wait') {
                log.info({ newcomerPid }, 'handed over: waiting for SIGTERM (--after-handover wait); the view stays mounted');
                // Only the stop signal ends this process now.
                lingering = setInterval(() => undefined, 1 << 30);
                return;
              }
              log.info({ newcomerPid }, 'handed over: exiting; the view stays mounted');
              resolveExit(0);
            },
          },
          log.child({ component: 'handover' }),
        )
      : null;

    const stop = async (signal: string) => {
      if (phase === 'handed-over') {
        clearInterval(lingering);
        log.info({ signal }, 'stopped (the connection was handed over: nothing is unmounted)');
        resolveExit(0);
        return;
      }
      if (stopping) return;
      if (takingOver) {
        // The connection is still the old agent's: it serves again once we are gone.
        log.info({ signal }, 'stopped during a takeover: the old agent keeps the connection; nothing is unmounted');
        stopping = true;
        takingOver = false;
        (child as ChildProcess | null)?.kill('SIGKILL');
        connection.takeover?.abandon();
        resolveExit(0);
        return;
      }
      stopping = true;
      handover?.stop();
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
      // A newer agent that could not take over may have mounted its own view over ours: the
      // topmost mount on the path is then its, and must stay.
      const top = topmostAt(readMountinfo(), mountpoint);
      if (top && liveDevice && top.device !== liveDevice) {
        log.info({ signal, mountpoint, covering: top.device }, 'stopping: another view is mounted over ours; leaving the mounts as they are');
      } else {
        log.info({ signal, mountpoint }, 'stopping: unmounting');
        const result = unmount(mountpoint, true);
        if (!result.ok) log.error({ mountpoint, message: result.message }, 'unmount failed');
      }
      const finish = () => {
        closeSync(fd);
        removeOwnPidfile();
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
    // The real handlers first: with no listener left for a moment, a signal on its way is lost.
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    process.off('SIGTERM', keepSignal);
    process.off('SIGINT', keepSignal);
    const startSyscallView = async (writeProfile: boolean) => {
      if (!hub || !syscall) return;
      try {
        await hub.start();
        if (writeProfile && args.seccompProfileDir !== null) {
          const path = syscall.installSysinfoProfile(args.seccompProfileDir, args.sysinfoSocket!, syscall.nativeArch());
          log.info({ path, localhostProfile: syscall.sysinfoProfileName }, 'seccomp profile for the syscall view written');
        }
      } catch (err) {
        log.error({ err, socket: args.sysinfoSocket }, `the syscall view cannot start: ${(err as Error).message}`);
      }
    };
    /** Everything that comes after the connection is ours alone. */
    const serveAlone = () => {
      if (args.pidfile) writeFileSync(args.pidfile, `${process.pid}\n`, { mode: 0o644 });
      void startSyscallView(true);
      watcher?.start();
      handover?.start().catch((err: unknown) =>
        log.warn({ err: (err as Error).message }, 'no handover socket: a newer agent will not be able to take over from this one'),
      );
    };

    const takeover = connection.takeover;
    if (earlySignal !== null) setImmediate(() => void stop(earlySignal!));
    if (!takeover) {
      startServer();
      serveAlone();
      return;
    }
    // Takeover: our serving process starts beside the old one (both may answer requests of the
    // same connection); the old one is stopped only once ours serves, and what it had read but
    // not answered is resent to ours. Listeners go to ours only after the old one is gone: both
    // would share the in-flight record.
    hub?.adopt(connection.listeners);
    startServer(false);
    serverReady()
      .then(() => takeover.confirm())
      .then(() => {
        // The old serving process is gone: nobody writes the in-flight record now.
        if (syscall && inflightFd !== null) renumberInflightRecord(syscall, inflightFd, takeover.connection);
        askForResend();
        if (hub) sendListeners(hub.listeners().map((l) => l.fd));
        takeover.finish();
        takingOver = false;
        log.info(
          { takenOverFrom: takeover.connection.offer.pid, takeoverMs: Date.now() - connection.takeoverStartedAt },
          'took over the live connection: serving alone',
        );
        serveAlone();
      })
      .catch((err: unknown) => {
        if (!takingOver) return;
        takingOver = false;
        // The old agent serves on (it resumes whenever we go away before `done`).
        log.error({ err: (err as Error).message }, 'takeover failed; exiting, the old agent keeps serving');
        stopping = true;
        const running = child as ChildProcess | null;
        running?.kill('SIGKILL');
        takeover.abandon();
        resolveExit(1);
      });
  });
}
