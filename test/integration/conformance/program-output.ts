/**
 * Parsers for what real programs print (procps free/top/vmstat/uptime/ps, util-linux lscpu), and
 * for the sectioned output of test/fixtures/conformance/programs.sh. Each parser fails loudly on
 * output it does not recognise, so a format change cannot turn a check into a no-op.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from '../sandbox/helpers.js';

export const conformanceFixtures = join(repoRoot, 'test/fixtures/conformance');

/** `=== name` sections of a script's output, name -> body (without the trailing newline). */
export function parseSections(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  let name: string | null = null;
  let body: string[] = [];
  const flush = () => {
    if (name !== null) sections.set(name, body.join('\n'));
  };
  for (const line of stdout.split('\n')) {
    if (line.startsWith('=== ')) {
      flush();
      name = line.slice(4).trim();
      body = [];
    } else if (name !== null) {
      body.push(line);
    }
  }
  flush();
  return sections;
}

export function section(sections: Map<string, string>, name: string): string {
  const body = sections.get(name);
  assert.ok(body !== undefined, `the script printed no "${name}" section`);
  return body;
}

export function numberIn(sections: Map<string, string>, name: string): number {
  const value = Number(section(sections, name).trim());
  assert.ok(Number.isFinite(value), `section ${name} is not a number: ${section(sections, name)}`);
  return value;
}

/** `Key: value kB` lines of /proc/meminfo, in kB (or plain counts). */
export function meminfoFields(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(\d+)/.exec(line);
    if (m) fields.set(m[1]!, Number(m[2]));
  }
  return fields;
}

export interface FreeOutput {
  mem: { total: number; used: number; free: number; shared: number; buffCache: number; available: number };
  swap: { total: number; used: number; free: number };
}

/** procps `free` (any unit): the Mem: and Swap: rows. */
export function parseFree(text: string): FreeOutput {
  const row = (label: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${label}:`));
    assert.ok(line, `free printed no ${label}: row:\n${text}`);
    return line.split(/\s+/).slice(1).map(Number);
  };
  const [total, used, free, shared, buffCache, available] = row('Mem');
  const [swapTotal, swapUsed, swapFree] = row('Swap');
  return {
    mem: { total: total!, used: used!, free: free!, shared: shared!, buffCache: buffCache!, available: available! },
    swap: { total: swapTotal!, used: swapUsed!, free: swapFree! },
  };
}

export interface TopOutput {
  /** What follows "up" in the summary line, e.g. "0 min" or "1:14". */
  up: string;
  loadavg: number[];
  tasks: { total: number; running: number; sleeping: number };
  cpuPercent: Map<string, number>;
  memMiB: { total: number; free: number; used: number; buffCache: number };
  swapMiB: { total: number; availMem: number };
  processes: { pid: number; res: number; memPercent: number; command: string }[];
}

/** procps-ng `top -bn1` (default fields, MiB units). */
export function parseTop(text: string): TopOutput {
  const lines = text.split('\n');
  const summary = /^top - \S+ up (.+?),\s+\d+ users?,\s+load average: ([\d.]+), ([\d.]+), ([\d.]+)/.exec(lines[0]!);
  assert.ok(summary, `unrecognised top summary: ${lines[0]}`);
  const tasks = /^Tasks:\s+(\d+) total,\s+(\d+) running,\s+(\d+) sleeping/.exec(lines[1]!);
  assert.ok(tasks, `unrecognised top tasks line: ${lines[1]}`);
  assert.match(lines[2]!, /^%Cpu\(s\):/);
  const cpuPercent = new Map<string, number>();
  for (const m of lines[2]!.slice(8).matchAll(/([\d.]+) (\w+)/g)) cpuPercent.set(m[2]!, Number(m[1]));
  const mem = /^MiB Mem :\s+([\d.]+) total,\s+([\d.]+) free,\s+([\d.]+) used,\s+([\d.]+) buff\/cache/.exec(lines[3]!);
  assert.ok(mem, `unrecognised top memory line: ${lines[3]}`);
  const swap = /^MiB Swap:\s+([\d.]+) total,.*?([\d.]+) avail Mem/.exec(lines[4]!);
  assert.ok(swap, `unrecognised top swap line: ${lines[4]}`);
  const header = lines.findIndex((l) => /^\s+PID USER/.test(l));
  assert.ok(header > 0, 'top printed no process table');
  const columns = lines[header]!.trim().split(/\s+/);
  const at = (name: string) => {
    const i = columns.indexOf(name);
    assert.ok(i >= 0, `top has no ${name} column`);
    return i;
  };
  const processes = lines
    .slice(header + 1)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return {
        pid: Number(f[at('PID')]),
        res: Number(f[at('RES')]),
        memPercent: Number(f[at('%MEM')]),
        command: f.slice(at('COMMAND')).join(' '),
      };
    });
  return {
    up: summary[1]!.trim(),
    loadavg: [Number(summary[2]), Number(summary[3]), Number(summary[4])],
    tasks: { total: Number(tasks[1]), running: Number(tasks[2]), sleeping: Number(tasks[3]) },
    cpuPercent,
    memMiB: { total: Number(mem[1]), free: Number(mem[2]), used: Number(mem[3]), buffCache: Number(mem[4]) },
    swapMiB: { total: Number(swap[1]), availMem: Number(swap[2]) },
    processes,
  };
}

/** procps `vmstat` (one report): column name -> value. */
export function parseVmstat(text: string): Map<string, number> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  assert.ok(lines.length >= 3, `unrecognised vmstat output:\n${text}`);
  const names = lines[1]!.trim().split(/\s+/);
  const values = lines[2]!.trim().split(/\s+/).map(Number);
  assert.equal(names.length, values.length, `vmstat columns:\n${text}`);
  return new Map(names.map((n, i) => [n, values[i]!]));
}

/** procps `uptime`: what follows "up" and the load averages. */
export function parseUptimeCommand(text: string): { up: string; loadavg: number[] } {
  const m = /up (.+?),\s+\d+ users?,\s+load average: ([\d.]+), ([\d.]+), ([\d.]+)/.exec(text);
  assert.ok(m, `unrecognised uptime output: ${text}`);
  return { up: m[1]!.trim(), loadavg: [Number(m[2]), Number(m[3]), Number(m[4])] };
}

/** /proc/loadavg: the three averages, running/total and the last pid. */
export function parseLoadavg(text: string): { avg: number[]; running: number; total: number; lastPid: number } {
  const m = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)\/(\d+) (\d+)$/.exec(text.trim());
  assert.ok(m, `unrecognised loadavg: ${text}`);
  return {
    avg: [Number(m[1]), Number(m[2]), Number(m[3])],
    running: Number(m[4]),
    total: Number(m[5]),
    lastPid: Number(m[6]),
  };
}

export interface PsRow {
  pid: number;
  etimes: number;
  /** ETIME in seconds, parsed from [[dd-]hh:]mm:ss. */
  etime: number;
  /** LSTART as epoch seconds (ps ran with TZ=UTC). */
  lstart: number;
  args: string;
}

/** `TZ=UTC ps -eo pid,etimes,etime,lstart,args`. */
export function parsePs(text: string): PsRow[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  assert.match(lines[0]!, /PID\s+ELAPSED\s+ELAPSED\s+STARTED\s+COMMAND/);
  return lines.slice(1).map((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})\s+(.*)$/.exec(line);
    assert.ok(m, `unrecognised ps row: ${line}`);
    const lstart = Date.parse(`${m[4]} UTC`) / 1000;
    assert.ok(Number.isFinite(lstart), `unparsable start time ${m[4]}`);
    return { pid: Number(m[1]), etimes: Number(m[2]), etime: parseEtime(m[3]!), lstart, args: m[5]! };
  });
}

/**
 * The row of the `ps` that printed the table. procps 4.0.2 turns the uptime it parsed (N.NN s)
 * back into ticks by multiplying by 100 and truncating, one tick short for some values, so its own
 * row, started in that tick, sometimes shows a wrapped ELAPSED (4123168608). How often depends on
 * the uptime's magnitude, with the kernel's own /proc as with the view (docs/views.md, "What a file view
 * cannot change"). Its start date is still checked.
 */
export function isPsItself(row: PsRow): boolean {
  return /^ps /.test(row.args);
}

export function parseEtime(text: string): number {
  const m = /^(?:(?:(\d+)-)?(\d+):)?(\d+):(\d+)$/.exec(text);
  assert.ok(m, `unrecognised ETIME ${text}`);
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/** util-linux `lscpu`: "Key: value" lines. */
export function parseLscpu(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(.*)$/.exec(line);
    if (m) fields.set(m[1]!.trim(), m[2]!.trim());
  }
  assert.ok(fields.has('CPU(s)'), `unrecognised lscpu output:\n${text}`);
  return fields;
}

/** A kernel CPU list ("0-2,5") as numbers. */
export function cpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (part === '') continue;
    const [a, b] = part.split('-').map(Number);
    for (let c = a!; c <= (b ?? a)!; c++) out.push(c);
  }
  return out;
}

/** The cpu lines of a /proc/stat snapshot as [name, ...ticks]. */
export type CpuLines = string[][];

/** Busy (everything but idle and iowait) and idle seconds of a /proc/stat cpu line. */
export function busyIdle(line: readonly string[]): { busy: number; idle: number } {
  const v = line.slice(1).map(Number);
  const idle = v[3]! + v[4]!;
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, idle: idle / 100 };
}

/**
 * Asserts that no counter of any cpu line goes down from one snapshot to the next (lines are
 * matched by name; a line that disappears and comes back must not have gone down either).
 */
export function assertMonotonic(snapshots: readonly CpuLines[], what: string): void {
  const last = new Map<string, number[]>();
  snapshots.forEach((snapshot, k) => {
    for (const line of snapshot) {
      const values = line.slice(1).map(Number);
      const before = last.get(line[0]!);
      if (before !== undefined) {
        values.forEach((v, i) => {
          assert.ok(
            v >= before[i]!,
            `${what}: ${line[0]} field ${i + 1} went from ${before[i]} to ${v} at snapshot ${k}`,
          );
        });
      }
      last.set(line[0]!, values);
    }
  });
}
