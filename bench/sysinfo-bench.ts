/**
 * sysinfo(2) latency through the syscall view against the native call, in the same run:
 *   node dist/bench/sysinfo-bench.js [--calls 100000] [--rounds 3]     (as root)
 *
 * A C caller (test/fixtures/sandbox/sysinfo-probe.c, `bench N`) times N calls and prints its p50
 * and p99. It runs natively on the host (what LXCFS leaves a container: the host's answer, at the
 * kernel's cost) and inside `lxcfs-ts run --view` of a daemon serving sysinfo, alone and as 4
 * concurrent callers. The serving process's CPU time per answered call comes from its
 * /proc/PID/stat. Rounds alternate native and served runs; the figures are medians over rounds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const repo = new URL('../../', import.meta.url).pathname;
const cli = join(repo, 'dist/src/cli.js');
const lxcfsTs = join(repo, 'bin/lxcfs-ts');

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
if (process.getuid?.() !== 0) {
  console.error('sysinfo-bench: needs root (it mounts a view and makes sandboxes)');
  process.exit(1);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
}

function serverPid(supervisor: number): number {
  const out = spawnSync('pgrep', ['-P', String(supervisor)], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!out) throw new Error('no serving process');
  return Number(out);
}

/** p50/p99 in ns of each caller's output lines. */
function latencies(stdout: string): { p50: number; p99: number }[] {
  return [...stdout.matchAll(/p50=(\d+) p99=(\d+)/g)].map((m) => ({ p50: Number(m[1]), p99: Number(m[2]) }));
}

function callers(probe: string, n: number): string[] {
  const one = `${probe} bench ${calls}`;
  return ['sh', '-c', n === 1 ? one : `${Array.from({ length: n }, () => `${one} &`).join(' ')} wait`];
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-ts-bench-sysinfo-'));
  const mountpoint = join(work, 'view');
  const socket = join(work, 'sysinfo.sock');
  mkdirSync(mountpoint);
  const probe = join(work, 'sysinfo-probe');
  const cc = spawnSync('cc', ['-O2', '-pthread', '-o', probe, join(repo, 'test/fixtures/sandbox/sysinfo-probe.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc: ${cc.stderr}`);
  const daemon = spawn(process.execPath, [cli, '--log-level', 'warn', '-l', '--enable-cfs', '--no-repair', '--no-share-parent',
    '--health-address', 'off', '--sysinfo-socket', socket, mountpoint], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  try {
    for (let i = 0; i < 200 && spawnSync('test', ['-S', socket]).status !== 0; i++) await sleep(50);
    const results: Record<string, { p50: number[]; p99: number[]; cpuUs: number[] }> = {};
    const record = (key: string, lat: { p50: number; p99: number }[], cpuUs = Number.NaN) => {
      results[key] ??= { p50: [], p99: [], cpuUs: [] };
      results[key].p50.push(median(lat.map((l) => l.p50)));
      results[key].p99.push(median(lat.map((l) => l.p99)));
      results[key].cpuUs.push(cpuUs);
    };
    const tick = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim());
    for (let round = 0; round < rounds; round++) {
      for (const n of [1, 4]) {
        const [cmd, ...args] = callers(probe, n);
        const native = spawnSync(cmd!, args, { encoding: 'utf8' });
        record(`native, ${n} caller${n > 1 ? 's' : ''}`, latencies(native.stdout));
        const server = serverPid(daemon.pid!);
        const before = cpuTicks(server);
        const served = spawnSync(lxcfsTs, ['run', '--view', mountpoint, '--sysinfo-socket', socket, '--memory', '512M', '--', ...callers(probe, n)], { encoding: 'utf8' });
        if (served.status !== 0) throw new Error(`lxcfs-ts run failed: ${served.stderr}`);
        const cpuUs = ((cpuTicks(server) - before) * tick) / (n * calls);
        record(`lxcfs-ts, ${n} caller${n > 1 ? 's' : ''}`, latencies(served.stdout), cpuUs);
      }
    }
    console.log(`sysinfo(2), ${calls} calls per caller, medians of ${rounds} rounds (LXCFS serves no sysinfo: a container gets the native call's host answer)\n`);
    console.log('| caller | p50 | p99 | p50 vs native | serving CPU per call |');
    console.log('|---|---|---|---|---|');
    for (const n of [1, 4]) {
      const s = n > 1 ? 's' : '';
      const nat = results[`native, ${n} caller${s}`]!;
      const ours = results[`lxcfs-ts, ${n} caller${s}`]!;
      const us = (ns: number) => `${(ns / 1000).toFixed(1)} µs`;
      console.log(`| native, ${n} caller${s} | ${us(median(nat.p50))} | ${us(median(nat.p99))} | 1x | - |`);
      console.log(`| lxcfs-ts, ${n} caller${s} | ${us(median(ours.p50))} | ${us(median(ours.p99))} | ${(median(ours.p50) / median(nat.p50)).toFixed(0)}x | ${median(ours.cpuUs).toFixed(1)} µs |`);
    }
  } finally {
    try {
      process.kill(daemon.pid!, 'SIGTERM');
    } catch {
      // gone
    }
    await sleep(1500);
    spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore' });
    try {
      process.kill(-daemon.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
