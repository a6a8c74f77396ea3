/**
 * Runs repair passes: the first as soon as the view is mounted, then every interval, since a
 * container can appear with stale binds at any time (one created from a namespace that had them,
 * or one still being set up during the first pass). Logs what each pass did and keeps totals for
 * the `lxcfs_ts_repairs_total` metric.
 */
import type { Logger } from '../../common/log.js';
import { type RepairOutcome, type RepairResult, repairResults, ViewRepairer } from './view-repairer.js';

export interface RepairWatcherOptions {
  readonly mountpoint: string;
  readonly liveDevice: string;
  /** Time between passes; 0 for the start-up pass only. */
  readonly intervalMs: number;
  readonly log: Logger;
  /** Called with the running totals whenever a pass changed them. */
  readonly onTotals: (totals: Readonly<Record<RepairResult, number>>) => void;
}

/** Every namespace is looked at again at least this often, even if nothing suggests it changed. */
const RECHECK_MS = 60_000;

const messages: Record<RepairResult, string> = {
  repaired: 'repaired a container\'s stale view mounts',
  restored: 'put back view binds removed by the planned stop',
  failed: 'could not repair a container\'s view mounts',
  unreachable: 'a container holds stale view mounts that cannot be repaired from the host',
};

/** One log line per container and kind of outcome (a container has a dozen view binds). */
export function logOutcomes(log: Logger, outcomes: readonly RepairOutcome[]): void {
  const groups = new Map<string, RepairOutcome[]>();
  for (const o of outcomes) {
    const key = `${o.namespace}\0${o.result}\0${o.detail ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  for (const group of groups.values()) {
    const first = group[0]!;
    const fields = {
      // Not `pid`: that is the logging process's own.
      containerPid: first.pid,
      command: first.command,
      namespace: first.namespace,
      targets: group.map((o) => o.target),
      ...(first.detail !== undefined && { detail: first.detail }),
    };
    if (first.result === 'repaired' || first.result === 'restored') log.info(fields, messages[first.result]);
    else log.warn(fields, messages[first.result]);
  }
}

export class RepairWatcher {
  readonly totals: Record<RepairResult, number> = Object.fromEntries(repairResults.map((r) => [r, 0])) as Record<
    RepairResult,
    number
  >;

  private readonly repairer: ViewRepairer;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: RepairWatcherOptions) {
    const recheckEvery = options.intervalMs > 0 ? Math.max(1, Math.round(RECHECK_MS / options.intervalMs)) : 1;
    this.repairer = new ViewRepairer({
      mountpoint: options.mountpoint,
      liveDevice: options.liveDevice,
      recheckEvery,
      log: options.log,
    });
  }

  start(): void {
    this.runPass();
  }

  /** Stops scheduling passes and waits for the one in progress, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private runPass(): void {
    const started = Date.now();
    this.running = this.repairer
      .pass()
      .then((outcomes) => {
        logOutcomes(this.options.log, outcomes);
        for (const outcome of outcomes) this.totals[outcome.result]++;
        if (outcomes.length > 0) {
          this.options.log.info({ ms: Date.now() - started, outcomes: outcomes.length }, 'repair pass done');
          this.options.onTotals(this.totals);
        }
      })
      .catch((err: unknown) => this.options.log.error({ err }, 'repair pass failed'))
      .finally(() => {
        this.running = undefined;
        if (this.stopped || this.options.intervalMs <= 0) return;
        this.timer = setTimeout(() => this.runPass(), this.options.intervalMs);
        // Never the reason the supervisor stays alive.
        this.timer.unref();
      });
  }
}
