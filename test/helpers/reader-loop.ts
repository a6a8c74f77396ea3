/**
 * A reader that opens, reads and closes one file in a tight loop for a while, then prints
 * {reads, failures, maxMs, errors} as JSON. Run as its own process so that the daemon's threads
 * and the reader never share an event loop.
 *   node reader-loop.js FILE DURATION_MS
 */
import { closeSync, openSync, readSync } from 'node:fs';

const [file, durationArg] = process.argv.slice(2);
const duration = Number(durationArg ?? '3000');
const buf = Buffer.alloc(64 * 1024);
let reads = 0;
let failures = 0;
let maxMs = 0;
const errors: Record<string, number> = {};
const end = Date.now() + duration;
while (Date.now() < end) {
  const started = performance.now();
  try {
    const fd = openSync(file!, 'r');
    try {
      let total = 0;
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        total += n;
      }
      if (total === 0) throw Object.assign(new Error('empty read'), { code: 'EMPTY' });
    } finally {
      closeSync(fd);
    }
    reads++;
  } catch (err) {
    failures++;
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    errors[code] = (errors[code] ?? 0) + 1;
  }
  maxMs = Math.max(maxMs, performance.now() - started);
}
process.stdout.write(`${JSON.stringify({ reads, failures, maxMs, errors })}\n`);
