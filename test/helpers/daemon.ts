/**
 * Starts and stops real lxcfs-ts daemons for integration tests, and always cleans up: the whole
 * process group is killed by pid and the mount is detached even when a test fails half-way.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const cliPath = new URL('../../src/cli.js', import.meta.url).pathname;

export interface RunningDaemon {
  child: ChildProcess;
  pid: number;
  mountpoint: string;
  workdir: string;
  /** Everything the daemon wrote to stderr so far (JSON log lines). */
  stderr(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Kills everything left and detaches the mount; safe to call twice. */
  cleanup(): void;
}

export function isMounted(mountpoint: string): boolean {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .some((line) => line.split(' ')[4] === mountpoint && line.includes(' - fuse.lxcfs '));
}

export async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function exitOf(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** The serving process of a daemon (the supervisor's node child). */
export function serverPidOf(supervisorPid: number): number | null {
  const result = spawnSync('pgrep', ['-P', String(supervisorPid)], { encoding: 'utf8' });
  const pids = result.stdout.split('\n').filter(Boolean).map(Number);
  return pids[0] ?? null;
}

export async function startDaemon(
  args: string[] = [],
  options: { mountpoint?: string; shareParent?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningDaemon> {
  const workdir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-test-'));
  const mountpoint = options.mountpoint ?? join(workdir, 'mnt');
  // The health endpoint is off unless a test asks for it: tests run daemons side by side.
  const health = args.includes('--health-address') ? [] : ['--health-address', 'off'];
  // Making the parent a shared bind of itself is a host mount that outlives the daemon: only for
  // tests that manage the parent directory themselves.
  const shareParent = options.shareParent ? [] : ['--no-share-parent'];
  const child = spawn(process.execPath, [cliPath, ...health, ...shareParent, ...args, mountpoint], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // own process group, so cleanup reaches the serving process too
    ...(options.env && { env: { ...process.env, ...options.env } }),
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const daemon: RunningDaemon = {
    child,
    pid: child.pid!,
    mountpoint,
    workdir,
    stderr: () => stderr,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exitOf(child, timeoutMs);
    },
    cleanup() {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      spawnSync('umount', ['-l', mountpoint]);
      rmSync(workdir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`lxcfs-ts to serve ${mountpoint}`, () => {
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${stderr}`);
      if (!isMounted(mountpoint)) return false;
      try {
        return readFileSync(join(mountpoint, 'proc/meminfo')).length > 0;
      } catch {
        return false;
      }
    });
  } catch (err) {
    daemon.cleanup();
    throw err;
  }
  return daemon;
}
