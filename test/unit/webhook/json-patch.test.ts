import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diff, escapePointerToken, type Json } from '../../../src/webhook/json-patch.js';
import { applyPatch } from '../../helpers/json-patch-apply.js';
import { randomJson, rng } from '../../helpers/random.js';

/** Mutates a copy of a JSON value at random: edits, insertions, deletions, appends. */
function perturb(value: unknown, r: () => number, depth = 3): unknown {
  if (Array.isArray(value)) {
    const out = value.map((v) => (r() < 0.3 ? perturb(v, r, depth - 1) : v));
    if (r() < 0.4) out.push(randomJson(r, 2));
    if (r() < 0.15 && out.length > 0) out.splice(Math.floor(r() * out.length), 1);
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (r() < 0.1) continue;
      out[k] = r() < 0.4 ? perturb(v, r, depth - 1) : v;
    }
    if (r() < 0.4) out[`k${Math.floor(r() * 5)}/~`] = randomJson(r, 2);
    return out;
  }
  return r() < 0.5 ? randomJson(r, depth) : value;
}

describe('JSON Patch', () => {
  it('escapes ~ before / (RFC 6901), so "~1" and "/" stay different keys', () => {
    assert.equal(escapePointerToken('lxcfs-ts.io/status'), 'lxcfs-ts.io~1status');
    assert.equal(escapePointerToken('a~1b'), 'a~01b');
    assert.equal(escapePointerToken('~/'), '~0~1');
    const ops = diff({ a: {} }, { a: { '~1': 1, '/': 2 } });
    assert.deepEqual(ops, [
      { op: 'add', path: '/a/~01', value: 1 },
      { op: 'add', path: '/a/~1', value: 2 },
    ]);
  });

  it('adds an annotation by key and never rewrites the whole map', () => {
    const before = { metadata: { annotations: { 'example.com/keep': 'v', other: 'w' } } };
    const after = {
      metadata: { annotations: { 'example.com/keep': 'v', other: 'w', 'lxcfs-ts.io/status': 'mutated' } },
    };
    assert.deepEqual(diff(before, after), [
      { op: 'add', path: '/metadata/annotations/lxcfs-ts.io~1status', value: 'mutated' },
    ]);
  });

  it('appends to lists without touching existing entries', () => {
    assert.deepEqual(diff({ v: [1, { a: 2 }] }, { v: [1, { a: 2 }, 3, 4] }), [
      { op: 'add', path: '/v/-', value: 3 },
      { op: 'add', path: '/v/-', value: 4 },
    ]);
    assert.deepEqual(diff({ c: [{ m: [] }, { m: [1] }] }, { c: [{ m: [9] }, { m: [1, 9] }] }), [
      { op: 'add', path: '/c/0/m/-', value: 9 },
      { op: 'add', path: '/c/1/m/-', value: 9 },
    ]);
  });

  it('no difference, no operation', () => {
    assert.deepEqual(diff({ a: [1, { b: null }] }, { a: [1, { b: null }] }), []);
  });

  it('turns any document into any other (5000 random pairs, applied by a strict RFC 6902 applier)', () => {
    const seed = 20261122;
    const r = rng(seed);
    for (let i = 0; i < 5000; i++) {
      const from = randomJson(r, 4);
      const to = r() < 0.7 ? perturb(from, r, 4) : randomJson(r, 4);
      const ops = diff(from as Json, to as Json);
      assert.deepEqual(
        applyPatch(from, ops),
        to,
        `seed ${seed} case ${i}: ${JSON.stringify({ from, to, ops })}`,
      );
    }
  });
});
