/**
 * Pieces of the fault-injection tests: a node's view layout (a parent directory holding the
 * mountpoint, as /var/lib/lxcfs-ts/view on a node), daemons on it, sandboxes (`lxcfs-ts run
 * --view`) whose output lines are timestamped as they arrive, a static probe for a rootfs without
 * shell or mount, and a cleanup that leaves nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningDaemon, serverPidOf, startDaemon } from '../../helpers/daemon.js';
import { mountinfo, type RunningCommand, startLxcfsTs, waitFor } from '../sandbox/helpers.js';

export { waitFor };

const probeSource = fileURLToPath(new URL('../../../../test/fixtures/sandbox/probe.c', import.meta.url));
export const viewReader = fileURLToPath(new URL('./view-reader.js', import.meta.url));

function must(argv: string[]): void {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr || result.error}`);
}

/** Unmounts everything mounted at `path` (stacked mounts included). */
function unmountAll(path: string): void {
  for (let i = 0; i < 10 && mountinfo().split('\n').some((l) => l.split(' ')[4] === path); i++) {
    if (spawnSync('umount', ['-l', path]).status !== 0) break;
  }
}

/**
 * A node's layout: `<parent>/view` is the mountpoint. The daemon makes `<parent>` a shared mount
 * (this host's root is private), and sandboxes get `<parent>` with rslave propagation.
 */
export class ViewNode {
  readonly parent: string;
  readonly mountpoint: string;
  readonly work: string;
  private readonly daemons: RunningDaemon[] = [];
  private readonly sandboxes: Sandbox[] = [];

  constructor(label: string) {
    this.work = mkdtempSync(join(tmpdir(), `lxcfs-ts-it-resilience-${label}-`));
    this.parent = join(this.work, 'node');
    this.mountpoint = join(this.parent, 'view');
    mkdirSync(this.parent);
  }

  async startDaemon(args: string[] = [], env?: NodeJS.ProcessEnv): Promise<RunningDaemon> {
    const daemon = await startDaemon(args, { mountpoint: this.mountpoint, shareParent: true, ...(env && { env }) });
    this.daemons.push(daemon);
    return daemon;
  }

  /** Everything every daemon started here wrote so far. */
  daemonLogs(): string {
    return this.daemons.map((d) => d.stderr()).join('\n');
  }

  /** A static probe binary, and a rootfs holding only it. */
  buildProbe(): { probe: string; rootfs: string } {
    const probe = join(this.work, 'probe');
    const rootfs = join(this.work, 'rootfs');
    if (!existsSync(probe)) {
      must(['cc', '-static', '-O2', '-o', probe, probeSource]);
      mkdirSync(rootfs);
      must(['cp', probe, join(rootfs, 'probe')]);
    }
    return { probe, rootfs };
  }

  /** `lxcfs-ts run --view <mountpoint> --memory <MiB>M [RUN_ARGS] -- CMD...`. */
  startSandbox(label: string, memoryMiB: number, command: string[], runArgs: string[] = []): Sandbox {
    const sandbox = new Sandbox(
      label,
      memoryMiB,
      startLxcfsTs(['run', '--view', this.mountpoint, '--memory', `${memoryMiB}M`, ...runArgs, '--', ...command], 600_000),
    );
    this.sandboxes.push(sandbox);
    return sandbox;
  }

  /** A sandbox printing the first line of its /proc/meminfo every `everyMs`, from the static probe. */
  startWatcher(label: string, memoryMiB: number, options: { rootfs?: boolean; everyMs?: number } = {}): Sandbox {
    const { probe, rootfs } = this.buildProbe();
    const watch = ['watch', '/proc/meminfo', '1000000', String(options.everyMs ?? 20), label];
    return options.rootfs
      ? this.startSandbox(label, memoryMiB, ['/probe', ...watch], ['--rootfs', rootfs])
      : this.startSandbox(label, memoryMiB, [probe, ...watch]);
  }

  /** Stops every sandbox and daemon, unmounts the view and the parent, removes the directories. */
  async cleanup(): Promise<void> {
    await Promise.all(this.sandboxes.map((s) => s.stop()));
    for (const daemon of this.daemons) daemon.cleanup();
    unmountAll(this.mountpoint);
    unmountAll(this.parent);
    rmSync(this.work, { recursive: true, force: true });
  }
}

export interface Line {
  /** Arrival time (Date.now()). */
  readonly at: number;
  readonly text: string;
}

/** A running `lxcfs-ts run`, with its stdout lines timestamped on arrival. */
export class Sandbox {
  readonly lines: Line[] = [];
  private partial = '';

  constructor(
    readonly label: string,
    readonly memoryMiB: number,
    readonly run: RunningCommand,
  ) {
    run.child.stdout!.on('data', (chunk: Buffer) => {
      const at = Date.now();
      const parts = (this.partial + chunk.toString('utf8')).split('\n');
      this.partial = parts.pop()!;
      for (const text of parts) this.lines.push({ at, text });
    });
  }

  /** The MemTotal line a view shows this sandbox. */
  get limitLine(): RegExp {
    return new RegExp(`^MemTotal: +${this.memoryMiB * 1024} kB$`);
  }

  /** The process inside the sandbox whose command line contains `label`, as seen from the host. */
  hostPid(): number | undefined {
    for (const name of readdirPids()) {
      try {
        const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
        if (cmdline.includes(this.label) && !cmdline.includes('lxcfs-ts-sandbox') && !cmdline.includes('cli.js')) return name;
      } catch {
        // gone
      }
    }
    return undefined;
  }

  async stop(): Promise<void> {
    if (this.run.child.exitCode === null && this.run.child.signalCode === null) this.run.child.kill('SIGTERM');
    await this.run.result;
  }
}

function readdirPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** Waits until every sandbox printed the line `marker`; fails at once if one ended before. */
export async function waitForAll(sandboxes: readonly Sandbox[], marker: string): Promise<void> {
  await waitFor(`every sandbox to print ${marker}`, () =>
    sandboxes.every((s) => {
      if (s.run.child.exitCode !== null) throw new Error(`${s.label} ended early: ${s.lines.map((l) => l.text).join('\n')}`);
      return s.lines.some((l) => l.text === marker);
    }),
  );
}

/**
 * SIGKILLs the daemon's serving process `times` times, `everyMs` apart, each time waiting for the
 * supervisor's new one. Returns the killed pids.
 */
export async function killServingProcesses(daemonPid: number, times: number, everyMs: number): Promise<number[]> {
  const killed: number[] = [];
  for (let round = 0; round < times; round++) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    const server = serverPidOf(daemonPid);
    if (server === null) throw new Error('no serving process is running');
    process.kill(server, 'SIGKILL');
    killed.push(server);
    await waitFor('a new serving process', () => {
      const next = serverPidOf(daemonPid);
      return next !== null && !killed.includes(next);
    });
  }
  return killed;
}

/**
 * Each sandbox's exit (asserted 0) and its last line, parsed as JSON (the reader's summary).
 * A sandbox still running `deadlineMs` after the call is a hung reader: that fails at once,
 * naming it and its last line, instead of running into the test runner's timeout.
 */
export async function summaries<T>(sandboxes: readonly Sandbox[], deadlineMs = 120_000): Promise<T[]> {
  const out: T[] = [];
  const deadline = Date.now() + deadlineMs;
  for (const sandbox of sandboxes) {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const last = sandbox.lines.at(-1);
        reject(new Error(`${sandbox.label} still running ${deadlineMs / 1000} s after its loop should have ended; last line: ${last?.text ?? '(none)'}`));
      }, Math.max(0, deadline - Date.now()));
    });
    const exit = await Promise.race([sandbox.run.result, hung]).finally(() => clearTimeout(timer));
    if (exit.code !== 0) throw new Error(`${sandbox.label} exited ${exit.code}: ${exit.stderr}`);
    out.push(JSON.parse(sandbox.lines.at(-1)!.text) as T);
  }
  return out;
}

/** The host's own MemTotal line (what a sandbox reads once the view is not bound). */
export function hostMemTotalLine(): string {
  return readFileSync('/proc/meminfo', 'utf8').split('\n')[0]!;
}

/**
 * When a sandbox's reads came back for good: the index (in `sandbox.lines`) of the first line
 * after `since` from which on every line matches `good` (at least `settle` of them), or
 * undefined if not yet. Lines that arrived in one chunk share their arrival time, so what came
 * after the recovery is told by this index, never by time.
 */
export function recoveryIndex(sandbox: Sandbox, since: number, good: RegExp, settle = 10): number | undefined {
  let firstGood = -1;
  for (let i = 0; i < sandbox.lines.length; i++) {
    const line = sandbox.lines[i]!;
    if (line.at < since) continue;
    if (!good.test(line.text)) firstGood = -1;
    else if (firstGood < 0) firstGood = i;
  }
  if (firstGood < 0 || sandbox.lines.length - firstGood < settle) return undefined;
  return firstGood;
}

/** The arrival time of the line recoveryIndex() finds. */
export function recoveredAt(sandbox: Sandbox, since: number, good: RegExp, settle = 10): number | undefined {
  const index = recoveryIndex(sandbox, since, good, settle);
  return index === undefined ? undefined : sandbox.lines[index]!.at;
}

/** Lines from the one at `index` on that are none of the given kinds. */
export function linesFromIndex(sandbox: Sandbox, index: number, ...kinds: (RegExp | string)[]): string[] {
  return sandbox.lines
    .slice(index)
    .map((l) => l.text)
    .filter((text) => !kinds.some((k) => (typeof k === 'string' ? text === k : k.test(text))));
}

/** Lines since `since` that are neither of the given kinds (a failed read prints `missing`). */
export function linesOtherThan(sandbox: Sandbox, since: number, ...kinds: (RegExp | string)[]): string[] {
  return sandbox.lines
    .filter((l) => l.at >= since)
    .map((l) => l.text)
    .filter((text) => !kinds.some((k) => (typeof k === 'string' ? text === k : k.test(text))));
}

/** The view binds (files and directories) a process's mount namespace holds, as its mountinfo lists them. */
export function viewBinds(pid: number): { mountpoint: string; device: string }[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
    .split('\n')
    .filter((line) => line.includes(' - fuse.lxcfs '))
    .map((line) => line.split(' '))
    .filter((f) => f[3] !== '/')
    .map((f) => ({ mountpoint: f[4]!, device: f[2]! }));
}

/** A loopback TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Regular files under `dir`, relative to it. */
export function regularFiles(dir: string, prefix = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) found.push(...regularFiles(dir, path));
    else found.push(path);
  }
  return found;
}
