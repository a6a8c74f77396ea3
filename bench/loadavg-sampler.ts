/**
 * CPU cost of one loadavg sampling round (`-l`), lxcfs-ts vs Debian's lxcfs, in the same run, on
 * this machine's real cgroup v1 hierarchies (root needed):
 *
 *   node dist/bench/loadavg-sampler.js [--containers 200] [--tasks 10] [--rounds 6]
 *
 * Sets up N container cgroups in the cpu hierarchy with T sleeping tasks each (plus one cgroup
 * with one busy loop, for accuracy), makes every container read /proc/loadavg once through each
 * implementation (that is when both start tracking it), then measures:
 *  - lxcfs: CPU time (utime+stime) of the lxcfs process over `rounds` of its 5-second cycle;
 *  - lxcfs-ts: CPU time of LoadavgSampler.round() (the same work the daemon's main thread does
 *    every 5 s), averaged over `rounds` rounds;
 * and prints both per round, their ratio, and the load lxcfs-ts reports for the busy container
 * against the kernel formula fed with the true count (1 runnable task per round).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContainerViewSource, createSharedViewState } from '../src/container/container-views.js';
import { LoadavgSampler } from '../src/agent/loadavg-sampler.js';
import { silentLogger } from '../src/common/log.js';
import { defaultViewOptions } from '../src/common/options.js';
import { calcLoad, EXP, renderLoadavg } from '../src/views/loadavg.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const containers = arg('--containers', 200);
const tasks = arg('--tasks', 10);
const rounds = arg('--rounds', 6);
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'latin1' }).trim());

const base = `/sys/fs/cgroup/cpu/lxcfs-ts-bench-loadavg-${process.pid}`;
const cgroups = Array.from({ length: containers + 1 }, (_, i) => `${base}/c${i}`);
const busyCgroup = cgroups[containers]!;
const shells: ChildProcess[] = [];
let lxcfs: ChildProcess | null = null;
const mnt = mkdtempSync(join(tmpdir(), 'lxcfs-ts-bench-loadavg-'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const procs = (cg: string) =>
  existsSync(`${cg}/cgroup.procs`)
    ? readFileSync(`${cg}/cgroup.procs`, 'latin1')
        .split('\n')
        .filter((l) => l)
        .map(Number)
    : [];
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
};

async function setup(): Promise<void> {
  mkdirSync(base);
  for (const cg of cgroups) mkdirSync(cg);
  for (const cg of cgroups.slice(0, containers)) {
    const forks = Array.from({ length: tasks - 1 }, () => 'sleep 3600 &').join(' ');
    shells.push(
      spawn('sh', ['-c', `echo $$ > ${cg}/cgroup.procs; ${forks} exec sleep 3600`], { stdio: 'ignore' }),
    );
  }
  shells.push(
    spawn('sh', ['-c', `echo $$ > ${busyCgroup}/cgroup.procs; exec sh -c 'while :; do :; done'`], {
      stdio: 'ignore',
    }),
  );
  for (const cg of cgroups.slice(0, containers)) {
    while (procs(cg).length < tasks) await sleep(20);
  }
}

/** One `cat <file>` run from inside each cgroup (a host-pid-namespace caller uses its own cgroup). */
function readFromEach(file: string): void {
  for (const cg of cgroups) {
    spawnSync('sh', ['-c', `echo $$ > ${cg}/cgroup.procs; exec cat ${file}`], { stdio: 'ignore' });
  }
}

async function measureLxcfs(): Promise<number> {
  lxcfs = spawn('/usr/bin/lxcfs', ['-l', mnt], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !readFileSync('/proc/self/mountinfo', 'latin1').includes(` ${mnt} `); i++)
    await sleep(50);
  readFromEach(`${mnt}/proc/loadavg`);
  await sleep(6000); // let its loop pick every container up
  const before = cpuSeconds(lxcfs.pid!);
  await sleep(rounds * 5000);
  return ((cpuSeconds(lxcfs.pid!) - before) * 1000) / rounds;
}

function measureOurs(): { perRoundMs: number; busyLoad: string; expected: string } {
  const options = { ...defaultViewOptions, enableLoadavg: true };
  const shared = createSharedViewState(options);
  const source = createContainerViewSource(options, shared, silentLogger);
  for (const cg of cgroups) source.content('proc/loadavg', procs(cg)[0]!);
  const sampler = new LoadavgSampler(options, shared, silentLogger);
  sampler.countNew();
  sampler.round(); // warm: opens the per-thread fds once
  let expected = 0;
  expected = calcLoad(expected, EXP[0], 1);
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) {
    sampler.round();
    expected = calcLoad(expected, EXP[0], 1);
  }
  const used = process.cpuUsage(start);
  const busyLoad = source.content('proc/loadavg', procs(busyCgroup)[0]!).toString().split(' ')[0]!;
  sampler.close();
  return {
    perRoundMs: (used.user + used.system) / 1000 / rounds,
    busyLoad,
    expected: renderLoadavg([expected, 0, 0], 0, 1, 1).split(' ')[0]!,
  };
}

async function cleanup(): Promise<void> {
  if (lxcfs !== null) {
    lxcfs.kill('SIGTERM');
    await sleep(500);
    spawnSync('umount', ['-l', mnt]);
  }
  for (const s of shells) s.kill('SIGKILL');
  for (let i = 0; i < 100; i++) {
    let left = 0;
    for (const cg of cgroups) {
      for (const pid of procs(cg)) {
        left++;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (left === 0) break;
    await sleep(50);
  }
  for (const cg of [...cgroups, base]) {
    try {
      rmdirSync(cg);
    } catch {
      // busy: reported below
    }
  }
  try {
    rmdirSync(mnt);
  } catch {
    // still mounted
  }
  if (existsSync(base)) console.error(`warning: could not remove ${base}`);
}

async function main(): Promise<void> {
  writeFileSync('/proc/self/oom_score_adj', '0');
  try {
    await setup();
    console.log(`${containers} containers x ${tasks} tasks (+1 busy container), ${rounds} rounds`);
    const ours = measureOurs();
    const theirs = await measureLxcfs();
    console.log(`lxcfs 5.0.3 -l : ${theirs.toFixed(2)} ms CPU per 5-second round`);
    console.log(`lxcfs-ts -l    : ${ours.perRoundMs.toFixed(2)} ms CPU per round`);
    console.log(`ratio          : ${(ours.perRoundMs / theirs).toFixed(2)}x`);
    console.log(
      `busy container 1-min load after ${rounds + 1} rounds: ${ours.busyLoad} (kernel formula with 1 runnable task: ${ours.expected})`,
    );
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
