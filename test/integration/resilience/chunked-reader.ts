/**
 * A reader that asks for a view file a few bytes at a time, as `dd bs=7` or a line-buffered tool
 * would: ROUNDS times opens FILE, reads it in CHUNK-byte reads to the end, closes it, and checks
 * that the pieces make one whole file: every line matches LINE and the file contains EXPECT.
 * Pieces of two different renderings show up as broken or doubled lines. Prints
 * {rounds, wrong, failures, firstWrong} as JSON.
 *   node chunked-reader.js FILE CHUNK ROUNDS LINE EXPECT
 */
import { closeSync, openSync, readSync } from 'node:fs';

const [file, chunkArg, roundsArg, lineArg, expectArg] = process.argv.slice(2);
const chunk = Number(chunkArg);
const line = new RegExp(lineArg!);
const expect = new RegExp(expectArg!, 'm');
const buf = Buffer.alloc(256 * 1024);

let wrong = 0;
let failures = 0;
let firstWrong: string | undefined;
for (let round = 0; round < Number(roundsArg); round++) {
  try {
    const fd = openSync(file!, 'r');
    let total = 0;
    try {
      for (let n; (n = readSync(fd, buf, total, chunk, null)) > 0;) total += n;
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8', 0, total);
    const lines = text.split('\n').slice(0, -1);
    const names = new Set(lines.map((l) => l.split(':')[0]));
    if (!text.endsWith('\n') || !expect.test(text) || names.size !== lines.length || !lines.every((l) => line.test(l))) {
      wrong++;
      firstWrong ??= text;
    }
  } catch (err) {
    failures++;
    firstWrong ??= String(err);
  }
}
console.log(JSON.stringify({ rounds: Number(roundsArg), wrong, failures, firstWrong }));
