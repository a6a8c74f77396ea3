/**
 * Per-container CPU counters for /proc/stat (and the idle field of /proc/uptime): user, system and
 * idle per visible CPU, kept in a float64 region (a SharedArrayBuffer slot in production) so every
 * thread serving the container advances the same counters.
 *
 * Rules:
 *  - counters never go backwards: every update adds a non-negative delta;
 *  - busy time comes from the cgroup (v1 cpuacct per host CPU, v2 cpu.stat totals); each visible
 *    CPU gets the busy time of the host CPU it stands for, and time spent on host CPUs the
 *    container does not see (v2 always, v1 with a quota-limited N) is spread over the visible
 *    CPUs in proportion to the room each has left (wall time minus its own busy time);
 *  - idle = wall time not busy, per visible CPU, so busy + idle of the N CPUs tracks N x wall time.
 *    Between two reads a CPU can show more busy time than wall time passed (a quota-limited
 *    container may run on more host CPUs than it sees, then sit throttled); the excess is kept as
 *    an idle debt that later idle time pays off first, so idle is not overstated by bursts;
 *  - the split of a host CPU's time into user and system may shift between samples (v1 derives it
 *    from tick samples): a component that would go down gives its share to the other one, so the
 *    total busy time stays exact and neither counter goes backwards;
 *  - on the first read the counters start from the cgroup's whole history over `sinceBootUs` (the
 *    caller's uptime), so they agree with /proc/uptime;
 *  - when N shrinks, the hidden CPUs' counters freeze (they reappear unchanged if N grows again);
 *    the aggregate `cpu` line sums every slot, visible or frozen, so it never drops either.
 *
 * All values are microseconds (rendered as USER_HZ ticks by the view).
 */

/** Layout of one container's region. */
export const CounterLayout = {
  initialized: 0,
  lastWallUs: 1,
  lastUserUs: 2,
  lastSystemUs: 3,
  header: 16,
  /** per visible slot: shown user, system, idle, then the idle debt (busy time beyond the wall time) */
  slotDoubles: 4,
} as const;

/** Doubles a region needs for `slots` host CPUs: header, shown counters per slot, last raw per host CPU. */
export function counterRegionSize(slots: number): number {
  return CounterLayout.header + (CounterLayout.slotDoubles + 2) * slots;
}

/** One sample of the container's CPU usage. */
export interface CpuSample {
  /** Monotonic wall clock, µs. */
  wallUs: number;
  /** The caller's uptime, µs (used on the first update only). */
  sinceBootUs: number;
  userUs: number;
  systemUs: number;
  /** `[user0, system0, user1, system1, ...]` per host CPU (µs), or null for totals only. */
  perCpu: Float64Array | null;
  perCpuCount: number;
  /** Visible host CPUs; the i-th is shown as cpu<i>. */
  visible: readonly number[];
}

/**
 * Advances the counters of the region starting at `base` in `mem` (sized for `slots` host CPUs).
 * Scratch arrays are passed in so the hot path does not allocate.
 */
export function advanceCounters(mem: Float64Array, base: number, slots: number, sample: CpuSample): void {
  const L = CounterLayout;
  const shownBase = base + L.header;
  const rawBase = shownBase + L.slotDoubles * slots;
  const n = Math.min(sample.visible.length, slots);
  if (n === 0) return;
  const first = mem[base + L.initialized] !== 1;
  let dT: number;
  if (first) {
    dT = Math.max(0, sample.sinceBootUs);
  } else {
    dT = Math.max(0, sample.wallUs - mem[base + L.lastWallUs]!);
  }

  // Busy deltas: direct (the visible CPU's own host CPU) and surplus (host CPUs not visible).
  const direct = scratch(2 * n);
  direct.fill(0, 0, 2 * n);
  let surplusUser = 0;
  let surplusSystem = 0;
  if (sample.perCpu !== null) {
    const count = Math.min(sample.perCpuCount, slots);
    const visibleIndex = indexScratch(count);
    visibleIndex.fill(-1, 0, count);
    for (let i = 0; i < n; i++) {
      const h = sample.visible[i]!;
      if (h < count) visibleIndex[h] = i;
    }
    for (let h = 0; h < count; h++) {
      const u = sample.perCpu[2 * h]!;
      const s = sample.perCpu[2 * h + 1]!;
      splitDelta(first ? u : u - mem[rawBase + 2 * h]!, first ? s : s - mem[rawBase + 2 * h + 1]!);
      const i = visibleIndex[h]!;
      if (i >= 0) {
        direct[2 * i] = delta.user;
        direct[2 * i + 1] = delta.system;
      } else {
        surplusUser += delta.user;
        surplusSystem += delta.system;
      }
      mem[rawBase + 2 * h] = u;
      mem[rawBase + 2 * h + 1] = s;
    }
  } else {
    splitDelta(
      first ? sample.userUs : sample.userUs - mem[base + L.lastUserUs]!,
      first ? sample.systemUs : sample.systemUs - mem[base + L.lastSystemUs]!,
    );
    surplusUser = delta.user;
    surplusSystem = delta.system;
  }

  // Spread the surplus over the visible CPUs in proportion to their remaining capacity (dT - busy).
  const surplus = surplusUser + surplusSystem;
  let capacity = 0;
  for (let i = 0; i < n; i++) capacity += Math.max(0, dT - direct[2 * i]! - direct[2 * i + 1]!);
  const userShare = surplus > 0 ? surplusUser / surplus : 0;
  for (let i = 0; i < n; i++) {
    const busy = direct[2 * i]! + direct[2 * i + 1]!;
    const room = Math.max(0, dT - busy);
    let extra = 0;
    if (surplus > 0) {
      extra =
        capacity >= surplus
          ? capacity > 0
            ? (surplus * room) / capacity
            : 0
          : room + (surplus - capacity) / n;
    }
    const at = shownBase + L.slotDoubles * i;
    mem[at] = mem[at]! + direct[2 * i]! + extra * userShare;
    mem[at + 1] = mem[at + 1]! + direct[2 * i + 1]! + extra * (1 - userShare);
    // idle: the wall time left, after paying off the debt of earlier bursts
    const free = dT - busy - extra;
    const debt = mem[at + 3]!;
    if (free < 0) {
      mem[at + 3] = debt - free;
    } else {
      const paid = Math.min(debt, free);
      mem[at + 3] = debt - paid;
      mem[at + 2] = mem[at + 2]! + (free - paid);
    }
  }

  mem[base + L.lastWallUs] = sample.wallUs;
  mem[base + L.lastUserUs] = sample.userUs;
  mem[base + L.lastSystemUs] = sample.systemUs;
  mem[base + L.initialized] = 1;
}

/** Sums of the shown counters over every slot (visible or frozen): the aggregate `cpu` line. */
export function aggregateCounters(
  mem: Float64Array,
  base: number,
  slots: number,
  out: { user: number; system: number; idle: number },
): void {
  let user = 0;
  let system = 0;
  let idle = 0;
  const shownBase = base + CounterLayout.header;
  for (let i = 0; i < slots; i++) {
    const at = shownBase + CounterLayout.slotDoubles * i;
    user += mem[at]!;
    system += mem[at + 1]!;
    idle += mem[at + 2]!;
  }
  out.user = user;
  out.system = system;
  out.idle = idle;
}

/** The non-negative user and system deltas of one sample (reused: the hot path does not allocate). */
const delta = { user: 0, system: 0 };

/**
 * Deltas of a user and a system counter. A counter set that went down as a whole (cgroup
 * re-created, accounting reset) adds nothing: counting starts over from here. When only one
 * component went down (its share of the total shifted), the other takes the whole total delta.
 */
function splitDelta(du: number, ds: number): void {
  const sum = du + ds;
  if (!(sum > 0)) {
    delta.user = 0;
    delta.system = 0;
  } else if (du < 0) {
    delta.user = 0;
    delta.system = sum;
  } else if (ds < 0) {
    delta.user = sum;
    delta.system = 0;
  } else {
    delta.user = du;
    delta.system = ds;
  }
}

let scratchF = new Float64Array(64);
function scratch(n: number): Float64Array {
  if (scratchF.length < n) scratchF = new Float64Array(2 * n);
  return scratchF;
}

let scratchI = new Int32Array(64);
function indexScratch(n: number): Int32Array {
  if (scratchI.length < n) scratchI = new Int32Array(2 * n);
  return scratchI;
}
