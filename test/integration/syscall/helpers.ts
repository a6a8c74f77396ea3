/**
 * Pieces of the syscall view's integration tests: the C probe that calls sysinfo(2) as programs
 * do (test/fixtures/sandbox/sysinfo-probe.c), built once per test process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../../../../test/fixtures/sandbox/sysinfo-probe.c', import.meta.url));
let built: { dir: string; probe: string } | null = null;

/** The probe binary (static: it also runs in a rootfs of its own). */
export function sysinfoProbe(): string {
  if (built && existsSync(built.probe)) return built.probe;
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-sysinfo-'));
  const probe = join(dir, 'sysinfo-probe');
  const cc = spawnSync('cc', ['-static', '-O2', '-pthread', '-o', probe, source], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`building the sysinfo probe failed: ${cc.stderr}`);
  built = { dir, probe };
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return probe;
}

/** The host's MemTotal in bytes. */
export function hostMemTotalBytes(): number {
  const match = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  if (!match) throw new Error('no MemTotal in /proc/meminfo');
  return Number(match[1]) * 1024;
}

/** `key=value` lines as numbers or strings. */
export function fields(stdout: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const match = /^([\w.]+)=(.*)$/.exec(line);
    if (match) map.set(match[1]!, match[2]!);
  }
  return map;
}

export function num(map: Map<string, string>, key: string): number {
  const value = map.get(key);
  if (value === undefined) throw new Error(`no ${key} in the probe's output`);
  return Number(value);
}

/** busybox free -m's "Mem:" row as numbers (total used free shared buff/cache available). */
export function busyboxFreeMem(stdout: string): number[] {
  const row = stdout.split('\n').find((l) => l.startsWith('Mem:'));
  if (!row) throw new Error(`no Mem: row in:\n${stdout}`);
  return row.split(/\s+/).slice(1).map(Number);
}

/** What the probe's `loop` mode prints at its end. */
export interface LoopResult {
  calls: number;
  failures: number;
  lastErrno: number;
  wrong: number;
  maxMs: number;
}

type Diagnostics = { diagnostic(msg: string): void };

/** Reports each calling sandbox's loop and asserts it made progress with no failed or wrong call. */
export function checkCallers(t: Diagnostics, labels: readonly string[], results: readonly LoopResult[]): void {
  for (const [i, r] of results.entries()) {
    t.diagnostic(`${labels[i]}: ${r.calls} calls, ${r.failures} failed, ${r.wrong} wrong, slowest ${r.maxMs.toFixed(1)} ms`);
  }
  for (const r of results) {
    assert.ok(r.calls > 1000, `the caller made progress (${r.calls} calls)`);
    assert.equal(r.failures, 0, `no failed call (last errno ${r.lastErrno})`);
    assert.equal(r.wrong, 0, 'every call showed the sandbox\'s own total');
  }
}
