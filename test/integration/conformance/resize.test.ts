/**
 * Conformance under an in-place resize (Kubernetes' InPlacePodVerticalScaling): while a program in
 * `lxcfs-ts run` reads the views in a loop and keeps a CPU busy, the sandbox's cgroup limits are
 * rewritten from outside (CFS quota, cpuset, memory limit). Within a second every file shows the
 * new limits, with one CPU count N everywhere, and no /proc/stat counter ever goes backwards,
 * also when N shrinks and grows again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { requireRoot, sandboxCgroups, startLxcfsTs, waitFor } from '../sandbox/helpers.js';
import { assertMonotonic, cpuList, type CpuLines } from './program-output.js';

const hostOnline = cpuList(readFileSync('/sys/devices/system/cpu/online', 'latin1'));
/** Long enough for every cached limit (1 s) to be re-read, plus a loop iteration. */
const settleMs = 1500;
/** How long each phase is posted: several passes of the loop, also on a loaded host. */
const holdMs = 1500;

/** One pass of the reader loop: the phase posted when it started and ended, and what it read. */
interface Sample {
  phase: string;
  endPhase: string;
  cpuLines: CpuLines;
  fields: Map<string, string>;
}

/**
 * Reads the views in a loop until `<dir>/done` exists, each pass framed by the posted phase,
 * next to a busy loop (niced, so it does not starve the reader within the quota) that keeps the
 * CPU counters moving.
 */
function readerLoop(dir: string): string {
  return `
touch ${dir}/started
nice -n 19 sh -c 'while :; do :; done' &
i=0
while [ ! -e ${dir}/done ] && [ $i -lt 400 ]; do
  echo "=== $(cat ${dir}/phase)"
  grep '^cpu' /proc/stat
  echo "processors $(grep -c '^processor' /proc/cpuinfo)"
  echo "online $(cat /sys/devices/system/cpu/online)"
  echo "possible $(cat /sys/devices/system/cpu/possible)"
  echo "present $(cat /sys/devices/system/cpu/present)"
  echo "dirs $(ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l)"
  echo "getconf $(getconf _NPROCESSORS_ONLN)"
  echo "memtotal $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2)"
  echo "--- $(cat ${dir}/phase)"
  i=$((i+1))
  sleep 0.1
done
kill $!`;
}

function parseSamples(stdout: string): Sample[] {
  return stdout
    .split('=== ')
    .slice(1)
    .filter((chunk) => chunk.includes('\n--- '))
    .map((chunk) => {
      const lines = chunk.split('\n');
      const end = lines.findIndex((l) => l.startsWith('--- '));
      const body = lines.slice(1, end);
      const fields = new Map<string, string>();
      for (const l of body.filter((x) => !x.startsWith('cpu'))) {
        const sp = l.indexOf(' ');
        fields.set(l.slice(0, sp), l.slice(sp + 1).trim());
      }
      return {
        phase: lines[0]!.trim(),
        endPhase: lines[end]!.slice(4).trim(),
        cpuLines: body.filter((l) => l.startsWith('cpu')).map((l) => l.split(/\s+/)),
        fields,
      };
    });
}

describe('conformance: in-place resize of a running sandbox', () => {
  it('quota, cpuset and memory changes show within a second, one N everywhere, counters never go backwards', async (t) => {
    if (!requireRoot(t)) return;
    assert.ok(hostOnline.length >= 2, 'the resize test needs a host with at least 2 CPUs');
    const lastCpu = hostOnline[hostOnline.length - 1]!;
    const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-resize-'));
    const post = (phase: string) => writeFileSync(join(dir, 'phase'), `${phase}\n`);
    post('start');
    const run = startLxcfsTs(['run', '--memory', '512M', '--cpus', '1', '--', 'sh', '-c', readerLoop(dir)], 90_000);
    try {
      await waitFor('the sandbox to start', () => existsSync(join(dir, 'started')) || run.child.exitCode !== null);
      const cgroups = sandboxCgroups(run.child.pid!);
      const cgroup = (controller: string) => {
        const found = cgroups.find((c) => c.startsWith(`/sys/fs/cgroup/${controller}/`));
        assert.ok(found, `no ${controller} cgroup for the sandbox among ${cgroups.join(', ')}`);
        return found;
      };
      // Each change: post a transition, let the loop's current pass end, change, settle, post the phase.
      const change = async (phase: string, writes: [string, string, string][]) => {
        post(`before-${phase}`);
        await sleep(600);
        for (const [controller, file, value] of writes) writeFileSync(join(cgroup(controller), file), value);
        await sleep(settleMs);
        post(phase);
        await sleep(holdMs);
      };
      await sleep(settleMs);
      post('quota-1');
      await sleep(holdMs);
      await change('quota-2-1G', [
        ['cpu', 'cpu.cfs_quota_us', '200000'],
        ['memory', 'memory.limit_in_bytes', String(1024 * 1024 * 1024)],
      ]);
      await change('cpuset-last', [['cpuset', 'cpuset.cpus', String(lastCpu)]]);
      await change('quota-1-all', [
        ['cpuset', 'cpuset.cpus', readFileSync('/sys/devices/system/cpu/online', 'latin1').trim()],
        ['cpu', 'cpu.cfs_quota_us', '100000'],
      ]);
      writeFileSync(join(dir, 'done'), '');
      const result = await run.result;
      assert.equal(result.code, 0, result.stderr);

      const samples = parseSamples(result.stdout);
      assertMonotonic(
        samples.map((s) => s.cpuLines),
        '/proc/stat across the resizes',
      );
      const expected: Record<string, { n: number; memKb: number }> = {
        'quota-1': { n: 1, memKb: 524288 },
        'quota-2-1G': { n: Math.min(2, hostOnline.length), memKb: 1048576 },
        'cpuset-last': { n: 1, memKb: 1048576 },
        'quota-1-all': { n: 1, memKb: 1048576 },
      };
      for (const [phase, want] of Object.entries(expected)) {
        const stable = samples.filter((s) => s.phase === phase && s.endPhase === phase);
        assert.ok(stable.length >= 2, `only ${stable.length} samples in phase ${phase}`);
        t.diagnostic(`${phase}: ${stable.length} settled samples of ${samples.length}`);
        for (const s of stable) {
          const what = `phase ${phase}`;
          assert.deepEqual(
            s.cpuLines.map((l) => l[0]).slice(1),
            Array.from({ length: want.n }, (_, i) => `cpu${i}`),
            `${what}: /proc/stat cpu lines`,
          );
          assert.equal(Number(s.fields.get('processors')), want.n, `${what}: cpuinfo`);
          for (const f of ['online', 'possible', 'present']) assert.equal(cpuList(s.fields.get(f)!).length, want.n, `${what}: ${f}`);
          assert.equal(Number(s.fields.get('dirs')), want.n, `${what}: cpuN directories`);
          assert.equal(Number(s.fields.get('getconf')), want.n, `${what}: getconf _NPROCESSORS_ONLN`);
          assert.equal(Number(s.fields.get('memtotal')), want.memKb, `${what}: MemTotal`);
        }
      }
      // N went 1 -> 2 -> 1 -> 1 and the counters kept rising: the busy loop shows in the cpu line
      const first = samples[0]!.cpuLines[0]!.slice(1).map(Number);
      const last = samples[samples.length - 1]!.cpuLines[0]!.slice(1).map(Number);
      assert.ok(last[0]! - first[0]! > 100, `user ticks ${first[0]} -> ${last[0]} with a busy loop over ~13 s`);
    } finally {
      writeFileSync(join(dir, 'done'), '');
      await run.result;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
