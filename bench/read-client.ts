/**
 * The measuring side of the read benchmark: open + read-to-EOF + close of one file, repeated.
 * Prints one JSON line: per-op latency percentiles (µs) and the achieved rate.
 *   node read-client.js FILE OPS [WARMUP]
 * Run it in its own process (pinned with taskset when measuring pure CPU cost).
 */
import { closeSync, openSync, readSync } from 'node:fs';

const [file, opsArg, warmupArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: read-client FILE OPS [WARMUP]');
  process.exit(2);
}
const ops = Number(opsArg ?? '5000');
const warmup = Number(warmupArg ?? '200');
const buf = Buffer.alloc(64 * 1024);

function once(): number {
  const fd = openSync(file!, 'r');
  let total = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    total += n;
  }
  closeSync(fd);
  return total;
}

for (let i = 0; i < warmup; i++) once();
const samples = new Float64Array(ops);
let bytes = 0;
const started = process.hrtime.bigint();
for (let i = 0; i < ops; i++) {
  const t0 = process.hrtime.bigint();
  bytes += once();
  samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
}
const elapsedSec = Number(process.hrtime.bigint() - started) / 1e9;
samples.sort();
const pct = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
process.stdout.write(
  `${JSON.stringify({ ops, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), opsPerSec: ops / elapsedSec, bytesPerOp: bytes / ops })}\n`,
);
