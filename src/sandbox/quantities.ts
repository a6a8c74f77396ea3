/**
 * Parsing of the quantities `lxcfs-ts run` takes on its command line: memory sizes, a CPU count
 * and a cpuset list. Each parser throws a QuantityError whose message names the bad input and the
 * accepted forms, so the command can print it above its usage text.
 */

export class QuantityError extends Error {}

const sizeUnits: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * A memory size as docker and Kubernetes users write it: bytes (`268435456`) or a number with a
 * binary unit (`256M`, `512m`, `1.5G`, `64k`, also `256MiB`/`256MB`). Units are powers of 1024
 * whatever the spelling, as in `docker run --memory`. Fractions of a byte are dropped.
 */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(?:([kmgt])(?:i?b)?|b)?$/i.exec(text.trim());
  if (!match) {
    throw new QuantityError(
      `invalid size '${text}': use bytes or a number with a unit (k, M, G, T), e.g. 256M or 1.5G`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * sizeUnits[(match[2] ?? '').toLowerCase()]!);
  if (bytes <= 0) throw new QuantityError(`invalid size '${text}': must be more than 0 bytes`);
  if (!Number.isSafeInteger(bytes)) throw new QuantityError(`invalid size '${text}': too large`);
  return bytes;
}

/** The CFS period every sandbox uses (the kernel's default, 100 ms), in microseconds. */
export const cfsPeriodUs = 100_000;

/** The smallest quota the kernel accepts is 1 ms per period, i.e. 0.01 CPU at the default period. */
const minQuotaUs = 1_000;

/** A CPU bandwidth limit: `--cpus 1.5` is a quota of 150 ms per 100 ms period. */
export interface CpuQuota {
  readonly quotaUs: number;
  readonly periodUs: number;
}

export function parseCpus(text: string): CpuQuota {
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text.trim())) {
    throw new QuantityError(`invalid CPU count '${text}': use a decimal number of CPUs, e.g. 1 or 1.5`);
  }
  const quotaUs = Math.round(Number(text) * cfsPeriodUs);
  if (quotaUs < minQuotaUs) throw new QuantityError(`invalid CPU count '${text}': the minimum is 0.01`);
  return { quotaUs, periodUs: cfsPeriodUs };
}

/**
 * A cpuset list in the kernel's format (`0`, `0,2-3`, `0-1,4`): returns the CPU numbers, sorted
 * and unique. Whitespace around items is tolerated; empty items, reversed ranges and anything that
 * is not a non-negative integer are not.
 */
export function parseCpuList(text: string): number[] {
  const bad = (why: string) =>
    new QuantityError(`invalid cpuset '${text}': ${why}; use CPU numbers and ranges, e.g. 0,2-3`);
  if (text.trim() === '') throw bad('empty list');
  const cpus = new Set<number>();
  for (const item of text.split(',')) {
    const match = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(item);
    if (!match) throw bad(`'${item}' is not a CPU number or range`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) throw bad(`range '${item}' is reversed`);
    if (last > 65_535) throw bad(`CPU ${last} is out of range`);
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The kernel's canonical form of a CPU list: sorted, with runs collapsed (`0,2-3`). */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
