/**
 * A hostile neighbour run inside a sandbox: opens COUNT handles of view files (rotating through
 * FILES) and reads one byte from each, so every handle holds a snapshot of its file, prints
 * `holding N`, keeps them all open for HOLD_MS and exits.
 *   node handle-hoarder.js FILES COUNT HOLD_MS
 */
import { openSync, readSync } from 'node:fs';

const [filesArg, countArg, holdArg] = process.argv.slice(2);
const files = filesArg!.split(',');
const byte = Buffer.alloc(1);
const held: number[] = [];
let failed = 0;
for (let i = 0; i < Number(countArg); i++) {
  try {
    const fd = openSync(files[i % files.length]!, 'r');
    held.push(fd);
    readSync(fd, byte, 0, 1, null);
  } catch {
    failed++;
  }
}
console.log(`holding ${held.length} (${failed} failed)`);
// The handles stay open until the process exits; the timer keeps it alive until then.
setTimeout(() => process.exit(0), Number(holdArg));
