/**
 * A strict RFC 6902 applier written from the RFC for tests: it fails where the API server's
 * (evanphx/json-patch) fails: an `add` whose parent does not exist, a bad index, a missing target.
 */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function unescapeToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new Error(`bad pointer ${path}`);
  return path.slice(1).split('/').map(unescapeToken);
}

function isObject(v: Json): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayIndex(token: string, length: number, allowEnd: boolean): number {
  if (token === '-' && allowEnd) return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`bad array index ${token}`);
  const i = Number(token);
  if (i > length || (!allowEnd && i === length)) throw new Error(`index ${i} out of range`);
  return i;
}

export interface Operation {
  op: string;
  path: string;
  value?: unknown;
}

export function applyPatch(doc: unknown, ops: readonly Operation[]): unknown {
  let root = structuredClone(doc) as Json;
  for (const op of ops) {
    const tokens = parsePointer(op.path);
    if (tokens.length === 0) {
      if (op.op !== 'replace' && op.op !== 'add') throw new Error(`cannot ${op.op} the root`);
      root = structuredClone(op.value) as Json;
      continue;
    }
    let parent: Json = root;
    for (const t of tokens.slice(0, -1)) {
      if (Array.isArray(parent)) parent = parent[arrayIndex(t, parent.length, false)]!;
      else if (isObject(parent) && Object.hasOwn(parent, t)) parent = parent[t]!;
      else throw new Error(`path ${op.path}: missing parent at ${t}`);
    }
    const last = tokens[tokens.length - 1]!;
    const value = structuredClone(op.value) as Json;
    if (Array.isArray(parent)) {
      if (op.op === 'add') parent.splice(arrayIndex(last, parent.length, true), 0, value);
      else if (op.op === 'replace') parent[arrayIndex(last, parent.length, false)] = value;
      else if (op.op === 'remove') parent.splice(arrayIndex(last, parent.length, false), 1);
      else throw new Error(`unsupported op ${op.op}`);
    } else if (isObject(parent)) {
      if (op.op === 'add') parent[last] = value;
      else if (op.op === 'replace' || op.op === 'remove') {
        if (!Object.hasOwn(parent, last)) throw new Error(`path ${op.path} does not exist`);
        if (op.op === 'replace') parent[last] = value;
        else delete parent[last];
      } else throw new Error(`unsupported op ${op.op}`);
    } else {
      throw new Error(`path ${op.path}: parent is not a container`);
    }
  }
  return root;
}
