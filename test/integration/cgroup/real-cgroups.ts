import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';

/**
 * Real cgroup v1 hierarchies on this machine: test cgroups named after the test and its pid,
 * processes moved into them, and a cleanup that kills what is left inside and removes them.
 */
export const cgroupRoot = '/sys/fs/cgroup';
export const v1Controllers = ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids'] as const;

/** Fails (also under CI) when the host cannot run these tests; never skips silently. */
export function requireRootAndV1(): void {
  assert.equal(process.getuid?.(), 0, 'integration tests need root (run as root, or in CI as root)');
  for (const c of v1Controllers) {
    assert.ok(
      existsSync(`${cgroupRoot}/${c}/cgroup.procs`),
      `cgroup v1 hierarchy ${c} is not mounted at ${cgroupRoot}/${c}`,
    );
  }
}

export class TestCgroups {
  readonly created: string[] = [];
  readonly children: ChildProcess[] = [];

  constructor(readonly name: string) {}

  /** Creates `<controller>/<name>/<sub>` for every v1 controller and returns the cgroup path. */
  create(sub = ''): string {
    const path = `/${this.name}${sub ? `/${sub}` : ''}`;
    for (const c of v1Controllers) {
      const dir = `${cgroupRoot}/${c}${path}`;
      mkdirSync(dir);
      this.created.push(dir);
      if (c === 'cpuset') {
        const parent = dir.slice(0, dir.lastIndexOf('/'));
        writeFileSync(`${dir}/cpuset.mems`, readFileSync(`${parent}/cpuset.mems`));
        writeFileSync(`${dir}/cpuset.cpus`, readFileSync(`${parent}/cpuset.cpus`));
      }
    }
    return path;
  }

  set(controller: string, path: string, file: string, value: string): void {
    writeFileSync(`${cgroupRoot}/${controller}${path}/${file}`, value);
  }

  /**
   * Runs `command` (a shell command line) after moving the shell into `path` in every controller
   * (`memoryPath` may put it elsewhere in the memory hierarchy). Returns the child; its processes
   * are killed by cleanup().
   */
  run(path: string, command: string, memoryPath = path): ChildProcess {
    const moves = v1Controllers
      .map((c) => `echo $$ > ${cgroupRoot}/${c}${c === 'memory' ? memoryPath : path}/cgroup.procs`)
      .join(' && ');
    const child = spawn('sh', ['-c', `${moves} && exec ${command}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.children.push(child);
    return child;
  }

  /** Waits until `count` processes are in the cgroup (memory hierarchy) and returns them ascending. */
  async waitForProcs(path: string, count: number, timeoutMs = 5000): Promise<number[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const pids = procsOf(`${cgroupRoot}/memory${path}`);
      if (pids.length >= count) return pids;
      if (Date.now() > until) throw new Error(`only ${pids.length} of ${count} processes arrived in ${path}`);
      await sleep(20);
    }
  }

  /** Kills every process left in the test cgroups (SIGKILL: a pid namespace's init ignores SIGTERM), then removes them. */
  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    const until = Date.now() + 5000;
    for (;;) {
      let left = 0;
      for (const dir of this.created) {
        for (const pid of procsOf(dir)) {
          left++;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      if (left === 0 || Date.now() > until) break;
      await sleep(20);
    }
    for (const dir of [...this.created].reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // leave nothing behind if possible; a busy cgroup is reported by the next run's mkdir
      }
    }
    this.created.length = 0;
  }
}

export function procsOf(dir: string): number[] {
  try {
    return readFileSync(`${dir}/cgroup.procs`, 'latin1')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** The host pid of the process that is PID `nsPid` in the pid namespace of `anyPid`'s children. */
export function nsPidToHost(candidates: number[], nsPid: number): number {
  for (const pid of candidates) {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const nspid = /\nNSpid:\s*([^\n]*)/.exec(status)![1]!.trim().split(/\s+/).map(Number);
    if (nspid.length > 1 && nspid[nspid.length - 1] === nsPid) return pid;
  }
  throw new Error(`no process is pid ${nsPid} of a child namespace among ${candidates}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function field(text: string, key: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${key}:`));
  if (line === undefined) throw new Error(`no ${key} line in:\n${text}`);
  return Number(
    line
      .slice(key.length + 1)
      .trim()
      .split(/\s+/)[0],
  );
}
