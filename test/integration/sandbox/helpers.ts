/**
 * Shared pieces of the `lxcfs-ts run` integration tests: running the real executable, a view
 * backed by Debian's lxcfs (the `--view` code path), and a census of what a run may leave behind
 * (cgroup directories, mounts, processes) so every test can assert that nothing is.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
export const lxcfsTs = join(repoRoot, 'bin/lxcfs-ts');

/** Integration tests need root; in CI that is a failure, on a developer's machine a skip. */
export function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('integration tests must run as root in CI');
  t.skip('needs root');
  return false;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningCommand {
  readonly child: ChildProcess;
  readonly result: Promise<RunResult>;
  /** What it printed on stdout so far. */
  output(): string;
}

/** Starts `lxcfs-ts ARGS` (the installed launcher, as users run it) with a hard time limit. */
export function startLxcfsTs(args: readonly string[], timeoutMs = 60_000): RunningCommand {
  const child = spawn(lxcfsTs, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = new Promise<RunResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal: signal as NodeJS.Signals | null, stdout, stderr });
    });
  });
  return { child, result, output: () => stdout };
}

export function runLxcfsTs(args: readonly string[], timeoutMs?: number): Promise<RunResult> {
  return startLxcfsTs(args, timeoutMs).result;
}

/** `key=value` lines printed by a sandbox script, as a map. */
export function keyValues(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) map.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  return map;
}

export function mountinfo(): string {
  return readFileSync('/proc/self/mountinfo', 'utf8');
}

/** Polls `check` until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const cgroupRoot = '/sys/fs/cgroup';

/** Sandbox cgroup directories made by the `run` process with this pid (they are named `<pid>-<random>`). */
export function sandboxCgroups(runPid: number): string[] {
  const found: string[] = [];
  const roots = existsSync(join(cgroupRoot, 'cgroup.controllers'))
    ? [cgroupRoot]
    : readdirSync(cgroupRoot).map((name) => join(cgroupRoot, name));
  for (const root of roots) {
    const parent = join(root, 'lxcfs-ts');
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent)) if (name.startsWith(`${runPid}-`)) found.push(join(parent, name));
  }
  return found;
}

/** Processes whose command line contains `token` (every sandbox test marks its CMD with one). */
export function processesWith(token: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(token)) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** A token unique to one test, to find its processes. */
export function uniqueToken(label: string): string {
  return `lxcfs-ts-it-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Mount points of the private daemon of the `run` with this pid (its directory is `<tmp>/lxcfs-ts-run-<pid>-XXXXXX`). */
export function privateDaemonMounts(runPid: number): string[] {
  return mountinfo()
    .split('\n')
    .filter((line) => line.includes(`/lxcfs-ts-run-${runPid}-`))
    .map((line) => line.split(' ')[4]!);
}

/** Processes of the private daemon of the `run` with this pid. */
export function privateDaemonProcesses(runPid: number): number[] {
  return processesWith(`/lxcfs-ts-run-${runPid}-`);
}

/** Temporary directories of the private daemon of the `run` with this pid. */
export function privateDaemonDirectories(runPid: number): string[] {
  return readdirSync(tmpdir())
    .filter((name) => name.startsWith(`lxcfs-ts-run-${runPid}-`))
    .map((name) => join(tmpdir(), name));
}

/**
 * Asserts that the run with this pid left nothing behind: no cgroup, no mount, directory or
 * process of its private daemon, no process carrying the test's token. Waits briefly: the kernel
 * reaps asynchronously.
 */
export async function assertNothingLeft(runPid: number, token: string): Promise<void> {
  const left = () => {
    const cgroups = sandboxCgroups(runPid);
    const mounts = privateDaemonMounts(runPid);
    const directories = privateDaemonDirectories(runPid);
    const processes = [...processesWith(token), ...privateDaemonProcesses(runPid)];
    const count = cgroups.length + mounts.length + directories.length + processes.length;
    return count === 0 ? undefined : { cgroups, mounts, directories, processes };
  };

  try {
    // Generous: on a loaded machine the kernel may take a few seconds to reap everything.
    await waitFor('the sandbox to be gone', () => left() === undefined, 10_000);
  } catch {
    throw new Error(`the run left things behind: ${JSON.stringify(left())}`);
  }
}

/**
 * A view served by Debian's lxcfs (`lxcfs -f --enable-cfs -l`), laid out as a node agent does it:
 * `<parent>/view`, where `<parent>` is a shared bind mount, so mounts made under it later propagate
 * into sandboxes. Stopped by pid; everything is unmounted and removed by `stop`.
 */
export interface LxcfsView {
  readonly parent: string;
  readonly viewDir: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Debian's lxcfs serving `viewDir` (an empty directory), stopped by pid and unmounted by `stop`. */
export async function startLxcfsDaemon(viewDir: string): Promise<{ pid: number; stop(): Promise<void> }> {
  if (!existsSync('/usr/bin/lxcfs'))
    throw new Error('Debian lxcfs is not installed: run scripts/install-test-deps');
  // Its own pidfile: lxcfs refuses to start while another instance holds the default /run/lxcfs.pid.
  const pidfile = join(tmpdir(), `lxcfs-ts-it-${process.pid}-${Math.random().toString(36).slice(2, 8)}.pid`);
  const child = spawn('/usr/bin/lxcfs', ['-f', '--enable-cfs', '-l', '-p', pidfile, viewDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    while (mountinfo().includes(` ${viewDir} `)) {
      if (spawnSync('umount', ['-l', viewDir]).status !== 0) break;
    }
    rmSync(pidfile, { force: true });
  };
  try {
    await waitFor('lxcfs to serve its view', () => {
      if (child.exitCode !== null) throw new Error(`lxcfs exited with status ${child.exitCode}: ${stderr}`);
      try {
        return readFileSync(join(viewDir, 'proc/meminfo'), 'utf8').startsWith('MemTotal:');
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: child.pid!, stop };
}

export async function startLxcfsView(label: string): Promise<LxcfsView> {
  const parent = mkdtempSync(join(tmpdir(), `lxcfs-ts-it-${label}-`));
  const viewDir = join(parent, 'view');
  const must = (argv: string[]) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  };
  must(['mount', '--bind', parent, parent]);
  must(['mount', '--make-shared', parent]);
  mkdirSync(viewDir);
  const removeParent = () => {
    while (mountinfo().includes(` ${parent} `)) {
      if (spawnSync('umount', ['-l', parent]).status !== 0) break;
    }
    for (const dir of [viewDir, parent]) if (existsSync(dir)) rmdirSync(dir);
  };
  let daemon: Awaited<ReturnType<typeof startLxcfsDaemon>>;
  try {
    daemon = await startLxcfsDaemon(viewDir);
  } catch (err) {
    removeParent();
    throw err;
  }
  const stop = async () => {
    await daemon.stop();
    removeParent();
  };
  return { parent, viewDir, pid: daemon.pid, stop };
}

/**
 * Which view the tests run sandboxes against: the private lxcfs-ts daemon that `run` starts by
 * itself, or a `--view` backed by Debian's lxcfs. Tests of what programs see (`views`) need a
 * daemon that serves container views; tests of mounts, cgroups, signals and cleanup (`mounts`)
 * only need one that serves. The private daemon is used as soon as it can do what the test needs;
 * LXCFS_TS_TEST_VIEW=private|lxcfs forces a choice.
 */
export interface ViewBackend {
  readonly name: 'private' | 'lxcfs';
  /** Options to pass to `run` before CMD. */
  readonly runArgs: readonly string[];
  /** The view's parent directory when known up front (lxcfs); the private one exists only during a run. */
  readonly parent: string | undefined;
  stop(): Promise<void>;
}

async function ownDaemonServes(): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-probe-'));
  const daemon = startLxcfsTs(['-f', '--enable-cfs', '-l', dir], 10_000);
  try {
    await waitFor(
      'the lxcfs-ts daemon',
      () => {
        if (daemon.child.exitCode !== null) throw new Error('exited');
        try {
          return readFileSync(join(dir, 'proc/meminfo'), 'utf8').startsWith('MemTotal:');
        } catch {
          return false;
        }
      },
      5000,
    );
    return true;
  } catch {
    return false;
  } finally {
    daemon.child.kill('SIGTERM');
    await Promise.race([daemon.result, sleep(5000, undefined, { ref: false })]);
    if (mountinfo().includes(` ${dir} `)) spawnSync('umount', ['-l', dir]);
    rmdirSync(dir);
  }
}

/** Whether `run` with its private daemon shows a sandbox its own memory limit. */
async function ownDaemonServesViews(): Promise<boolean> {
  const result = await runLxcfsTs(['run', '--memory', '64M', '--', 'cat', '/proc/meminfo'], 30_000);
  return /^MemTotal: +65536 kB$/m.test(result.stdout);
}

export async function viewBackend(label: string, needs: 'views' | 'mounts'): Promise<ViewBackend> {
  const forced = process.env.LXCFS_TS_TEST_VIEW;
  let name: 'private' | 'lxcfs';
  if (forced === 'private' || forced === 'lxcfs') name = forced;
  else if (needs === 'mounts') name = (await ownDaemonServes()) ? 'private' : 'lxcfs';
  else name = (await ownDaemonServesViews()) ? 'private' : 'lxcfs';
  const why =
    name === 'private'
      ? 'run\'s private lxcfs-ts daemon'
      : `lxcfs --view (the lxcfs-ts daemon does not serve ${needs === 'views' ? 'container views' : 'a view'} yet)`;
  console.log(`# ${label}: sandboxes use ${forced ? 'the forced' : 'the'} backend: ${why}`);
  if (name === 'private') return { name, runArgs: [], parent: undefined, stop: async () => {} };
  const view = await startLxcfsView(label);
  return { name, runArgs: ['--view', view.viewDir], parent: view.parent, stop: view.stop };
}
