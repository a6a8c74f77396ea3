/**
 * Load averages as the kernel computes them (kernel/sched/loadavg.c): fixed point with 11
 * fractional bits, updated every 5 s with the number of runnable + uninterruptible tasks.
 */
export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
/** 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min) in fixed point. */
export const EXP = [1884, 2014, 2037] as const;
/** The sampling period the exponents above are made for. */
export const LOAD_FREQ_MS = 5000;

/** One step of the kernel's calc_load(): `load` and the result are fixed-point. */
export function calcLoad(load: number, exp: number, activeTasks: number): number {
  const active = activeTasks * FIXED_1;
  let next = load * exp + active * (FIXED_1 - exp);
  if (active >= load) next += FIXED_1 - 1;
  return Math.floor(next / FIXED_1);
}

/** The kernel's `%lu.%02lu` rendering of a fixed-point average, rounded to 1/100. */
function formatLoad(load: number): string {
  const a = load + Math.floor(FIXED_1 / 200);
  const whole = Math.floor(a / FIXED_1);
  const frac = Math.floor(((a % FIXED_1) * 100) / FIXED_1);
  return `${whole}.${frac < 10 ? '0' : ''}${frac}`;
}

/** `/proc/loadavg`: `a1 a5 a15 running/threads lastpid`. */
export function renderLoadavg(
  avenrun: readonly number[],
  running: number,
  threads: number,
  lastPid: number,
): string {
  return `${formatLoad(avenrun[0]!)} ${formatLoad(avenrun[1]!)} ${formatLoad(avenrun[2]!)} ${running}/${threads} ${lastPid}\n`;
}
