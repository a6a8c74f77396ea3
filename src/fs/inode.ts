/**
 * Node ids. The static part of the tree has small fixed ids; every other path (the host
 * entries passed through under sys/devices/system/cpu) gets an id derived from its path alone.
 * Deriving ids from paths means every worker thread, and a serving process restarted on the same
 * FUSE connection, agrees on them without sharing any table, so a request the kernel resends
 * after a restart still names the right file.
 */

/** Ids at or above this bound are path-derived; static ids stay below it. */
export const DERIVED_INO_BASE = 2 ** 52;

/** A 52-bit FNV-1a style hash of the path, offset into the derived range (always < 2^53). */
export function derivedIno(path: string): number {
  let lo = 0x811c9dc5;
  let hi = 0x050c5d1f;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    lo = Math.imul(lo ^ c, 0x01000193);
    hi = Math.imul(hi ^ c, 0x01000193) ^ (lo >>> 15);
  }
  return DERIVED_INO_BASE + (hi & 0xfffff) * 0x1_0000_0000 + (lo >>> 0);
}
