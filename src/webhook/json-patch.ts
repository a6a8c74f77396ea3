/**
 * RFC 6902 JSON Patch derived from two JSON documents. The mutation works on a copy of the pod and
 * this module turns the difference into operations, so hand-written paths (and their escaping and
 * "does the parent exist" mistakes) never reach the API server.
 */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export type PatchOperation =
  | { op: 'add'; path: string; value: Json }
  | { op: 'replace'; path: string; value: Json }
  | { op: 'remove'; path: string };

/** RFC 6901: `~` becomes `~0` and `/` becomes `~1`, in that order. */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function jsonEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]!));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k]!, b[k]!));
  }
  return false;
}

/**
 * Operations that turn `from` into `to`. Objects are compared key by key (a new key is one `add` at
 * that key, never a rewrite of the whole map); an array that only grew at its end gets one `add .../-`
 * per new element, so the user's entries keep their order and are never rewritten; any other array
 * change replaces that array.
 */
export function diff(from: Json, to: Json, path = ''): PatchOperation[] {
  if (jsonEqual(from, to)) return [];
  if (isJsonObject(from) && isJsonObject(to)) {
    const ops: PatchOperation[] = [];
    for (const key of Object.keys(from)) {
      if (!Object.hasOwn(to, key)) ops.push({ op: 'remove', path: `${path}/${escapePointerToken(key)}` });
    }
    for (const key of Object.keys(to)) {
      const child = `${path}/${escapePointerToken(key)}`;
      if (!Object.hasOwn(from, key)) ops.push({ op: 'add', path: child, value: to[key]! });
      else ops.push(...diff(from[key]!, to[key]!, child));
    }
    return ops;
  }
  if (Array.isArray(from) && Array.isArray(to) && to.length >= from.length) {
    const prefixKept = from.every((v, i) => jsonEqual(v, to[i]!));
    if (prefixKept) return to.slice(from.length).map((value) => ({ op: 'add', path: `${path}/-`, value }));
    const sameLength = to.length === from.length;
    if (sameLength) return from.flatMap((v, i) => diff(v, to[i]!, `${path}/${i}`));
  }
  return [{ op: 'replace', path, value: to }];
}
