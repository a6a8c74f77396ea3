/**
 * Footprint benchmark: the memory of lxcfs-ts's two processes (supervisor and serving process)
 * beside Debian's lxcfs, both mounted in the same run, idle and after N reads.
 *
 * Both daemons start with the same flags (by default the node agent's: -l --enable-cfs). After a
 * settle time their memory is read from /proc (idle); then readers in sandboxes (`lxcfs-ts run
 * --view`: own cgroup with a memory limit, own pid namespace, the view bound over /proc) open,
 * read and close view files, N reads per daemon spread over the files and over two concurrent
 * readers, and the memory is read again. For each process it prints RSS, PSS (each shared page
 * divided among the processes mapping it), the anonymous and file-backed parts of PSS, USS
 * (pages no other process maps) and peak RSS, and where the memory sits (smaps grouped by kind).
 * First it measures the floor: two bare Node processes in the agent's shape (bench/node-floor.ts),
 * and later prints how far above it lxcfs-ts is.
 *
 *   node dist/bench/footprint-bench.js [--reads 1000000] [--files proc/meminfo,proc/stat,...]
 *       [--readers 2] [--settle 5] [--flags "-l --enable-cfs"] [--ours-flags "--threads 1"] [--max-seconds 1800]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type BenchDaemon, startDaemons } from './daemons.js';
import { measureNodeFloor, type NodeFloor } from './node-floor.js';
import { mappingGroups, type MappingGroup, processesRunning, residentFrames, type Rollup, rollup, status } from './smaps.js';

const usage = `Usage: node dist/bench/footprint-bench.js [options]   (as root)
  --reads N         reads per daemon after the idle measurement (default 1000000)
  --files LIST      view files the reads are spread over (default proc/meminfo,proc/stat,proc/cpuinfo,proc/uptime,proc/loadavg,sys/devices/system/cpu/online)
  --readers N       concurrent sandboxed readers (default 2)
  --settle S        seconds to wait before each measurement (default 5)
  --flags FLAGS     flags for both daemons (default "-l --enable-cfs", the node agent's)
  --ours-flags F    further flags for lxcfs-ts only (e.g. "--threads 1")
  --max-seconds S   give up on a reader after S seconds (default 1800)`;

const { values } = parseArgs({
  options: {
    reads: { type: 'string', default: '1000000' },
    files: {
      type: 'string',
      default: 'proc/meminfo,proc/stat,proc/cpuinfo,proc/uptime,proc/loadavg,sys/devices/system/cpu/online',
    },
    readers: { type: 'string', default: '2' },
    settle: { type: 'string', default: '5' },
    flags: { type: 'string', default: '-l --enable-cfs' },
    'ours-flags': { type: 'string', default: '' },
    'max-seconds': { type: 'string', default: '1800' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const reads = Number(values.reads);
const files = values.files.split(',').filter(Boolean);
const readers = Number(values.readers);
const settleMs = Number(values.settle) * 1000;
const flags = values.flags.split(' ').filter(Boolean);
const oursFlags = values['ours-flags'].split(' ').filter(Boolean);
const maxMs = Number(values['max-seconds']) * 1000;
for (const [name, n] of [['--reads', reads], ['--readers', readers], ['--settle', settleMs], ['--max-seconds', maxMs]] as const) {
  if (!Number.isFinite(n) || n < 0 || (name !== '--settle' && n === 0)) {
    console.error(`${name}: expected a positive number\n${usage}`);
    process.exit(2);
  }
}
if (process.getuid?.() !== 0) {
  console.error('footprint-bench needs root (it mounts both daemons and creates cgroups)');
  process.exit(1);
}

const cli = new URL('../src/cli.js', import.meta.url).pathname;
const client = new URL('./read-client.js', import.meta.url).pathname;
const running = new Set<ChildProcess>();

/** One sandboxed reader doing `total` open-read-close cycles of /FILE (warm-up included). */
function runReader(view: string, file: string, total: number): Promise<void> {
  const warmup = Math.min(200, Math.floor(total / 10));
  const argv = [cli, 'run', '--view', view, '--memory', '512M', '--', process.execPath, client, `/${file}`,
    String(total - warmup), String(warmup)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    running.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), maxMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`reader of /${file} on ${view} ended with ${code ?? signal}`));
    });
  });
}

/** N reads against one daemon's view: the files in turn, `readers` readers at once. */
async function load(d: BenchDaemon): Promise<number> {
  let done = 0;
  for (let i = 0; i < files.length; i++) {
    // Spread the remainder so that exactly `reads` reads are made.
    const share = Math.floor(reads / files.length) + (i < reads % files.length ? 1 : 0);
    const per = Array.from({ length: readers }, (_, r) => Math.floor(share / readers) + (r < share % readers ? 1 : 0))
      .filter((n) => n > 0);
    await Promise.all(per.map((n) => runReader(d.mountpoint, files[i]!, n)));
    done += per.reduce((s, n) => s + n, 0);
  }
  return done;
}

interface ProcessMemory {
  daemon: string;
  role: string;
  pid: number;
  rollup: Rollup;
  peakRss: number;
  threads: number;
  groups: MappingGroup[];
}

function measure(d: BenchDaemon): ProcessMemory[] {
  const pids = d.pids();
  const frames = new Set<number>();
  const rows = pids.flatMap((pid, i) => {
    try {
      const role = d.name === 'lxcfs' ? 'lxcfs' : i === 0 ? 'supervisor' : 'serving';
      residentFrames(pid, frames);
      return [{ daemon: d.name, role, pid, rollup: rollup(pid), ...status(pid), groups: mappingGroups(pid) }];
    } catch {
      return []; // exited between listing and reading
    }
  });
  distinctKiB.set(d.name, frames.size * 4);
  return rows;
}

/** Per daemon: its resident pages with each physical page counted once (KiB), last measured. */
const distinctKiB = new Map<string, number>();

const mib = (kib: number) => (kib / 1024).toFixed(1);

function printTable(title: string, rows: ProcessMemory[]): void {
  console.log(`\n## ${title}`);
  console.log('| daemon | process | RSS MiB | PSS MiB | PSS anon | PSS file | USS MiB | peak RSS | threads |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const m = r.rollup;
    console.log(
      `| ${r.daemon} | ${r.role} (pid ${r.pid}) | ${mib(m.rss)} | ${mib(m.pss)} | ${mib(m.pssAnon)} | ${mib(m.pssFile)} | ${mib(m.uss)} | ${mib(r.peakRss)} | ${r.threads} |`,
    );
  }
  const total = (daemon: string, key: keyof Rollup) =>
    rows.filter((r) => r.daemon === daemon).reduce((s, r) => s + r.rollup[key], 0);
  for (const daemon of ['lxcfs', 'lxcfs-ts']) {
    console.log(
      `| ${daemon} | **total** | ${mib(total(daemon, 'rss'))} | **${mib(total(daemon, 'pss'))}** | ${mib(total(daemon, 'pssAnon'))} | ${mib(total(daemon, 'pssFile'))} | ${mib(total(daemon, 'uss'))} | | |`,
    );
  }
  const ratio = (key: keyof Rollup) => (total('lxcfs-ts', key) / total('lxcfs', key)).toFixed(1);
  console.log(`ratios lxcfs-ts/lxcfs: PSS ${ratio('pss')}x, RSS ${ratio('rss')}x, USS ${ratio('uss')}x`);
  const once = (daemon: string) => distinctKiB.get(daemon) ?? 0;
  console.log(
    `resident pages, each physical page counted once per daemon (its PSS if no other process mapped the same files): ` +
    `lxcfs ${mib(once('lxcfs'))} MiB, lxcfs-ts ${mib(once('lxcfs-ts'))} MiB, ratio ${(once('lxcfs-ts') / once('lxcfs')).toFixed(1)}x`,
  );
}

/** The request workers lxcfs-ts runs with these flags (daemon default 2). */
function requestWorkers(): number {
  let i = -1;
  oursFlags.forEach((f, at) => {
    if (f === '--threads' || f.startsWith('--threads=')) i = at;
  });
  if (i < 0) return 2;
  const value = oursFlags[i]!.includes('=') ? oursFlags[i]!.split('=')[1] : oursFlags[i + 1];
  return Number(value);
}

function printFloor(floor: NodeFloor): void {
  console.log(`\n## the floor: two bare Node processes in the agent's shape (one of them with ${floor.workers} idle worker threads), none of its code`);
  console.log(`counted once ${mib(floor.countedOnceKiB)} MiB; PSS ${mib(floor.pssKiB)} MiB (anonymous ${mib(floor.anonKiB)} MiB)`);
}

function printAboveFloor(floor: NodeFloor): void {
  const once = distinctKiB.get('lxcfs-ts') ?? 0;
  console.log(`lxcfs-ts above the floor (its own code and data), pages counted once: ${mib(once - floor.countedOnceKiB)} MiB`);
}

function printGroups(rows: ProcessMemory[]): void {
  console.log('\n## where the memory sits after the reads (/proc/PID/smaps by mapping kind, MiB)');
  for (const r of rows) {
    console.log(`- ${r.daemon} ${r.role}: ` +
      r.groups.filter((g) => g.rss > 0).map((g) => `${g.group} ${mib(g.pss)} PSS / ${mib(g.rss)} RSS (${g.mappings} maps)`).join('; '));
  }
}

async function main(): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-footprint-'));
  let daemons: BenchDaemon[] = [];
  let stopping: Promise<void> | null = null;
  const stopAll = () => (stopping ??= (async () => {
    for (const c of running) c.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.stop()));
    rmSync(workdir, { recursive: true, force: true });
  })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
  try {
    // A private health port: the default one may be another agent's on this machine.
    const floor = await measureNodeFloor(requestWorkers(), settleMs);
    daemons = await startDaemons(workdir, flags, ['--health-address', `127.0.0.1:${20000 + (process.pid % 20000)}`, ...oursFlags]);
    const node = realpathSync(process.execPath);
    console.log(`# footprint: daemon flags ${flags.join(' ') || '(none)'}${oursFlags.length ? `, lxcfs-ts also ${oursFlags.join(' ')}` : ''}; ${reads} reads per daemon over ${files.length} files, ${readers} readers; node ${process.version}`);
    await sleep(settleMs);
    const idle = daemons.flatMap(measure);
    const nodeIdle = processesRunning(node);
    printFloor(floor);
    printTable(`idle (${values.settle} s after start; ${nodeIdle} processes running ${node} share its pages)`, idle);
    printAboveFloor(floor);

    const started = Date.now();
    for (const d of daemons) {
      const t0 = Date.now();
      const n = await load(d);
      console.log(`\n${d.name}: ${n} reads in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    await sleep(settleMs);
    const after = daemons.flatMap(measure);
    const nodeAfter = processesRunning(node);
    printTable(`after ${reads} reads per daemon (${values.settle} s after the last; ${nodeAfter} processes running node; load ${((Date.now() - started) / 1000).toFixed(0)} s)`, after);
    printAboveFloor(floor);
    printGroups(after);
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
