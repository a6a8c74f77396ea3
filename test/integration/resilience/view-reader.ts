/**
 * A reader run inside a sandbox: opens, reads and closes view files in a tight loop (rotating
 * through FILES) until DURATION_MS have passed or MAX_READS reads were made (0: no limit), checking
 * each content against EXPECT (a regular expression, `-` for none). Prints `reading` once it has
 * read once, then {reads, failures, wrong, maxMs, p99Ms, ms, errors} as JSON.
 *   node view-reader.js FILES DURATION_MS MAX_READS EXPECT [GATE MAX_READS_2]
 * With GATE, it then waits (idle) until the file GATE exists and does a second round of
 * MAX_READS_2 reads, printing a second JSON line: the same process, so the same caller, for both.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';

const [filesArg, durationArg, maxArg, expectArg, gate, max2Arg] = process.argv.slice(2);
const files = filesArg!.split(',');
const duration = Number(durationArg);
const expect = expectArg && expectArg !== '-' ? new RegExp(expectArg, 'm') : null;
const buf = Buffer.alloc(256 * 1024);

function round(maxReads: number): void {
  let reads = 0;
  let failures = 0;
  let wrong = 0;
  /** The first read that did not match, so a failing test can show what was read instead. */
  let firstWrong: string | undefined;
  let maxMs = 0;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const started = Date.now();
  const end = started + duration;
  while (reads + failures < maxReads && Date.now() < end) {
    const file = files[(reads + failures) % files.length]!;
    const t0 = performance.now();
    try {
      const fd = openSync(file, 'r');
      let total = 0;
      try {
        for (;;) {
          const n = readSync(fd, buf, total, buf.length - total, null);
          if (n === 0) break;
          total += n;
        }
      } finally {
        closeSync(fd);
      }
      if (total === 0) throw Object.assign(new Error('empty read'), { code: 'EMPTY' });
      const text = buf.toString('utf8', 0, total);
      if (expect && !expect.test(text)) {
        wrong++;
        firstWrong ??= `${total} bytes: ${text.slice(0, 160)}`;
      }
      reads++;
      if (reads === 1) process.stdout.write('reading\n');
    } catch (err) {
      failures++;
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      errors[code] = (errors[code] ?? 0) + 1;
    }
    const ms = performance.now() - t0;
    maxMs = Math.max(maxMs, ms);
    latencies.push(ms);
  }
  latencies.sort((a, b) => a - b);
  const p99Ms = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0;
  process.stdout.write(`${JSON.stringify({ reads, failures, wrong, maxMs, p99Ms, ms: Date.now() - started, errors, firstWrong })}\n`);
}

round(Number(maxArg) || Infinity);
if (gate) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(gate)) Atomics.wait(pause, 0, 0, 50);
  round(Number(max2Arg) || Infinity);
}
