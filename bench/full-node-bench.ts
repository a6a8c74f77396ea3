/**
 * Full-node benchmark (cgroup v1 host, root): lxcfs-ts and Debian's lxcfs with 500 container
 * cgroups of 10 sleeping tasks each, against the same daemons with one such cgroup.
 *
 * Three daemons are mounted side by side: lxcfs -l, lxcfs-ts -l (the node agent's flags) and
 * lxcfs-ts without -l (to tell the load-average sampler's CPU from the rest of what lxcfs-ts does
 * at rest, such as the repair pass). Every container reads its view files once through each
 * daemon (that is when both implementations start sampling its load average). Measured with
 * 1 container, with all of them, and with 1 again after removing the others:
 *  - view read p50: open + read + close from a caller in container c0, the caller and the
 *    daemon under test pinned to CPU 0 (the other lxcfs-ts on CPU 1), rounds alternating;
 *  - CPU at rest: each daemon's CPU time (all threads, from schedstat) over a fixed wall time
 *    with nothing reading, per 5-second sampling round;
 *  - memory: PSS, RSS and resident pages counted once, per daemon.
 *
 *   node dist/bench/full-node-bench.js [--containers 500] [--tasks 10] [--ops 20000] [--rounds 3]
 *       [--files proc/meminfo,proc/stat,proc/loadavg] [--rest-seconds 60]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { BenchCgroups } from './bench-cgroups.js';
import { type BenchDaemon, pin, startLxcfs, startOurs, waitServing } from './daemons.js';
import { residentFrames, rollup } from './smaps.js';

const usage = `Usage: node dist/bench/full-node-bench.js [options]   (as root, cgroup v1 host)
  --containers N     container cgroups of the full node (default 500)
  --tasks N          sleeping tasks per container (default 10)
  --ops N            reads per p50 sample (default 20000)
  --rounds N         p50 samples per file, daemon and phase (default 3)
  --files LIST       view files whose p50 is measured (default proc/meminfo,proc/stat,proc/loadavg)
  --rest-seconds S   wall time over which CPU at rest is measured, per phase (default 60)`;

const { values } = parseArgs({
  options: {
    containers: { type: 'string', default: '500' },
    tasks: { type: 'string', default: '10' },
    ops: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    files: { type: 'string', default: 'proc/meminfo,proc/stat,proc/loadavg' },
    'rest-seconds': { type: 'string', default: '60' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const containers = Number(values.containers);
const tasks = Number(values.tasks);
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const files = values.files.split(',').filter(Boolean);
const restMs = Number(values['rest-seconds']) * 1000;
for (const [name, n] of [['--containers', containers], ['--tasks', tasks], ['--ops', ops], ['--rounds', rounds], ['--rest-seconds', restMs]] as const) {
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name}: expected a positive integer\n${usage}`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  console.error('full-node-bench needs root (it mounts daemons and creates cgroups)');
  process.exit(1);
}

const client = new URL('./read-client.js', import.meta.url).pathname;
const SAMPLING_PERIOD_S = 5; // both daemons sample load averages every 5 s
const readerTimeoutMs = 600_000;

/**
 * CPU nanoseconds of all threads of each of the daemon's processes (schedstat: ns, not 10 ms
 * ticks), in the order of pids(): for lxcfs-ts the supervisor (which runs the repair pass) and
 * then the serving process (whose main thread runs the load-average sampler); each process gives
 * two numbers: all its threads, then its main thread alone.
 */
function cpuNs(d: BenchDaemon): number[] {
  return d.pids().flatMap((pid) => {
    let total = 0;
    let main = 0;
    let threads: string[] = [];
    try {
      threads = readdirSync(`/proc/${pid}/task`);
    } catch {
      return [0, 0]; // exited
    }
    for (const tid of threads) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
        total += ns;
        if (tid === String(pid)) main = ns;
      } catch {
        // thread exited
      }
    }
    return [total, main];
  });
}

/** p50 (µs) of `ops` open-read-close cycles of MOUNT/FILE from a caller in container c0 on CPU 0. */
function readerP50(cgroups: BenchCgroups, mount: string, file: string): Promise<number> {
  const script = `${cgroups.joinScript(0)}; exec taskset -c 0 ${process.execPath} ${client} ${mount}/${file} ${ops}`;
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'], timeout: readerTimeoutMs });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('exit', (code, signal) => {
      if (code !== 0) return reject(new Error(`reader of ${mount}/${file} ended with ${code ?? signal}: ${out}`));
      resolve((JSON.parse(out.trim().split('\n').at(-1)!) as { p50: number }).p50);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

interface Phase {
  name: string;
  /** file -> daemon -> p50 samples (µs) */
  p50: Map<string, Map<string, number[]>>;
  /** daemon -> CPU ms per sampling round at rest, as cpuNs() orders them */
  restMsPerRound: Map<string, number[]>;
  /** daemon -> { pss, rss, once } MiB */
  memory: Map<string, { pss: number; rss: number; once: number }>;
}

interface Daemons {
  /** whose p50 is measured (pinned to CPU 0 while it is) */
  measured: BenchDaemon[];
  /** kept off CPU 0 while p50 is measured */
  other: BenchDaemon[];
  all: BenchDaemon[];
}

async function measurePhase(
  name: string, cgroups: BenchCgroups, { measured, other, all }: Daemons, withRest: boolean,
): Promise<Phase> {
  const phase: Phase = { name, p50: new Map(), restMsPerRound: new Map(), memory: new Map() };
  for (const d of measured) pin(d, '0');
  for (const d of other) pin(d, '1');
  for (const file of files) {
    const byDaemon = new Map(measured.map((d) => [d.name, [] as number[]]));
    for (let r = 0; r < rounds; r++) {
      for (const d of measured) byDaemon.get(d.name)!.push(await readerP50(cgroups, d.mountpoint, file));
    }
    phase.p50.set(file, byDaemon);
  }
  for (const d of all) pin(d, '0-1');
  if (withRest) {
    await sleep(2000);
    const before = new Map(all.map((d) => [d.name, cpuNs(d)]));
    await sleep(restMs);
    const roundsAtRest = restMs / 1000 / SAMPLING_PERIOD_S;
    for (const d of all) {
      const start = before.get(d.name)!;
      phase.restMsPerRound.set(d.name, cpuNs(d).map((ns, i) => (ns - (start[i] ?? 0)) / 1e6 / roundsAtRest));
    }
  }
  for (const d of all) {
    const frames = new Set<number>();
    let pss = 0;
    let rss = 0;
    for (const pid of d.pids()) {
      try {
        const m = rollup(pid);
        residentFrames(pid, frames);
        pss += m.pss;
        rss += m.rss;
      } catch {
        // exited
      }
    }
    phase.memory.set(d.name, { pss: pss / 1024, rss: rss / 1024, once: (frames.size * 4) / 1024 });
  }
  console.error(`[${new Date().toISOString()}] phase "${name}" measured`);
  return phase;
}

/** Every container in [from, to) reads its view files once through each daemon. */
function touchViews(cgroups: BenchCgroups, from: number, to: number, daemons: BenchDaemon[]): void {
  const paths = daemons.flatMap((d) =>
    ['proc/loadavg', 'proc/meminfo', 'proc/stat', 'proc/cpuinfo', 'proc/uptime', 'proc/diskstats', 'proc/swaps',
      'sys/devices/system/cpu/online'].map((f) => `${d.mountpoint}/${f}`));
  for (let i = from; i < to; i++) cgroups.runIn(i, `exec cat ${paths.join(' ')} > /dev/null`);
}

function report(phases: Phase[], measured: string[], all: string[]): void {
  console.log(`\n## view read p50 from a caller in container c0 (µs; median of ${rounds} x ${ops} reads, caller and daemon on CPU 0)`);
  console.log(`| file | daemon | ${phases.map((p) => p.name).join(' | ')} | ratio ${phases[1]!.name} / ${phases[0]!.name} | ratio ${phases[1]!.name} / ${phases[2]!.name} |`);
  console.log(`|---|---|${phases.map(() => '---|').join('')}---|---|`);
  for (const file of files) {
    for (const d of measured) {
      const m = phases.map((p) => median(p.p50.get(file)!.get(d)!));
      console.log(`| /${file} | ${d} | ${m.map((x) => x.toFixed(1)).join(' | ')} | **${(m[1]! / m[0]!).toFixed(2)}x** | ${(m[1]! / m[2]!).toFixed(2)}x |`);
    }
  }
  const rest = phases.filter((p) => p.restMsPerRound.size > 0);
  console.log(`\n## CPU at rest per ${SAMPLING_PERIOD_S}-second round (ms; all threads over ${restMs / 1000} s, nothing reading)`);
  console.log(`| daemon | process | ${rest.map((p) => p.name).join(' | ')} |`);
  console.log(`|---|---|${rest.map(() => '---|').join('')}`);
  const cpu = (p: Phase, d: string, i: number) => p.restMsPerRound.get(d)![i] ?? 0;
  console.log(`| lxcfs -l | lxcfs | ${rest.map((p) => cpu(p, 'lxcfs', 0).toFixed(2)).join(' | ')} |`);
  for (const d of all.filter((n) => n !== 'lxcfs')) {
    ['supervisor', 'supervisor main thread', 'serving', 'serving main thread'].forEach((role, i) => {
      console.log(`| ${d} | ${role} | ${rest.map((p) => cpu(p, d, i).toFixed(2)).join(' | ')} |`);
    });
  }
  // The sampler runs on the serving process's main thread; the same thread without -l is the baseline.
  const sampler = (p: Phase) => cpu(p, 'lxcfs-ts', 3) - cpu(p, 'lxcfs-ts-no-l', 3);
  console.log(`| **lxcfs-ts sampler** | serving main thread, -l minus no -l | ${rest.map((p) => sampler(p).toFixed(2)).join(' | ')} |`);
  console.log(`| ratio sampler / lxcfs -l | | ${rest.map((p) => `**${(sampler(p) / cpu(p, 'lxcfs', 0)).toFixed(2)}x**`).join(' | ')} |`);
  const whole = (p: Phase) => cpu(p, 'lxcfs-ts', 0) + cpu(p, 'lxcfs-ts', 2);
  console.log(`| ratio all of lxcfs-ts -l / lxcfs -l | | ${rest.map((p) => `${(whole(p) / cpu(p, 'lxcfs', 0)).toFixed(2)}x`).join(' | ')} |`);
  const perMinute = (ms: number) => ((ms * 60) / SAMPLING_PERIOD_S).toFixed(0);
  console.log(
    'lxcfs-ts supervisor at rest (the repair pass every 5 s, the health server), CPU per minute: ' +
    rest.map((p) => `${p.name}: ${perMinute(cpu(p, 'lxcfs-ts', 0))} ms (-l) and ${perMinute(cpu(p, 'lxcfs-ts-no-l', 0))} ms (no -l)`)
      .join('; '),
  );
  console.log('\n## memory (MiB, after each phase\'s reads: PSS / RSS / resident pages counted once)');
  console.log(`| daemon | ${phases.map((p) => p.name).join(' | ')} |`);
  console.log(`|---|${phases.map(() => '---|').join('')}`);
  for (const d of all) {
    console.log(`| ${d} | ${phases.map((p) => {
      const m = p.memory.get(d)!;
      return `${m.pss.toFixed(1)} / ${m.rss.toFixed(1)} / ${m.once.toFixed(1)}`;
    }).join(' | ')} |`);
  }
}

async function main(): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-full-node-'));
  const daemons: BenchDaemon[] = [];
  let cgroups: BenchCgroups | null = null;
  let stopping: Promise<void> | null = null;
  const cleanup = () => (stopping ??= (async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await cgroups?.removeAll();
    rmSync(workdir, { recursive: true, force: true });
  })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    // Sleeping tasks outlive a crashed benchmark by at most this long.
    cgroups = new BenchCgroups(tasks, 3600);
    const port = 20000 + (process.pid % 20000);
    daemons.push(
      startLxcfs(workdir, 'lxcfs', ['-l', '--enable-cfs']),
      startOurs(workdir, 'lxcfs-ts', ['-l', '--enable-cfs', '--health-address', `127.0.0.1:${port}`]),
      startOurs(workdir, 'lxcfs-ts-no-l', ['--enable-cfs', '--health-address', 'off']),
    );
    for (const d of daemons) await waitServing(d);
    const [lxcfs, ours, oursNoL] = daemons as [BenchDaemon, BenchDaemon, BenchDaemon];
    const measured = [lxcfs, ours];
    const roles: Daemons = { measured, other: [oursNoL], all: daemons };
    console.log(
      `# full node: ${containers} containers x ${tasks} tasks (cgroup v1: ${cgroups.hierarchies.join(' ')}); ` +
      `node ${process.version}; host /proc/loadavg at start: ${readFileSync('/proc/loadavg', 'latin1').trim()}`,
    );

    await cgroups.create(0, 1);
    touchViews(cgroups, 0, 1, daemons);
    await sleep(6000); // lxcfs picks new containers up on its next 5-second round
    const phases: Phase[] = [];
    phases.push(await measurePhase('1 container', cgroups, roles, true));

    const t0 = Date.now();
    await cgroups.create(1, containers);
    const created = Date.now();
    touchViews(cgroups, 1, containers, daemons);
    console.error(`[${new Date().toISOString()}] ${containers} containers made in ${((created - t0) / 1000).toFixed(1)} s, views read in ${((Date.now() - created) / 1000).toFixed(1)} s`);
    await sleep(6000);
    phases.push(await measurePhase(`${containers} containers`, cgroups, roles, true));

    await cgroups.remove(Array.from({ length: containers - 1 }, (_, k) => k + 1));
    await sleep(6000);
    phases.push(await measurePhase('1 again', cgroups, roles, false));
    report(phases, measured.map((d) => d.name), daemons.map((d) => d.name));
    console.log(`host load at the end: ${readFileSync('/proc/loadavg', 'latin1').trim()}`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
