#!/usr/bin/env node
// Runs the compiled test suites tier by tier and exits non-zero if any tier fails.
//   node scripts/run-tests.mjs            -> every tier
//   node scripts/run-tests.mjs unit e2e   -> only those tiers
// Unit tests run in parallel; integration and e2e tests touch mounts, cgroups and servers on this
// machine, so they run one file at a time.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tiers = [
  { name: 'unit', concurrency: 2 },
  { name: 'integration', concurrency: 1 },
  { name: 'e2e', concurrency: 1 },
  // cgroup v2, live in QEMU guests (test/v2): one file booting both kernels' guests at once
  { name: 'v2', concurrency: 1 },
];

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...testFiles(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !tiers.some((t) => t.name === w));
if (unknown.length > 0) {
  console.error(`unknown test tier(s): ${unknown.join(', ')}; known: ${tiers.map((t) => t.name).join(', ')}`);
  process.exit(2);
}

const failed = [];
for (const tier of tiers) {
  if (wanted.length > 0 && !wanted.includes(tier.name)) continue;
  const files = testFiles(join(root, 'dist', 'test', tier.name));
  if (files.length === 0) continue;
  console.log(`\n=== ${tier.name} tests (${files.length} files) ===`);
  const result = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${tier.concurrency}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit', cwd: root },
  );
  if (result.status !== 0) failed.push(tier.name);
}
if (failed.length > 0) {
  console.error(`\nFAILED tiers: ${failed.join(', ')}`);
  process.exit(1);
}
console.log('\nall test tiers passed');
