/**
 * `lxcfs-ts run` from start to finish: checks, view (given or a private daemon), cgroup, the
 * namespaced CMD, and the teardown of everything it made, in reverse order, whatever happens:
 * CMD's exit, a failed step, or SIGINT/SIGTERM/SIGHUP to `run` (passed on to CMD, which gets a
 * grace period before the whole sandbox is killed).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { procViewFiles } from '../views/catalog.js';
import { type CgroupHost, hostCpus, readCgroupHost } from './cgroup-host.js';
import { createV1Cgroup } from './cgroup-v1.js';
import { createV2Cgroup } from './cgroup-v2.js';
import { CleanupStack } from './cleanup-stack.js';
import { checkCommand, defaultPath, findHostProgram } from './command-lookup.js';
import { startPrivateDaemon } from './private-daemon.js';
import { formatCpuList } from './quantities.js';
import { errnoCode, RunError } from './run-error.js';
import type { RunOptions } from './run-options.js';
import type { SandboxCgroup } from './sandbox-cgroup.js';
import { type RunningSandbox, type SandboxExit, startSandbox } from './sandbox-process.js';
import { launcherArgv, renderSetupScript, type SandboxLayout, type SysinfoLaunch } from './setup-script.js';

export interface RunEnvironment {
  readonly log: Logger;
  /** argv of the view daemon started when no `--view` is given, without pidfile and mountpoint. */
  readonly daemonCommand: readonly string[];
  /** argv of the sysinfo filter installer (node and syscall/filter-exec.js). */
  readonly filterExecCommand: readonly string[];
}

/** How long CMD may take to exit after `run` passed it a stop signal, before everything is killed. */
const stopGraceMs = 3000;

const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof stopSignals)[number];

const exitStatusForSignal = (signal: NodeJS.Signals) => 128 + constants.signals[signal];

/** Runs the sandbox and returns the exit status `run` should end with. RunErrors are returned as messages. */
export async function runSandbox(
  options: RunOptions,
  env: RunEnvironment,
): Promise<{ status: number; error?: string }> {
  const { log } = env;
  const cleanup = new CleanupStack(log);
  const stop = new StopRequests();
  const onSignal = (signal: StopSignal) => stop.request(signal);
  for (const signal of stopSignals) process.on(signal, onSignal);
  try {
    const status = await buildAndRun(options, env, cleanup, stop);
    return { status };
  } catch (err) {
    if (!(err instanceof RunError)) throw err;
    const status = stop.signal ? exitStatusForSignal(stop.signal) : err.exitCode;
    return { status, error: err.message };
  } finally {
    await cleanup.run();
    for (const signal of stopSignals) process.off(signal, onSignal);
  }
}

/** Signals `run` received; the first starts a graceful stop, a second one forces it. */
class StopRequests {
  signal: StopSignal | undefined;
  readonly controller = new AbortController();
  private listener: ((signal: StopSignal, repeated: boolean) => void) | undefined;

  request(signal: StopSignal): void {
    const repeated = this.signal !== undefined;
    this.signal ??= signal;
    this.controller.abort();
    this.listener?.(signal, repeated);
  }

  onRequest(listener: (signal: StopSignal, repeated: boolean) => void): void {
    this.listener = listener;
  }

  throwIfRequested(): void {
    if (this.signal) throw new RunError(`stopped by ${this.signal} before the sandbox started`);
  }
}

async function buildAndRun(
  options: RunOptions,
  env: RunEnvironment,
  cleanup: CleanupStack,
  stop: StopRequests,
): Promise<number> {
  const { log } = env;
  if (process.getuid?.() !== 0) {
    throw new RunError('needs root: it creates cgroups, mounts and namespaces (try sudo)');
  }
  const host = readCgroupHost();
  checkCpuRequest(options, host);
  checkHostTools(options);
  if (options.rootfs !== undefined && !isDirectory(options.rootfs)) {
    throw new RunError(`--rootfs ${options.rootfs}: not a directory`);
  }
  checkCommand(
    options.command[0]!,
    options.rootfs ?? '/',
    options.rootfs !== undefined ? '/' : process.cwd(),
    process.env.PATH ?? defaultPath,
  );

  let viewDir: string;
  let sysinfoSocket: string | undefined;
  if (options.viewDir !== undefined) {
    viewDir = options.viewDir;
    await checkView(viewDir);
    if (options.sysinfo) sysinfoSocket = options.sysinfoSocket;
    if (options.sysinfo && sysinfoSocket === undefined) {
      log.info('--view without --sysinfo-socket: sysinfo(2) shows the host\'s values in this sandbox');
    }
  } else {
    const daemon = await startPrivateDaemon({
      command: [...env.daemonCommand, ...(options.uptime !== undefined ? ['--uptime', options.uptime] : [])],
      signal: stop.controller.signal,
      sysinfo: options.sysinfo,
      log,
    });
    cleanup.push('stop the private view daemon', () => daemon.stop());
    viewDir = daemon.viewDir;
    sysinfoSocket = daemon.sysinfoSocket;
  }
  stop.throwIfRequested();
  const layout = {
    ...(await sandboxLayout(viewDir, options.rootfs)),
    ...(sysinfoSocket !== undefined && { sysinfo: sysinfoLaunch(sysinfoSocket, env) }),
  };
  log.debug({ layout }, 'sandbox layout');

  const name = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const cgroup =
    host.version === 1
      ? await createV1Cgroup(host.hierarchies, name, options, log)
      : await createV2Cgroup(host.root, name, options, log);
  cleanup.push('remove the sandbox cgroup', () => cgroup.remove());
  log.debug({ cgroups: cgroup.leaves }, 'sandbox cgroup ready');
  stop.throwIfRequested();

  const timeNamespace = options.timeNamespace && existsSync('/proc/self/ns/time');
  const sandbox = startSandbox(
    launcherArgv({
      procsFiles: cgroup.procsFiles,
      timeNamespace,
      setupScript: renderSetupScript(layout),
      command: options.command,
    }),
  );
  const forcedKill = passStopSignals(sandbox, cgroup, stop, env);
  const exit = await sandbox.exit;
  return exitStatus(exit, stop, forcedKill());
}

/** How CMD is started under the sysinfo filter (see syscall/filter-exec.ts). */
function sysinfoLaunch(socket: string, env: RunEnvironment): SysinfoLaunch {
  const path = process.env.PATH ?? defaultPath;
  const program = (name: string) => {
    const found = findHostProgram(name, path);
    if (found === undefined) throw new RunError(`lxcfs-ts run needs '${name}' on the host; install coreutils`);
    return found;
  };
  return {
    filterExec: env.filterExecCommand,
    socket,
    id: `run-${process.pid}`,
    env: program('env'),
    chroot: program('chroot'),
  };
}

function exitStatus(exit: SandboxExit, stop: StopRequests, forcedKill: boolean): number {
  // Killed because `run` was told to stop: report the stop signal, as a shell does for an interrupted job.
  if (forcedKill && stop.signal) return exitStatusForSignal(stop.signal);
  const status = exit.signal ? exitStatusForSignal(exit.signal) : (exit.code ?? 125);
  if (!exit.ready) {
    if (stop.signal) return exitStatusForSignal(stop.signal);
    throw new RunError(`the sandbox could not be set up (status ${status}); see the message above`);
  }
  return status;
}

/**
 * First stop signal: passed on to CMD (a PID 1 only gets the signals it handles), then after the
 * grace period, or at a second signal, SIGKILL to PID 1 (which ends the whole pid namespace) and
 * to anything left in the cgroup. Returns whether that kill happened.
 */
function passStopSignals(
  sandbox: RunningSandbox,
  cgroup: SandboxCgroup,
  stop: StopRequests,
  env: RunEnvironment,
): () => boolean {
  let killed = false;
  let timer: NodeJS.Timeout | undefined;
  const killAll = () => {
    // Once the launcher is reaped its pid (and PID 1's) may be reused: only the cgroup's own pids are safe then.
    if (sandbox.hasExited()) return;
    killed = true;
    const pids = [sandbox.initPid(), sandbox.launcherPid, ...cgroup.pids()];
    for (const pid of pids) if (pid !== undefined) signalQuietly(pid, 'SIGKILL');
  };
  stop.onRequest((signal, repeated) => {
    if (sandbox.hasExited()) return;
    if (repeated) {
      env.log.debug({ signal }, 'second stop signal: killing the sandbox');
      killAll();
      return;
    }
    const init = sandbox.initPid();
    env.log.debug({ signal, init }, 'passing the stop signal to the sandbox');
    if (init !== undefined) signalQuietly(init, signal);
    timer = setTimeout(killAll, stopGraceMs);
  });
  const clear = () => clearTimeout(timer);
  sandbox.exit.then(clear, clear);
  return () => killed;
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

function checkCpuRequest(options: RunOptions, host: CgroupHost): void {
  if (options.cpuset === undefined && options.cpuQuota === undefined) return;
  const available = hostCpus(host);
  if (options.cpuset !== undefined) {
    const missing = options.cpuset.filter((cpu) => !available.includes(cpu));
    if (missing.length > 0) {
      throw new RunError(
        `--cpuset ${formatCpuList(options.cpuset)}: CPU ${formatCpuList(missing)} is not available on this host ` +
        `(available: ${formatCpuList(available)})`,
      );
    }
  }
  if (
    options.cpuQuota !== undefined &&
    options.cpuQuota.quotaUs > available.length * options.cpuQuota.periodUs
  ) {
    const cpus = options.cpuQuota.quotaUs / options.cpuQuota.periodUs;
    throw new RunError(`--cpus ${cpus}: this host has only ${available.length} CPUs`);
  }
}

/** The host binaries the sandbox is built with, with the package that provides them. */
function checkHostTools(options: RunOptions): void {
  const tools: [string, string][] = [
    ['sh', 'dash'],
    ['mount', 'mount (util-linux)'],
    ['umount', 'mount (util-linux)'],
    ['unshare', 'util-linux'],
    ['setpriv', 'util-linux'],
    ['env', 'coreutils'],
  ];
  if (options.rootfs !== undefined) tools.push(['chroot', 'coreutils']);
  for (const [tool, pkg] of tools) {
    try {
      checkCommand(tool, '/', '/', process.env.PATH ?? defaultPath);
    } catch {
      throw new RunError(`lxcfs-ts run needs '${tool}' on the host; install ${pkg}`);
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A FUSE read that cannot hang `run`: the view is another process and may be stuck. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RunError(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function checkView(viewDir: string): Promise<void> {
  const probe = join(viewDir, 'proc/meminfo');
  try {
    const content = await withDeadline(readFile(probe), 5000, `reading ${probe}`);
    if (content.length === 0) throw new Error('empty file');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new RunError(
      `--view ${viewDir}: cannot read ${probe} (${why}); is a view mounted there? (lxcfs-ts ${viewDir}, or lxcfs ${viewDir})`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Which view files get bound: each file of the catalog that the view serves (an older LXCFS has no
 * pressure files) and that the sandbox's own procfs has (pressure only where the kernel has PSI).
 */
async function sandboxLayout(viewDir: string, rootfs: string | undefined): Promise<SandboxLayout> {
  const procFiles: string[] = [];
  for (const file of procViewFiles) {
    const served = await withDeadline(
      exists(join(viewDir, file.path)),
      5000,
      `looking up ${file.path} in the view`,
    );
    if (served && existsSync(join('/proc', file.hostPath))) procFiles.push(file.path);
  }
  const cpuDirectory = await withDeadline(
    stat(join(viewDir, 'sys/devices/system/cpu')).then(
      (s) => s.isDirectory(),
      () => false,
    ),
    5000,
    'looking up sys/devices/system/cpu in the view',
  );
  return { ...(rootfs !== undefined && { rootfs }), viewDir, procFiles, cpuDirectory };
}
