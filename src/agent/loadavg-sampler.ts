import { performance } from 'node:perf_hooks';
import { type CgroupLayout, cgroupDir, detectCgroupLayout } from '../cgroup/layout.js';
import { PreadFiles } from '../cgroup/pread-files.js';
import { TaskCounter } from '../cgroup/tasks.js';
import type { Logger } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import { calcLoad, EXP, LOAD_FREQ_MS } from '../views/loadavg.js';
import type { SharedViewState } from '../container/container-views.js';
import { LoadSlot } from '../container/loadavg-table.js';
import { type EntryRef, SharedTable } from '../container/shared-table.js';

/** Cost of the last sampling rounds, for logs and benchmarks. */
export interface SamplerStats {
  rounds: number;
  containers: number;
  threads: number;
  /** Wall time of the last full round, ms (the round is synchronous, so this is its CPU time plus any preemption). */
  lastRoundMs: number;
}

/**
 * The `-l` load average sampler: every 5 s (LOAD_FREQ, on a fixed schedule, not "5 s after the
 * last round ended"), for every container some worker asked about, counts the runnable and
 * uninterruptible threads of its cgroup subtree and folds the count into the three exponential
 * averages exactly as the kernel does. Entries appear when a container first reads
 * /proc/loadavg; they are counted within 250 ms (running/threads show up at once, the averages
 * start from 0 like a freshly booted kernel's) and dropped when the cgroup is gone or empty.
 */
export class LoadavgSampler {
  private readonly table: SharedTable;
  private readonly layout: CgroupLayout;
  private readonly counter: TaskCounter;
  private readonly cgroupFiles = new PreadFiles(4096);
  readonly stats: SamplerStats = { rounds: 0, containers: 0, threads: 0, lastRoundMs: 0 };

  constructor(
    options: ViewOptions,
    shared: SharedViewState,
    private readonly log: Logger,
  ) {
    this.table = new SharedTable(shared.loadavg);
    this.layout = detectCgroupLayout(options.cgroupRoot);
    this.counter = new TaskCounter(options.procRoot, this.layout, this.cgroupFiles);
  }

  /** One LOAD_FREQ round: count every container and update its averages. */
  round(): void {
    const started = performance.now();
    let containers = 0;
    let threads = 0;
    for (const { ref, key } of this.table.entries()) {
      const counts = this.countEntry(ref, key);
      if (counts === null) continue;
      containers++;
      threads += counts.threads;
      const active = counts.runnable + counts.blocked;
      this.table.withEntry(ref, (slot) => {
        const p = this.table.payload;
        const at = slot * this.table.payloadDoubles;
        p[at + LoadSlot.avg1] = calcLoad(p[at + LoadSlot.avg1]!, EXP[0], active);
        p[at + LoadSlot.avg5] = calcLoad(p[at + LoadSlot.avg5]!, EXP[1], active);
        p[at + LoadSlot.avg15] = calcLoad(p[at + LoadSlot.avg15]!, EXP[2], active);
        p[at + LoadSlot.rounds] = p[at + LoadSlot.rounds]! + 1;
      });
    }
    this.counter.sweep();
    this.stats.rounds++;
    this.stats.containers = containers;
    this.stats.threads = threads;
    this.stats.lastRoundMs = performance.now() - started;
  }

  /** Counts entries nobody has counted yet (new containers), without touching the averages. */
  countNew(): void {
    for (const { ref, key } of this.table.entries()) {
      const at = ref.slot * this.table.payloadDoubles;
      if (this.table.payload[at + LoadSlot.sampledAtMs] === 0) this.countEntry(ref, key);
    }
  }

  close(): void {
    this.cgroupFiles.closeAll();
    this.counter.close();
  }

  /** Counts one entry's subtree and publishes the counts; drops the entry if its cgroup is gone or empty. */
  private countEntry(ref: EntryRef, key: string) {
    const colon = key.indexOf(':');
    const hierarchy = this.layout.hierarchy[key.slice(0, colon) as keyof CgroupLayout['hierarchy']];
    const counts = hierarchy ? this.counter.count(cgroupDir(hierarchy, key.slice(colon + 1))) : null;
    if (counts === null || counts.threads === 0) {
      this.table.remove(ref);
      this.log.debug({ cgroup: key }, 'loadavg: cgroup gone or empty, no longer sampled');
      return null;
    }
    this.table.withEntry(ref, (slot) => {
      const p = this.table.payload;
      const at = slot * this.table.payloadDoubles;
      p[at + LoadSlot.runnable] = counts.runnable;
      p[at + LoadSlot.blocked] = counts.blocked;
      p[at + LoadSlot.threads] = counts.threads;
      p[at + LoadSlot.maxTid] = counts.maxTid;
      p[at + LoadSlot.sampledAtMs] = Date.now();
    });
    return counts;
  }
}

/** Runs the sampler on the calling (main) thread until stop(). */
export function startLoadavgSampler(
  options: ViewOptions,
  shared: SharedViewState,
  log: Logger,
): { stop(): void; readonly stats: SamplerStats } {
  const sampler = new LoadavgSampler(options, shared, log);
  const origin = performance.now();
  let rounds = 0;
  let roundTimer: NodeJS.Timeout | null = null;
  const schedule = () => {
    // Fixed schedule: round k runs at origin + k * 5 s; a late round does not shift later ones.
    const now = performance.now();
    rounds = Math.max(rounds + 1, Math.ceil((now - origin) / LOAD_FREQ_MS));
    roundTimer = setTimeout(run, origin + rounds * LOAD_FREQ_MS - now);
    roundTimer.unref();
  };
  const run = () => {
    try {
      sampler.round();
      if (sampler.stats.rounds % 12 === 0) log.debug({ ...sampler.stats }, 'loadavg sampler');
    } catch (err) {
      log.warn({ err }, 'loadavg sampling round failed');
    }
    schedule();
  };
  const newTimer = setInterval(() => {
    try {
      sampler.countNew();
    } catch (err) {
      log.warn({ err }, 'loadavg: counting new containers failed');
    }
  }, 250);
  newTimer.unref();
  schedule();
  return {
    stats: sampler.stats,
    stop() {
      if (roundTimer !== null) clearTimeout(roundTimer);
      clearInterval(newTimer);
      sampler.close();
    },
  };
}
