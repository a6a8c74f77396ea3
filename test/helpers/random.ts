/** A seeded PRNG (mulberry32) so that fuzz failures can be replayed: the seed is in the test name. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

const keyParts = ['a', 'b', 'name', 'x/y', '~', '~1', '/', 'lxcfs-ts.io/status', 'ü', ''];

export function randomKey(r: () => number): string {
  return pick(r, keyParts) + pick(r, keyParts);
}

/** Any JSON value, depth-bounded. */
export function randomJson(r: () => number, depth = 3): unknown {
  const kind = Math.floor(r() * (depth > 0 ? 7 : 5));
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 1000) - 500;
    case 3:
      return randomKey(r);
    case 4:
      return r() * 10;
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth - 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(r() * 4) }, () => [randomKey(r), randomJson(r, depth - 1)]),
      );
  }
}
