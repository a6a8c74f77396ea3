/**
 * Container-like cgroups for benchmarks on a cgroup v1 host: one directory per container under
 * `<hierarchy>/lxcfs-ts-bench-<pid>/` in each hierarchy the views read (memory, cpu, cpuacct,
 * cpuset, blkio, pids), each holding sleeping tasks, like a pod's container on a full node.
 * Only the directories made here are ever emptied and removed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const controllers = ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids'];

export class BenchCgroups {
  /** The mounted hierarchies (a joint `cpu,cpuacct` mount counts once). */
  readonly hierarchies: string[];
  private readonly bases: string[];
  private readonly made = new Set<number>();
  private readonly shells = new Map<number, ChildProcess>();

  constructor(
    private readonly tasks: number,
    /** How long the sleeping tasks live at most, should everything else fail. */
    private readonly lifetimeSec: number,
  ) {
    const found = controllers
      .map((c) => `/sys/fs/cgroup/${c}`)
      .filter((dir) => existsSync(join(dir, 'cgroup.procs')) && !existsSync(join(dir, 'cgroup.controllers')));
    if (!found.some((d) => d.endsWith('/memory'))) {
      throw new Error(
        'no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory: this benchmark needs a cgroup v1 host ' +
        '(the views of a v2 host are measured in the guest tier)',
      );
    }
    this.hierarchies = [...new Set(found.map((d) => realpathSync(d)))];
    this.bases = this.hierarchies.map((h) => join(h, `lxcfs-ts-bench-${process.pid}`));
    for (const base of this.bases) {
      mkdirSync(base);
      if (base.includes('cpuset')) inheritCpuset(base);
    }
  }

  /** The container's directory in every hierarchy. */
  dirs(i: number): string[] {
    return this.bases.map((b) => join(b, `c${i}`));
  }

  /** A shell prefix that moves the shell into container i (then `exec` what should run there). */
  joinScript(i: number): string {
    return this.dirs(i).map((d) => `echo $$ > ${d}/cgroup.procs`).join('; ');
  }

  count(): number {
    return this.made.size;
  }

  /** Makes containers [from, to) with their sleeping tasks; returns when every task is in place. */
  async create(from: number, to: number): Promise<void> {
    const batch = 50; // shells starting at once
    for (let start = from; start < to; start += batch) {
      const ids = Array.from({ length: Math.min(batch, to - start) }, (_, k) => start + k);
      for (const i of ids) {
        for (const dir of this.dirs(i)) {
          mkdirSync(dir);
          if (dir.includes('cpuset')) inheritCpuset(dir);
        }
        this.made.add(i);
        const forks = Array.from({ length: this.tasks - 1 }, () => `sleep ${this.lifetimeSec} &`).join(' ');
        const shell = spawn('sh', ['-c', `${this.joinScript(i)}; ${forks} exec sleep ${this.lifetimeSec}`], {
          stdio: 'ignore',
        });
        shell.unref();
        this.shells.set(i, shell);
      }
      for (const i of ids) {
        const deadline = Date.now() + 10_000;
        while (this.procs(i).length < this.tasks) {
          if (Date.now() > deadline) throw new Error(`container c${i} did not get its ${this.tasks} tasks in 10 s`);
          await sleep(10);
        }
      }
    }
  }

  /** The processes in container i (its memory directory; every hierarchy holds the same ones). */
  procs(i: number): number[] {
    return this.procsIn(this.dirs(i)[0]!);
  }

  private procsIn(dir: string): number[] {
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'latin1').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Kills container i's processes and removes its directories. */
  async remove(ids: number[]): Promise<void> {
    for (const i of ids) this.shells.get(i)?.kill('SIGKILL');
    for (let attempt = 0; attempt < 200; attempt++) {
      let left = 0;
      for (const i of ids) {
        for (const dir of this.dirs(i)) {
          for (const pid of this.procsIn(dir)) {
            left++;
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              // exited already
            }
          }
        }
      }
      if (left === 0) break;
      await sleep(25);
    }
    for (const i of ids) {
      for (const dir of this.dirs(i)) {
        try {
          rmdirSync(dir);
        } catch {
          // reported by removeAll if it stays
        }
      }
      this.made.delete(i);
      this.shells.delete(i);
    }
  }

  /** Removes every container and the parent directories; warns about what could not be removed. */
  async removeAll(): Promise<void> {
    await this.remove([...this.made]);
    for (const base of this.bases) {
      try {
        rmdirSync(base);
      } catch {
        if (existsSync(base)) console.error(`warning: could not remove ${base} (still busy?); remove it with rmdir`);
      }
    }
  }

  /** Runs `sh -c SCRIPT` inside container i and waits for it (bounded by timeoutMs). */
  runIn(i: number, script: string, timeoutMs = 30_000): void {
    const r = spawnSync('sh', ['-c', `${this.joinScript(i)}; ${script}`], { stdio: 'ignore', timeout: timeoutMs });
    if (r.status !== 0) throw new Error(`in container c${i}: \`${script}\` ended with ${r.status ?? r.signal}`);
  }
}

/** A v1 cpuset cgroup starts with no CPUs and memory nodes, and no task can join it until both are set. */
function inheritCpuset(dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readFileSync(join(dir, file), 'latin1').trim() === '')
      writeFileSync(join(dir, file), readFileSync(join(dir, '..', file), 'latin1').trim());
  }
}
