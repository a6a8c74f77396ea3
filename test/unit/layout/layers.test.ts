/**
 * The source tree reads top-down: a directory of src/ imports only from directories of lower
 * layers (and from itself), and no modules import each other in a circle. Checked on the
 * TypeScript sources, so a new arrow back up fails here with the file that drew it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../helpers/paths.js';

/** Higher layers may import lower ones; directories of one layer do not import each other. */
const LAYERS: Record<string, number> = {
  'cli.ts': 7,
  agent: 6,
  sandbox: 6,
  webhook: 6,
  fs: 5,
  syscall: 5,
  container: 4,
  views: 3,
  cgroup: 2,
  fuse: 2,
  native: 1,
  common: 0,
};

const srcRoot = join(repoRoot, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The src-relative paths (`agent/serve-main.ts`) a module imports from within src/. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms)].map((m) => m[1]!);
  return specifiers.map((s) => relative(srcRoot, normalize(join(dirname(file), s.replace(/\.js$/, '.ts')))));
}

/** The layer a src-relative path belongs to: its top directory (or the top-level file). */
function topOf(path: string): string {
  return path.split('/')[0]!;
}

const graph = new Map(sources(srcRoot).map((f) => [relative(srcRoot, f), localImports(f)]));

describe('source layout', () => {
  it('knows the layer of every top-level directory of src/', () => {
    const unknown = [...new Set([...graph.keys()].map(topOf))].filter((top) => LAYERS[top] === undefined);
    assert.deepEqual(unknown, [], 'a new top-level directory needs its place in LAYERS');
  });

  it('has every import point down to a lower layer or within its own directory', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const a = topOf(from);
        const b = topOf(to);
        if (a !== b && !(LAYERS[a]! > LAYERS[b]!)) upward.push(`${from} -> ${to}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  it('has no modules importing each other in a circle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (node: string, path: string[]) => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        circles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) visit(node, []);
    assert.deepEqual(circles, []);
  });
});
