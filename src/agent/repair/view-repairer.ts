/**
 * One repair pass over every mount namespace on the host: binds of view files that come from a
 * dead `fuse.lxcfs` connection (a crashed or replaced daemon) are detached and replaced by binds
 * of the live view's files, and binds a planned stop removed are put back. Runtime-agnostic: the
 * containers are found from /proc/PID/mountinfo alone, one process per mount namespace.
 *
 * The live files are bound from where the live view shows inside the container: the view's parent
 * directory propagates into containers (HostToContainer / rslave), so a view mounted after the
 * container started is there too. A container without it cannot be repaired from outside, and is
 * reported once.
 */
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import { parseMountinfo } from '../mountinfo.js';
import { changeInNamespace, type MountChange } from './namespace-mounts.js';
import { devicesAt, findDeadPaths } from './path-probe.js';
import {
  anyMountinfo,
  bootId,
  MountNamespaceScanner,
  processName,
  processStartTime,
  readNamespace,
} from './processes.js';
import { readUnbindRecord, removeUnbindRecord, type UnboundMount } from './unbind-record.js';
import {
  bindFlags,
  classifyViewMounts,
  hasForeignViewBinds,
  liveSourceFor,
  topmostAt,
  VIEW_FSTYPE,
} from './view-mounts.js';

export type RepairResult = 'repaired' | 'restored' | 'failed' | 'unreachable';
export const repairResults: readonly RepairResult[] = ['repaired', 'restored', 'failed', 'unreachable'];

export interface RepairOutcome {
  readonly result: RepairResult;
  readonly namespace: string;
  /** The process the namespace was changed through (its longest-running, see readNamespace). */
  readonly pid: number;
  readonly command: string;
  /** The bind's mount point inside the container. */
  readonly target: string;
  /** The live view file bound there, as the container sees it. */
  readonly source?: string;
  readonly detail?: string;
}

export interface RepairerOptions {
  /** The live view on the host. */
  readonly mountpoint: string;
  /** major:minor of the live view's FUSE connection. */
  readonly liveDevice: string;
  /**
   * A namespace found in order is looked at again only after this many passes (containers get
   * their binds when they start; a namespace seen for the first time is always looked at).
   */
  readonly recheckEvery: number;
  readonly log: Logger;
  readonly procRoot?: string;
}

/** Namespaces examined at the same time (each runs up to three short host commands). */
const PARALLEL_NAMESPACES = 8;
/** A namespace whose repair failed is retried on this many following passes, then only on rechecks. */
const MAX_RETRIES = 3;

interface NamespaceState {
  checkedAt: number;
  retries: number;
  /** Problems already reported, so each is reported once. */
  reported: Set<string>;
}

interface Examination {
  outcomes: RepairOutcome[];
  /** Nothing left to do until the next recheck. */
  settled: boolean;
  /** Binds from a planned stop still to put back (their bind failed). */
  restoresLeft?: UnboundMount[];
}

export class ViewRepairer {
  private passes = 0;
  private readonly namespaces = new Map<string, NamespaceState>();
  private readonly procRoot: string;
  private readonly scanner: MountNamespaceScanner;
  private recordChecked = false;
  /** Binds a planned stop removed and not yet put back, by namespace. */
  private readonly restores = new Map<string, UnboundMount[]>();

  constructor(private readonly options: RepairerOptions) {
    this.procRoot = options.procRoot ?? '/proc';
    this.scanner = new MountNamespaceScanner(this.procRoot);
  }

  /** One pass; returns what it changed, and problems not reported by an earlier pass. */
  async pass(): Promise<RepairOutcome[]> {
    this.passes++;
    // Full on the first pass and then once per recheck period; in between, only new pids are read.
    const listing = this.scanner.list((this.passes - 1) % this.options.recheckEvery === 0);
    for (const ns of this.namespaces.keys()) if (!listing.has(ns)) this.namespaces.delete(ns);
    for (const ns of this.restores.keys()) if (!listing.has(ns)) this.restores.delete(ns);
    this.takeRecord(listing);
    const due = [...listing].filter(([ns]) => this.restores.has(ns) || this.isDue(ns));
    const outcomes: RepairOutcome[] = [];
    let next = 0;
    const worker = async () => {
      while (next < due.length) {
        const [ns, pids] = due[next++]!;
        const examination = await this.examine(ns, pids, this.restores.get(ns) ?? []);
        outcomes.push(...this.remember(ns, examination));
        const left = examination.restoresLeft ?? [];
        if (left.length > 0 && (this.namespaces.get(ns)?.retries ?? 0) <= MAX_RETRIES) this.restores.set(ns, left);
        else this.restores.delete(ns);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_NAMESPACES, due.length) }, worker));
    return outcomes;
  }

  private isDue(ns: string): boolean {
    const state = this.namespaces.get(ns);
    if (!state) return true;
    if (state.retries > 0 && state.retries <= MAX_RETRIES) return true;
    return this.passes - state.checkedAt >= this.options.recheckEvery;
  }

  private remember(ns: string, examination: Examination): RepairOutcome[] {
    const state = this.namespaces.get(ns) ?? { checkedAt: 0, retries: 0, reported: new Set<string>() };
    state.checkedAt = this.passes;
    state.retries = examination.settled ? 0 : state.retries + 1;
    this.namespaces.set(ns, state);
    return examination.outcomes.filter((o) => {
      if (o.result === 'repaired' || o.result === 'restored') return true;
      const key = `${o.target}\0${o.result}\0${o.detail ?? ''}`;
      if (state.reported.has(key)) return false;
      state.reported.add(key);
      return true;
    });
  }

  /**
   * Takes in the binds a planned stop removed, of the containers that still run. The record is
   * read once (at the first pass) and removed, so they are put back once.
   */
  private takeRecord(listing: Map<string, number[]>): void {
    if (this.recordChecked) return;
    this.recordChecked = true;
    const { mountpoint, log } = this.options;
    let record;
    try {
      record = readUnbindRecord(mountpoint);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'ignoring an unreadable planned-stop record');
      removeUnbindRecord(mountpoint);
      return;
    }
    if (!record) return;
    removeUnbindRecord(mountpoint);
    if (record.bootId !== bootId(this.procRoot)) {
      log.info({ stoppedAt: record.stoppedAt }, 'the planned-stop record is from before a reboot; nothing to put back');
      return;
    }
    let gone = 0;
    for (const mount of record.mounts) {
      const alive =
        listing.get(mount.namespace)?.includes(mount.pid) &&
        processStartTime(mount.pid, this.procRoot) === mount.startTime;
      if (!alive) {
        gone++;
        continue;
      }
      this.restores.set(mount.namespace, [...(this.restores.get(mount.namespace) ?? []), mount]);
    }
    log.info(
      { stoppedAt: record.stoppedAt, toRestore: record.mounts.length - gone, containerGone: gone },
      'putting back the binds a planned stop removed',
    );
  }

  private async examine(
    ns: string,
    pids: readonly number[],
    restores: readonly UnboundMount[],
  ): Promise<Examination> {
    // The process left; another one of the namespace is used next time.
    const gone: Examination = { outcomes: [], settled: false, restoresLeft: [...restores] };
    // Any process of the namespace tells whether it has binds of another connection than the
    // live one at all: most namespaces have none (no view, or a healthy container's live binds,
    // or the host with the view itself), and then nothing more is read. Choosing the process to
    // ask below reads two files per process of the namespace: the host's alone has thousands.
    const sample = anyMountinfo(pids, this.procRoot);
    if (sample === null) return gone;
    const needsLook =
      sample.includes(` - ${VIEW_FSTYPE} `) && hasForeignViewBinds(parseMountinfo(sample), this.options.liveDevice);
    if (!needsLook && restores.length === 0) return { outcomes: [], settled: true };
    // ...but paths are relative to the reader's root, so the container's own processes are asked.
    const reader = readNamespace(pids, this.procRoot);
    if (reader === null) return gone;
    const { pid, mountinfo: text } = reader;
    const entries = parseMountinfo(text);
    const mounts = classifyViewMounts(entries, this.options.liveDevice);
    const inside = (path: string) => `${this.procRoot}/${pid}/root${path}`;

    // Binds of another connection that is dead, as the container sees them: a bind hidden by a
    // mount above it is not what its path leads to, and is not detached through that path.
    const probe = await findDeadPaths([...new Set(mounts.foreign.map((m) => inside(m.mountpoint)))]);
    const dead = mounts.foreign.filter((m) => probe.dead.has(inside(m.mountpoint)));
    const deadTargets = new Set(dead.map((m) => m.mountpoint));
    const pending = restores.filter((r) => {
      const top = topmostAt(entries, r.target);
      const bound = top?.fstype === VIEW_FSTYPE && top.device === this.options.liveDevice;
      return !bound && !deadTargets.has(r.target);
    });
    if (dead.length === 0 && pending.length === 0) return { outcomes: [], settled: !probe.undecided };

    const base = { namespace: ns, pid, command: processName(pid, this.procRoot) };
    const outcomes: RepairOutcome[] = [];
    const liveView = await this.reachableLiveView(mounts.liveViews, inside);
    if (liveView === undefined) return { outcomes: [], settled: false, restoresLeft: [...restores] };
    if (liveView === null) {
      const detail =
        `the live view (${this.options.mountpoint}) is not visible in this container: it needs the view's parent ` +
        `directory ${dirname(this.options.mountpoint)} mounted with HostToContainer (rslave) propagation; restart the container to get working files`;
      for (const target of [...deadTargets, ...pending.map((r) => r.target)]) {
        outcomes.push({ ...base, result: 'unreachable', target, detail });
      }
      return { outcomes, settled: !probe.undecided };
    }
    // Every change this namespace needs, made by one host command.
    const changes: Extract<MountChange, { source: string }>[] = [
      ...dead.map((mount) => ({
        kind: 'replace' as const,
        mountId: mount.id,
        source: liveSourceFor(liveView, mount.root),
        target: mount.mountpoint,
        flags: bindFlags(mount),
      })),
      ...pending.map((restore) => ({
        kind: 'bind' as const,
        source: liveSourceFor(liveView, restore.root),
        target: restore.target,
        flags: restore.flags,
      })),
    ];
    const results = await changeInNamespace(pid, changes);
    const restoresLeft: UnboundMount[] = [];
    changes.forEach((change, i) => {
      const done = results[i]!;
      const { source, target } = change;
      if (change.kind === 'replace') {
        if (done.ok) outcomes.push({ ...base, result: 'repaired', target, source });
        else if (done.failedStep === 'detach')
          outcomes.push({ ...base, result: 'failed', target, detail: `detaching the stale mount: ${done.detail}` });
        else
          outcomes.push({
            ...base,
            result: 'failed',
            target,
            source,
            detail: `binding the live file: ${done.detail} (the stale mount is gone: the container sees the host's file)`,
          });
        return;
      }
      if (!done.ok) restoresLeft.push(pending[i - dead.length]!);
      outcomes.push(
        done.ok
          ? { ...base, result: 'restored', target, source }
          : { ...base, result: 'failed', target, source, detail: `binding the live file: ${done.detail}` },
      );
    });
    const failed = outcomes.some((o) => o.result === 'failed');
    return { outcomes, settled: !probe.undecided && !failed, restoresLeft };
  }

  /**
   * The first candidate path that really leads to the live view inside the container; null if
   * none does, undefined if that could not be told in time (tried again on the next pass).
   */
  private async reachableLiveView(
    candidates: readonly string[],
    inside: (path: string) => string,
  ): Promise<string | null | undefined> {
    if (candidates.length === 0) return null;
    const devices = await devicesAt(candidates.map(inside));
    if (devices === null) return undefined;
    return candidates.find((c) => devices.get(inside(c)) === this.options.liveDevice) ?? null;
  }
}
