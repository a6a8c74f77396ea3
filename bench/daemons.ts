/**
 * Starting the two daemons a benchmark compares (Debian's lxcfs and lxcfs-ts) on scratch
 * mountpoints, pinning them, and reading their CPU time and memory from /proc.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface BenchDaemon {
  name: string;
  mountpoint: string;
  child: ChildProcess;
  /** Every process of the daemon (lxcfs-ts: supervisor and serving process). */
  pids(): number[];
  stop(): Promise<void>;
}

const cli = new URL('../src/cli.js', import.meta.url).pathname;

export async function startDaemons(workdir: string, flags: string[], oursFlags: string[] = []): Promise<BenchDaemon[]> {
  const daemons = [startLxcfs(workdir, 'lxcfs', flags), startOurs(workdir, 'lxcfs-ts', [...flags, ...oursFlags])];
  for (const d of daemons) await waitServing(d);
  return daemons;
}

/** Debian's lxcfs on `<workdir>/<name>`, in the foreground (call waitServing before reading). */
export function startLxcfs(workdir: string, name: string, flags: string[]): BenchDaemon {
  const mountpoint = join(workdir, name);
  mkdirSync(mountpoint, { recursive: true });
  return start(name, '/usr/bin/lxcfs', ['-f', ...flags, '-p', join(workdir, `${name}.pid`), mountpoint], mountpoint);
}

/** lxcfs-ts (supervisor and serving process) on `<workdir>/<name>` (call waitServing before reading). */
export function startOurs(workdir: string, name: string, flags: string[]): BenchDaemon {
  const mountpoint = join(workdir, name);
  try {
    mkdirSync(mountpoint, { recursive: true });
  } catch (err) {
    // A dead mount left by a killed daemon: the new one detaches it at start.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTCONN' && code !== 'ECONNABORTED') throw err;
  }
  return start(name, process.execPath, [cli, '--log-level', 'warn', ...flags, mountpoint], mountpoint);
}

function start(name: string, command: string, args: string[], mountpoint: string): BenchDaemon {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  return {
    name,
    mountpoint,
    child,
    pids: () => processTree(child.pid!),
    async stop() {
      // Each daemon unmounts its own view on SIGTERM: give it the time to, so that it does not
      // find its mount gone (and log a failed unmount); only then force what is left.
      const exited = child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        process.kill(child.pid!, 'SIGTERM');
      } catch {
        // gone already
      }
      await Promise.race([exited, sleep(3000, undefined, { ref: false })]);
      spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    },
  };
}

export async function waitServing(d: BenchDaemon): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      if (readFileSync(join(d.mountpoint, 'proc/meminfo')).length > 0) return;
    } catch {
      // not yet
    }
    if (d.child.exitCode !== null) throw new Error(`${d.name} exited with ${d.child.exitCode}`);
    await sleep(50);
  }
  throw new Error(`${d.name} did not start serving within 15 s`);
}

/** The pid and all its descendants. */
export function processTree(root: number): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    const kids = spawnSync('pgrep', ['-P', String(out[i])], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean);
    out.push(...kids.map(Number));
  }
  return out;
}

/** Pins every thread of every process of the daemon to the given CPU list. */
export function pin(d: BenchDaemon, cpus: string): void {
  for (const pid of d.pids())
    spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** User+system CPU seconds of all the daemon's processes (threads included). */
export function cpuSeconds(d: BenchDaemon): number {
  const ticks = 100; // USER_HZ
  let total = 0;
  for (const pid of d.pids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
    } catch {
      // exited
    }
  }
  return total;
}

/**
 * Memory (MiB) of each of the daemon's processes: resident now and at peak, and the proportional
 * share (PSS), which counts pages shared between processes (the node binary) only once overall.
 */
export function memory(d: BenchDaemon): { pid: number; rssMiB: number; peakMiB: number; pssMiB: number; threads: number }[] {
  return d.pids().flatMap((pid) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      return [
        {
          pid,
          rssMiB: kb(status, 'VmRSS') / 1024,
          peakMiB: kb(status, 'VmHWM') / 1024,
          pssMiB: kb(rollup, 'Pss') / 1024,
          threads: readdirSync(`/proc/${pid}/task`).length,
        },
      ];
    } catch {
      return [];
    }
  });
}
