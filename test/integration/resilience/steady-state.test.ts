/**
 * A long run: one million reads of view files from inside a sandbox (four readers in parallel,
 * after a warm-up), and the daemon's processes neither grow (RSS within 10 %) nor leak
 * descriptors. Measured while idle before and after, so both points are comparable. The serving
 * process's heap settles during its first million or so reads (V8 sizing its heaps: measured here
 * at +14 MiB over the first 1.1 million reads, then flat over 2 million more), hence a warm-up of
 * half a million reads.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverPidOf } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { viewReader, ViewNode, waitFor } from './helpers.js';

const FILES = [
  '/proc/meminfo',
  '/proc/stat',
  '/proc/cpuinfo',
  '/proc/uptime',
  '/proc/loadavg',
  '/sys/devices/system/cpu/online',
].join(',');
const READERS = 4;

interface ReaderResult {
  reads: number;
  failures: number;
  maxMs: number;
  ms: number;
  errors: Record<string, number>;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]);
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

test('one million reads: the daemon\'s RSS stays within 10 % and no descriptor leaks', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('steady');
  try {
    const daemon = await node.startDaemon();
    const server = serverPidOf(daemon.pid)!;
    const pids = [daemon.pid, server];
    const gate = join(node.work, 'go');
    const perReader = { warm: 125_000, run: 250_000 };
    // The same reader processes do the warm-up and the run (the gate file starts the run): the
    // daemon caches per container and per caller, so the same callers make both points comparable.
    const reader = `"${process.execPath}" "${viewReader}" ${FILES} 900000 ${perReader.warm} - "${gate}" ${perReader.run}`;
    const sandbox = node.startSandbox('steady-readers', 512, ['sh', '-c', `for i in $(seq ${READERS}); do ${reader} & done; wait`]);
    const rounds = () => sandbox.lines.filter((l) => l.text.startsWith('{')).map((l) => JSON.parse(l.text) as ReaderResult);
    const summary = (results: ReaderResult[]) => {
      for (const r of results) assert.equal(r.failures, 0, JSON.stringify(r.errors));
      return {
        reads: results.reduce((n, r) => n + r.reads, 0),
        seconds: Math.max(...results.map((r) => r.ms)) / 1000,
        slowest: Math.max(...results.map((r) => r.maxMs)),
      };
    };
    /** RSS of both processes and their descriptors, idle, after the collector had a moment. */
    const measure = async () => {
      await sleep(1500);
      return { rss: pids.map(rssKiB), fds: pids.map(openFds) };
    };

    await waitFor('the warm-up', () => rounds().length === READERS, 300_000);
    const warm = summary(rounds());
    const before = await measure();
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(pids.reduce((sum, pid) => sum + rssKiB(pid), 0)), 500);
    writeFileSync(gate, '');
    const exit = await sandbox.run.result;
    clearInterval(sampler);
    assert.equal(exit.code, 0, exit.stderr);
    const run = { ...summary(rounds().slice(READERS)), peakKiB: Math.max(...samples, 0) };
    const after = await measure();

    const total = (m: { rss: number[] }) => m.rss.reduce((a, b) => a + b, 0);
    const growth = (total(after) - total(before)) / total(before);
    t.diagnostic(`warm-up: ${warm.reads} reads in ${warm.seconds.toFixed(1)} s`);
    t.diagnostic(
      `run: ${run.reads} reads in ${run.seconds.toFixed(1)} s (${Math.round(run.reads / run.seconds)} reads/s, ${READERS} readers), slowest ${run.slowest.toFixed(1)} ms`,
    );
    t.diagnostic(
      `RSS supervisor+server: ${before.rss.join('+')} KiB before, ${after.rss.join('+')} KiB after (${(growth * 100).toFixed(1)} %), peak during the run ${run.peakKiB} KiB`,
    );
    t.diagnostic(`open descriptors supervisor, server: ${before.fds.join(', ')} before, ${after.fds.join(', ')} after`);
    assert.equal(run.reads, READERS * perReader.run);
    assert.equal(serverPidOf(daemon.pid), server, 'the same serving process throughout');
    assert.ok(Math.abs(growth) <= 0.1, `RSS changed by ${(growth * 100).toFixed(1)} %`);
    // The serving process keeps cgroup and /proc files open in a bounded cache, which may also
    // shrink (evictions); a leak is growth.
    for (const [i, fds] of after.fds.entries()) assert.ok(fds <= before.fds[i]!, `no descriptor leak: ${before.fds[i]} -> ${fds}`);
  } finally {
    await node.cleanup();
  }
});
