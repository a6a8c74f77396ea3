/**
 * A view daemon that lives only as long as one `lxcfs-ts run`: started on a fresh temporary
 * mountpoint, waited for until its files are readable, stopped by pid and unmounted afterwards.
 *
 * Layout: `<tmp>/lxcfs-ts-run-<pid>-XXXXXX/` is bind-mounted on itself and made a shared mount, and the
 * daemon mounts the view at `<that>/view`. The sandbox binds that parent directory in as a slave,
 * so a view mounted there later on the host (a restarted daemon) propagates into the sandbox,
 * which is how a node's view directory reaches its containers (Kubernetes' HostToContainer).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/log.js';
import { parseMountinfo } from './cgroup-host.js';
import { runTool } from './host-tools.js';
import { errnoCode, RunError } from './run-error.js';

/** `lxcfs-ts` of this very installation: the node binary running us and the compiled cli.js next to this module. */
export function ownDaemonCommand(): string[] {
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  // --no-repair: a view private to one sandbox has no business in other containers' mounts.
  // --no-takeover: nor does any other agent have a reason to take it over.
  return [process.execPath, cli, '-f', '--enable-cfs', '-l', '--no-repair', '--no-takeover'];
}

/** The sysinfo filter installer of this installation (see syscall/filter-exec.ts). */
export function ownFilterExecCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('../syscall/filter-exec.js', import.meta.url))];
}

export interface PrivateDaemon {
  /** The mounted view. */
  readonly viewDir: string;
  /** The daemon's sysinfo socket, when it was asked to serve sysinfo(2). */
  readonly sysinfoSocket?: string;
  readonly pid: number;
  /** Stops the daemon (SIGTERM, then SIGKILL), unmounts whatever is left and removes the directories. */
  stop(): Promise<void>;
}

export interface PrivateDaemonOptions {
  /** The daemon's argv without pidfile and mountpoint, which are appended (`-p PIDFILE MOUNTPOINT`). */
  readonly command: readonly string[];
  readonly readyTimeoutMs?: number;
  /** Also serve sysinfo(2) on a socket of its own (outside the directory the sandbox sees). */
  readonly sysinfo?: boolean;
  /** Aborts the wait for readiness (Ctrl-C during start-up). */
  readonly signal?: AbortSignal;
  readonly log: Logger;
}

/** What the daemon printed last, kept to explain a failed start. */
class OutputTail {
  private text = '';
  append(chunk: Buffer): void {
    this.text = (this.text + chunk.toString('utf8')).slice(-8192);
  }

  lastLines(n: number): string {
    return this.text.trimEnd().split('\n').slice(-n).join('\n');
  }
}

export function isMounted(path: string, mountinfoPath = '/proc/self/mountinfo'): boolean {
  return parseMountinfo(readFileSync(mountinfoPath, 'utf8')).some((m) => m.mountPoint === path);
}

function fuseMountAt(path: string): boolean {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).some(
    (m) => m.mountPoint === path && (m.fsType === 'fuse' || m.fsType.startsWith('fuse.')),
  );
}

export async function startPrivateDaemon(options: PrivateDaemonOptions): Promise<PrivateDaemon> {
  const { log } = options;
  // Named after this process, so what a killed `run` left behind can be traced back to it.
  const parentDir = mkdtempSync(join(tmpdir(), `lxcfs-ts-run-${process.pid}-`));
  const viewDir = join(parentDir, 'view');
  // A pidfile of its own: LXCFS-style daemons refuse to start while another instance (the node's
  // own agent, say) holds the default one.
  const pidfile = join(parentDir, 'daemon.pid');
  const socketDir = options.sysinfo ? `${parentDir}-sysinfo` : undefined;
  const sysinfoSocket = socketDir !== undefined ? join(socketDir, 'sysinfo.sock') : undefined;
  let parentMounted = false;
  let child: ChildProcess | undefined;
  const output = new OutputTail();

  const stop = async () => {
    if (child) await stopChild(child, log);
    for (let i = 0; i < 3 && isMounted(viewDir); i++) await runTool(['umount', '-l', viewDir], log);
    if (parentMounted) await runTool(['umount', '-l', parentDir], log);
    rmSync(pidfile, { force: true });
    if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
    for (const dir of [viewDir, parentDir]) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT')
          log.warn({ dir, err: String(err) }, 'could not remove a temporary directory');
      }
    }
  };

  try {
    await runTool(['mount', '--bind', parentDir, parentDir], log, 'cannot bind-mount the view parent');
    parentMounted = true;
    await runTool(['mount', '--make-shared', parentDir], log, 'cannot make the view parent a shared mount');
    mkdirSync(viewDir);
    // setpriv: if `run` is killed outright, the daemon gets SIGTERM and unmounts its view.
    // Its own session keeps the terminal's Ctrl-C away from it: `run` stops it when the sandbox is gone.
    const sysinfoArgs = sysinfoSocket !== undefined ? ['--sysinfo-socket', sysinfoSocket] : [];
    const argv = ['setpriv', '--pdeathsig', 'TERM', '--', ...options.command, ...sysinfoArgs, '-p', pidfile, viewDir];
    log.debug({ argv }, 'starting the private view daemon');
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (chunk: Buffer) => output.append(chunk));
    child.stderr!.on('data', (chunk: Buffer) => output.append(chunk));
    await waitUntilServing(child, viewDir, sysinfoSocket, output, options);
    log.debug({ pid: child.pid, viewDir, sysinfoSocket }, 'private view daemon is serving');
    return { viewDir, pid: child.pid!, stop, ...(sysinfoSocket !== undefined && { sysinfoSocket }) };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitUntilServing(
  child: ChildProcess,
  viewDir: string,
  sysinfoSocket: string | undefined,
  output: OutputTail,
  options: PrivateDaemonOptions,
): Promise<void> {
  const timeoutMs = options.readyTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.once('exit', (code, signal) => {
    exited = signal ? `killed by ${signal}` : `exit status ${code}`;
  });
  const probe = join(viewDir, 'proc/meminfo');
  for (;;) {
    if (options.signal?.aborted) throw new RunError('interrupted while the view daemon was starting');
    if (spawnError) throw new RunError(`cannot start the view daemon: ${spawnError.message}`);
    if (exited !== undefined) {
      throw new RunError(
        `the view daemon stopped before serving (${exited}); its last output:\n${output.lastLines(20)}`,
      );
    }
    if (fuseMountAt(viewDir)) {
      // Read off the main thread, with a deadline: a daemon that mounted but never answers must not hang us.
      // (Unref'd timers: a race's losing timer must not keep `run` alive after it is done.)
      const content = await Promise.race([
        readFile(probe).catch(() => undefined),
        sleep(1000, undefined, { ref: false }),
      ]);
      // The sysinfo socket's file appears when the daemon listens on it.
      const socketReady = sysinfoSocket === undefined || existsSync(sysinfoSocket);
      if (content !== undefined && content.length > 0 && socketReady) return;
    }
    if (Date.now() > deadline) {
      throw new RunError(
        `the view daemon did not serve ${probe}${sysinfoSocket !== undefined ? ` and ${sysinfoSocket}` : ''} within ${timeoutMs / 1000} s; its last output:\n${output.lastLines(20)}`,
      );
    }
    await sleep(50);
  }
}

async function stopChild(child: ChildProcess, log: Logger): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitExit = (ms: number) => Promise.race([exited.then(() => true), sleep(ms, false, { ref: false })]);
  child.kill('SIGTERM');
  if (await waitExit(5000)) return;
  log.warn({ pid: child.pid }, 'the private view daemon ignored SIGTERM; killing it');
  child.kill('SIGKILL');
  await waitExit(5000);
}
