/**
 * Repair benchmark (root): the repair pass over many container mount namespaces.
 *
 * lxcfs-ts is mounted the way a node has it (`<dir>/node/view`, the parent made a shared mount),
 * and N "containers" are made: mount namespaces with rslave propagation (`unshare -m`) in which
 * a sleeping process has bound the view's /proc files over its /proc, as a container runtime does.
 * Then the whole daemon is killed (SIGKILL to its process group: every bind in every namespace now
 * leads to a dead connection) and a new one started on the same mountpoint. Measured:
 *  - CPU of the supervisor (which runs the repair pass every 5 s) at rest, per minute, with no
 *    container namespaces and with N;
 *  - the time from the new daemon's start until every stale bind is repaired (its
 *    lxcfs_ts_repairs_total{result="repaired"} counter), and from when it serves;
 *  - that containers read their files again (a sample, through nsenter).
 *
 *   node dist/bench/repair-bench.js [--namespaces 500] [--rest-seconds 60]
 * (REPAIR_BENCH_LOG=info shows the new daemon's log, with each repair pass's duration.)
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type BenchDaemon, startOurs, waitServing } from './daemons.js';

const usage = `Usage: node dist/bench/repair-bench.js [options]   (as root)
  --namespaces N     container mount namespaces with binds of the view (default 500)
  --rest-seconds S   wall time over which the supervisor's CPU at rest is measured (default 60)`;

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '500' },
    'rest-seconds': { type: 'string', default: '60' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const namespaces = Number(values.namespaces);
const restMs = Number(values['rest-seconds']) * 1000;
if (!Number.isInteger(namespaces) || namespaces < 1 || !Number.isInteger(restMs) || restMs < 1000) {
  console.error(usage);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('repair-bench needs root (it mounts the view and makes mount namespaces)');
  process.exit(1);
}

/** The view files a container gets bound over its /proc (as LXCFS users bind them). */
const boundFiles = ['meminfo', 'cpuinfo', 'stat', 'uptime', 'loadavg', 'diskstats', 'swaps'];
const repairTimeoutMs = 600_000;

/** CPU ms of every thread of one process (schedstat, ns resolution). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      // thread exited
    }
  }
  return ns / 1e6;
}

async function repairedCount(port: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    return Number(/^lxcfs_ts_repairs_total\{result="repaired"\} (\d+)/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0; // not listening yet
  }
}

async function supervisorRestCpuPerMinute(d: BenchDaemon): Promise<number> {
  const supervisor = d.pids()[0]!;
  const before = cpuMs(supervisor);
  await sleep(restMs);
  return ((cpuMs(supervisor) - before) * 60_000) / restMs;
}

async function main(): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-repair-'));
  const parent = join(workdir, 'node');
  mkdirSync(parent);
  const mountpoint = join(parent, 'view');
  const port = 20000 + (process.pid % 20000);
  const flags = ['-l', '--enable-cfs', '--health-address', `127.0.0.1:${port}`];
  const daemons: BenchDaemon[] = [];
  const containers: ChildProcess[] = [];
  let stopping: Promise<void> | null = null;
  const cleanup = () => (stopping ??= (async () => {
    for (const c of containers) c.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.stop()));
    for (const path of [mountpoint, parent]) {
      for (let i = 0; i < 10 && readFileSync('/proc/self/mountinfo', 'latin1').includes(` ${path} `); i++)
        spawnSync('umount', ['-l', path], { stdio: 'ignore' });
    }
    rmSync(workdir, { recursive: true, force: true });
  })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    const first = startOurs(parent, 'view', flags);
    daemons.push(first);
    await waitServing(first);
    console.log(`# repair: ${namespaces} container mount namespaces x ${boundFiles.length} binds; node ${process.version}`);
    const idleCpu = await supervisorRestCpuPerMinute(first);

    const binds = boundFiles.map((f) => `mount --bind ${mountpoint}/proc/${f} /proc/${f}`).join(' && ');
    const t0 = Date.now();
    for (let i = 0; i < namespaces; i++) {
      const child = spawn('unshare', ['-m', '--propagation', 'slave', 'sh', '-c', `${binds} && echo ready && exec sleep 3600`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      containers.push(child);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`container ${i} did not bind the view in 10 s`)), 10_000);
        child.stdout!.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
        child.once('exit', (code) => reject(new Error(`container ${i} exited with ${code} before binding the view`)));
      });
    }
    console.log(`${namespaces} namespaces made in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const withNsCpu = await supervisorRestCpuPerMinute(first);

    // The whole daemon dies at once: every bind in every namespace now leads to a dead connection.
    process.kill(-first.child.pid!, 'SIGKILL');
    await new Promise<void>((resolve) => (first.child.exitCode !== null || first.child.signalCode !== null
      ? resolve()
      : first.child.once('exit', () => resolve())));
    // Its dead mount is the new daemon's to detach; stopping it later must not unmount the new one.
    daemons.splice(daemons.indexOf(first), 1);
    const expected = namespaces * boundFiles.length;
    const started = Date.now();
    const second = startOurs(parent, 'view', [...flags, '--log-level', process.env.REPAIR_BENCH_LOG ?? 'warn']);
    daemons.push(second);
    await waitServing(second);
    const serving = Date.now();
    let repaired = 0;
    while (repaired < expected && Date.now() - started < repairTimeoutMs) {
      repaired = await repairedCount(port);
      if (repaired < expected) await sleep(50);
    }
    const done = Date.now();
    // Every 50th container reads its own /proc/meminfo again (through the repaired bind).
    let readable = 0;
    let sampled = 0;
    for (let i = 0; i < namespaces; i += 50) {
      sampled++;
      const r = spawnSync('nsenter', ['-t', String(containers[i]!.pid), '-m', '--', 'head', '-1', '/proc/meminfo'], { timeout: 5000 });
      if (r.status === 0) readable++;
    }
    const afterCpu = await supervisorRestCpuPerMinute(second);

    console.log(`\n| | value |`);
    console.log('|---|---|');
    console.log(`| stale binds repaired | ${repaired} of ${expected}${repaired < expected ? ` (gave up after ${repairTimeoutMs / 1000} s)` : ''} |`);
    console.log(`| new daemon started -> serving | ${serving - started} ms |`);
    console.log(`| new daemon started -> every bind repaired | **${done - started} ms** |`);
    console.log(`| serving -> every bind repaired | ${done - serving} ms |`);
    console.log(`| sampled containers reading /proc/meminfo again | ${readable} of ${sampled} |`);
    console.log(`| supervisor CPU at rest, no container namespaces | ${idleCpu.toFixed(0)} ms per minute |`);
    console.log(`| supervisor CPU at rest, ${namespaces} namespaces (before the kill) | ${withNsCpu.toFixed(0)} ms per minute |`);
    console.log(`| supervisor CPU at rest, ${namespaces} namespaces (after the repair) | ${afterCpu.toFixed(0)} ms per minute |`);
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
