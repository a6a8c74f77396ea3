/**
 * Cost of ViewSource.content() per view file, warm, on this machine's real cgroups (root needed):
 * the part of a FUSE read that lxcfs-ts spends computing the content (the FUSE round trips are
 * measured by the mount benchmark). A container is made of fresh cgroups (256 MiB, 1 CPU quota)
 * and a process that is PID 1 of its own pid namespace; content() is called with that pid.
 *
 *   node dist/bench/view-content.js [--iterations N] [--cfs] [--loadavg]
 *
 * Prints, per file, the median and p90 of batches of calls, in microseconds per call.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createContainerViewSource, createSharedViewState } from '../src/container/container-views.js';
import { silentLogger } from '../src/common/log.js';
import { defaultViewOptions } from '../src/common/options.js';
import { viewFiles } from '../src/views/catalog.js';

const args = process.argv.slice(2);
const iterations = Number(args[args.indexOf('--iterations') + 1]) || 20000;
const options = {
  ...defaultViewOptions,
  enableCfs: args.includes('--cfs'),
  enableLoadavg: args.includes('--loadavg'),
};

const controllers = ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids'];
const name = `lxcfs-ts-bench-views-${process.pid}`;
const dirs = controllers
  .map((c) => `/sys/fs/cgroup/${c}/${name}`)
  .filter((d) => existsSync(d.slice(0, d.lastIndexOf('/'))));

function setup(): void {
  for (const d of dirs) mkdirSync(d);
  writeFileSync(`/sys/fs/cgroup/memory/${name}/memory.limit_in_bytes`, '268435456');
  writeFileSync(`/sys/fs/cgroup/cpu/${name}/cpu.cfs_quota_us`, '100000');
  writeFileSync(
    `/sys/fs/cgroup/cpuset/${name}/cpuset.mems`,
    readFileSync('/sys/fs/cgroup/cpuset/cpuset.mems'),
  );
  writeFileSync(
    `/sys/fs/cgroup/cpuset/${name}/cpuset.cpus`,
    readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus'),
  );
}

function cleanup(): void {
  // Everything still in the cgroup is ours (the pid namespace's init ignores SIGTERM).
  for (const p of readProcs()) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const until = Date.now() + 2000;
  while (readProcs().length > 0 && Date.now() < until)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // still busy or already gone
    }
  }
}

function readProcs(): number[] {
  try {
    return readFileSync(`/sys/fs/cgroup/memory/${name}/cgroup.procs`, 'latin1')
      .split('\n')
      .filter((l) => l !== '')
      .map(Number);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  setup();
  const moveAndRun = `for d in ${dirs.join(' ')}; do echo $$ > $d/cgroup.procs; done; exec unshare -fp --mount-proc sleep 600`;
  const child = spawn('sh', ['-c', moveAndRun], { stdio: 'ignore' });
  let pid = 0;
  try {
    for (let i = 0; i < 100 && pid === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const procs = readFileSync(`/sys/fs/cgroup/memory/${name}/cgroup.procs`, 'latin1').trim().split('\n');
      // sh becomes unshare (exec), which forks the sleep: the second process
      if (procs.length >= 2) pid = Math.max(...procs.map(Number));
    }
    if (pid === 0) throw new Error('container process did not start');
    const source = createContainerViewSource(options, createSharedViewState(options), silentLogger);
    console.log(
      `content() cost, container pid ${pid}, ${iterations} calls per file, cfs=${options.enableCfs}`,
    );
    console.log('file'.padEnd(34), 'median µs', '  p90 µs', ' bytes');
    for (const file of viewFiles) {
      const batch = 100;
      const samples: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 200; i++) bytes = source.content(file.path, pid).length; // warm up
      for (let b = 0; b < iterations / batch; b++) {
        const t0 = performance.now();
        for (let i = 0; i < batch; i++) source.content(file.path, pid);
        samples.push(((performance.now() - t0) * 1000) / batch);
      }
      samples.sort((a, c) => a - c);
      const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
      console.log(
        file.path.padEnd(34),
        q(0.5).toFixed(2).padStart(9),
        q(0.9).toFixed(2).padStart(8),
        String(bytes).padStart(6),
      );
    }
  } finally {
    child.kill('SIGKILL');
    cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
