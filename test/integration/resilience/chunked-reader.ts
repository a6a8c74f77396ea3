/**
 * A reader that asks for a view file a few bytes at a time, as `dd bs=7` or a line-buffered tool
 * would: ROUNDS times opens FILE, reads it in CHUNK-byte reads to the end, closes it, and checks
 * that the pieces make one whole file: every line matches LINE and the file contains EXPECT.
 * Pieces of two different renderings show up as broken or doubled lines, and in a meminfo whose
 * values move, as Active or Inactive no longer being the sum of their (anon) and (file) lines.
 * DELAY_MS (default 0) waits between reads, so that values change while a file is being read.
 * Prints {rounds, wrong, failures, firstWrong} as JSON.
 *   node chunked-reader.js FILE CHUNK ROUNDS LINE EXPECT [DELAY_MS]
 */
import { closeSync, openSync, readSync } from 'node:fs';

const [file, chunkArg, roundsArg, lineArg, expectArg, delayArg] = process.argv.slice(2);
const delayMs = Number(delayArg ?? 0);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const chunk = Number(chunkArg);
const line = new RegExp(lineArg!);
const expect = new RegExp(expectArg!, 'm');
const buf = Buffer.alloc(256 * 1024);

/** In a meminfo: Active = Active(anon) + Active(file), and the same for Inactive (when present). */
function sumsHold(text: string): boolean {
  const value = (name: string) => {
    const match = new RegExp(`^${name.replace(/[()]/g, '\\$&')}: +(\\d+)`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  return ['Active', 'Inactive'].every((name) => {
    const [all, anon, file] = [value(name), value(`${name}(anon)`), value(`${name}(file)`)];
    return all === undefined || anon === undefined || file === undefined || all === anon + file;
  });
}

let wrong = 0;
let failures = 0;
let firstWrong: string | undefined;
for (let round = 0; round < Number(roundsArg); round++) {
  try {
    const fd = openSync(file!, 'r');
    let total = 0;
    try {
      for (let n; (n = readSync(fd, buf, total, chunk, null)) > 0;) {
        total += n;
        if (delayMs > 0) Atomics.wait(sleeper, 0, 0, delayMs);
      }
    } finally {
      closeSync(fd);
    }
    const text = buf.toString('utf8', 0, total);
    const lines = text.split('\n').slice(0, -1);
    const names = new Set(lines.map((l) => l.split(':')[0]));
    if (!text.endsWith('\n') || !expect.test(text) || names.size !== lines.length || !lines.every((l) => line.test(l)) || !sumsHold(text)) {
      wrong++;
      firstWrong ??= text;
    }
  } catch (err) {
    failures++;
    firstWrong ??= String(err);
  }
}
console.log(JSON.stringify({ rounds: Number(roundsArg), wrong, failures, firstWrong }));
