/**
 * Read benchmark: lxcfs-ts against Debian's lxcfs, measured side by side in one run.
 *
 * For each view file, a reader in a container-like sandbox (`lxcfs-ts run`: own cgroup with a
 * 512 MiB limit, own pid namespace, the view bound over /proc) opens, reads and closes the file
 * in a loop:
 *   - pinned:     both daemons and the reader on CPU 0, one reader (pure CPU cost per op)
 *   - throughput: nothing pinned, two readers at once (aggregate ops/s)
 * Rounds alternate between targets; medians over rounds are reported with ratios, together with
 * each daemon's CPU time per op and its memory after the load.
 *
 *   node dist/bench/read-bench.js [--files proc/meminfo,proc/stat] [--ops 5000] [--rounds 4] [--flags "--enable-cfs"] [--ours-flags "--threads 1"]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type BenchDaemon, cpuSeconds, memory, pin, startDaemons } from './daemons.js';

interface ClientResult {
  ops: number;
  p50: number;
  p90: number;
  p99: number;
  opsPerSec: number;
  bytesPerOp: number;
}

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: 'proc/meminfo' },
    ops: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '4' },
    flags: { type: 'string', default: '--enable-cfs' },
    // lxcfs-ts only (e.g. --threads N), to compare its settings against lxcfs in one run.
    'ours-flags': { type: 'string', default: '' },
    memory: { type: 'string', default: '512M' },
  },
});
const files = values.files.split(',');
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const flags = values.flags.split(' ').filter(Boolean);
const oursFlags = values['ours-flags'].split(' ').filter(Boolean);
const cli = new URL('../src/cli.js', import.meta.url).pathname;
const client = new URL('./read-client.js', import.meta.url).pathname;

if (process.getuid?.() !== 0) {
  console.error('read-bench needs root (it mounts both daemons and creates cgroups)');
  process.exit(1);
}

function runClient(view: string | null, file: string, pinCpu: string | null): Promise<ClientResult> {
  const reader = [
    ...(pinCpu ? ['taskset', '-c', pinCpu] : []),
    process.execPath,
    client,
    `/${file}`,
    String(ops),
  ];
  // The kernel baseline reads the host file directly, from the same kind of process.
  const argv = view
    ? [cli, 'run', '--view', view, '--memory', values.memory, '--', ...reader]
    : reader.slice(0);
  const command = view ? process.execPath : argv.shift()!;
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`reader exited ${code}: ${out}`));
      resolve(JSON.parse(line) as ClientResult);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function main(): Promise<void> {
  const workdir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-bench-'));
  let daemons: BenchDaemon[] = [];
  const stopAll = async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    rmSync(workdir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    void stopAll().finally(() => process.exit(130));
  });
  try {
    daemons = await startDaemons(workdir, flags, oursFlags);
    const [lxcfs, ours] = daemons as [BenchDaemon, BenchDaemon];
    console.log(
      `# read benchmark: ${ops} ops x ${rounds} rounds per target, daemon flags: ${flags.join(' ') || '(none)'}${oursFlags.length ? `, lxcfs-ts also ${oursFlags.join(' ')}` : ''}`,
    );
    for (const file of files) {
      // Pinned: everything on CPU 0, one reader.
      for (const d of daemons) pin(d, '0');
      const pinned: Record<string, number[]> = { kernel: [], lxcfs: [], 'lxcfs-ts': [] };
      const cpuPerOp: Record<string, number[]> = { lxcfs: [], 'lxcfs-ts': [] };
      for (let r = 0; r < rounds; r++) {
        pinned.kernel!.push((await runClient(null, file, '0')).p50);
        for (const d of [lxcfs, ours]) {
          const before = cpuSeconds(d);
          pinned[d.name]!.push((await runClient(d.mountpoint, file, '0')).p50);
          // warm-up reads are included; they are 4% of the ops
          cpuPerOp[d.name]!.push(((cpuSeconds(d) - before) / (ops + 200)) * 1e6);
        }
      }
      // Throughput: nothing pinned, two concurrent readers per target.
      for (const d of daemons) pin(d, '0-1');
      const throughput: Record<string, number[]> = { lxcfs: [], 'lxcfs-ts': [] };
      for (let r = 0; r < rounds; r++) {
        for (const d of [lxcfs, ours]) {
          const pair = await Promise.all([
            runClient(d.mountpoint, file, null),
            runClient(d.mountpoint, file, null),
          ]);
          throughput[d.name]!.push(pair[0].opsPerSec + pair[1].opsPerSec);
        }
      }
      const p50 = (name: string) => median(pinned[name]!);
      const tput = (name: string) => median(throughput[name]!);
      console.log(`\n## /${file}`);
      console.log('| target | p50 pinned (µs) | daemon CPU/op pinned (µs) | 2-reader throughput (ops/s) |');
      console.log('|---|---|---|---|');
      console.log(`| kernel | ${fmt(p50('kernel'))} | - | - |`);
      for (const name of ['lxcfs', 'lxcfs-ts']) {
        console.log(
          `| ${name} | ${fmt(p50(name))} | ${fmt(median(cpuPerOp[name]!))} | ${fmt(tput(name), 0)} |`,
        );
      }
      console.log(
        `ratios lxcfs-ts/lxcfs: p50 ${fmt(p50('lxcfs-ts') / p50('lxcfs'), 2)}x, throughput ${fmt(tput('lxcfs-ts') / tput('lxcfs'), 2)}x`,
      );
    }
    console.log('\n## memory after the load');
    for (const d of daemons) {
      const procs = memory(d);
      const total = procs.reduce((s, p) => s + p.rssMiB, 0);
      const detail = procs.map(
        (p) => `pid ${p.pid}: ${fmt(p.rssMiB)} MiB (peak ${fmt(p.peakMiB)}), ${p.threads} threads`,
      );
      console.log(`- ${d.name}: ${fmt(total)} MiB RSS in total; ${detail.join('; ')}`);
    }
  } finally {
    await stopAll();
  }
}

await main();
