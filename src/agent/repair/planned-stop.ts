/**
 * The planned stop (`--unbind-on-stop`): before the view goes away, every container's binds of
 * its files are detached, so the container reads the host's /proc files for a while instead of
 * getting "Transport endpoint is not connected"; what was detached is recorded next to the view
 * for the next start, which binds it again (view-repairer.ts).
 */
import type { Logger } from '../../common/log.js';
import { parseMountinfo } from '../mountinfo.js';
import { changeInNamespace } from './namespace-mounts.js';
import { devicesAt } from './path-probe.js';
import { anyMountinfo, bootId, listMountNamespaces, readNamespace } from './processes.js';
import { type UnboundMount, writeUnbindRecord } from './unbind-record.js';
import { bindFlags, classifyViewMounts, VIEW_FSTYPE } from './view-mounts.js';

export interface PlannedStopOptions {
  readonly mountpoint: string;
  readonly liveDevice: string;
  readonly log: Logger;
  readonly procRoot?: string;
}

export interface PlannedStopResult {
  readonly unbound: number;
  readonly failed: number;
}

const PARALLEL_NAMESPACES = 8;

/** A bind of the live view to detach (by its mount id), and what it takes to put it back. */
interface LiveBind {
  readonly mountId: number;
  readonly mount: UnboundMount;
}

/**
 * The binds of the live view in every mount namespace, with what it takes to put each back. Only
 * binds the container actually sees are taken: detaching goes by path, and a path that leads
 * elsewhere (a bind hidden by a mount above it) must not be detached.
 */
async function findLiveBinds(options: PlannedStopOptions): Promise<LiveBind[]> {
  const procRoot = options.procRoot ?? '/proc';
  const found: LiveBind[] = [];
  for (const [namespace, pids] of listMountNamespaces(procRoot)) {
    if (!anyMountinfo(pids, procRoot)?.includes(` - ${VIEW_FSTYPE} `)) continue;
    // Paths are relative to the reader's root: read them as the container's own processes see them.
    const reader = readNamespace(pids, procRoot);
    if (reader === null) continue;
    const { pid, startTime, mountinfo: text } = reader;
    const binds = classifyViewMounts(parseMountinfo(text), options.liveDevice).liveBinds;
    const inside = (path: string) => `${procRoot}/${pid}/root${path}`;
    const devices = await devicesAt(binds.map((b) => inside(b.mountpoint)));
    if (devices === null) {
      // Left bound: its binds go dead with the connection, and the next agent repairs them.
      options.log.warn({ namespace, containerPid: pid }, 'planned stop: cannot look at a container\'s binds in time; leaving them');
      continue;
    }
    for (const bind of binds) {
      if (devices.get(inside(bind.mountpoint)) !== options.liveDevice) continue;
      const mount = { namespace, pid, startTime, target: bind.mountpoint, root: bind.root, flags: bindFlags(bind) };
      found.push({ mountId: bind.id, mount });
    }
  }
  return found;
}

export async function unbindForStop(options: PlannedStopOptions): Promise<PlannedStopResult> {
  const { log } = options;
  const binds = await findLiveBinds(options);
  if (binds.length === 0) {
    log.info('planned stop: no container has binds of the view');
    return { unbound: 0, failed: 0 };
  }
  // Recorded first: a stop cut short leaves binds that the next start either repairs (still
  // bound, now dead) or puts back (detached).
  const path = writeUnbindRecord(options.mountpoint, {
    version: 1,
    bootId: bootId(options.procRoot),
    mountpoint: options.mountpoint,
    stoppedAt: new Date().toISOString(),
    mounts: binds.map((b) => b.mount),
  });
  const byNamespace = new Map<string, LiveBind[]>();
  for (const bind of binds) byNamespace.set(bind.mount.namespace, [...(byNamespace.get(bind.mount.namespace) ?? []), bind]);
  const queue = [...byNamespace.values()];
  let unbound = 0;
  let failed = 0;
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      // One host command per namespace (every bind of a namespace was found through one process).
      const results = await changeInNamespace(
        group[0]!.mount.pid,
        group.map((bind) => ({ kind: 'detach' as const, mountId: bind.mountId, target: bind.mount.target })),
      );
      group.forEach((bind, i) => {
        const result = results[i]!;
        if (result.ok) {
          unbound++;
          return;
        }
        failed++;
        log.warn({ containerPid: bind.mount.pid, target: bind.mount.target, detail: result.detail }, 'planned stop: could not detach a bind of the view');
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_NAMESPACES, queue.length) }, worker));
  log.info(
    { unbound, failed, containers: byNamespace.size, record: path },
    'planned stop: containers fall back to the host\'s files until the next start binds the view again',
  );
  return { unbound, failed };
}
