/**
 * What the repair needs to know about processes, read from /proc: which mount namespace each one
 * is in (to visit every namespace once), and a process's start time and name (to recognise it
 * again after a restart, and to name it in reports).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Every mount namespace that has a process, as `mnt:[inode]` -> its pids in ascending order. */
export function listMountNamespaces(procRoot = '/proc'): Map<string, number[]> {
  return new MountNamespaceScanner(procRoot).list(true);
}

/**
 * Lists mount namespaces pass after pass, remembering each pid's namespace from the last
 * listing. Reading the namespace link is most of a listing's cost (on a node with 5,000
 * processes about 40 ms of CPU, against 8 ms for the pids alone), and processes seldom change
 * namespace, so a partial listing reads the link of new pids only. What it can miss: a process
 * that entered another namespace, or a pid that ended and was reused by a process elsewhere, both
 * since the last full listing; the caller makes every so many listings full to bound that.
 */
export class MountNamespaceScanner {
  private known = new Map<number, string>();

  constructor(private readonly procRoot = '/proc') {}

  list(full: boolean): Map<string, number[]> {
    const namespaces = new Map<string, number[]>();
    const seen = new Map<number, string>();
    const pids = readdirSync(this.procRoot)
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    for (const pid of pids) {
      let ns = full ? undefined : this.known.get(pid);
      if (ns === undefined) {
        try {
          ns = readlinkSync(`${this.procRoot}/${pid}/ns/mnt`);
        } catch {
          continue; // exited meanwhile, or a kernel thread we may not look at
        }
      }
      seen.set(pid, ns);
      const list = namespaces.get(ns);
      if (list) list.push(pid);
      else namespaces.set(ns, [pid]);
    }
    // Pids gone since are forgotten, so a reused one is read afresh unless it came back within one pass.
    this.known = seen;
    return namespaces;
  }
}

/** The mount namespace of a process, or null once it is gone. */
export function mountNamespaceOf(pid: number, procRoot = '/proc'): string | null {
  try {
    return readlinkSync(`${procRoot}/${pid}/ns/mnt`);
  } catch {
    return null;
  }
}

/**
 * Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat): with the pid
 * it identifies one process for the life of the system, even after its pid is reused.
 */
export function processStartTime(pid: number, procRoot = '/proc'): string | null {
  let stat: string;
  try {
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The fields after the name, which is in parentheses and may itself contain spaces or ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

/** The short command name of a process, for messages. */
export function processName(pid: number, procRoot = '/proc'): string {
  try {
    return readFileSync(`${procRoot}/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Identifies this boot: records written before a reboot describe processes that no longer exist. */
export function bootId(procRoot = '/proc'): string {
  return readFileSync(`${procRoot}/sys/kernel/random/boot_id`, 'utf8').trim();
}

/** How deep in nested pid namespaces a process is (1 for the host's), from the NSpid line of its status. */
export function pidNamespaceDepth(pid: number, procRoot = '/proc'): number {
  try {
    const status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
    const line = /^NSpid:\s*(.*)$/m.exec(status);
    return line ? line[1]!.trim().split(/\s+/).length : 0;
  } catch {
    return 0;
  }
}

/**
 * The process to act through in a mount namespace: the one deepest in nested pid namespaces
 * (the lowest pid among those). A container's mount namespace can also hold processes of the
 * host's pid namespace (the runtime's helper that created it, an `nsenter -m` from the host):
 * their root may not be the container's root, and the container's /proc does not list them,
 * which breaks both path resolution and util-linux inside the namespace.
 */
export function namespaceRepresentative(pids: readonly number[], procRoot = '/proc'): number {
  let best = pids[0]!;
  let bestDepth = -1;
  for (const pid of pids) {
    const depth = pidNamespaceDepth(pid, procRoot);
    if (depth > bestDepth) {
      best = pid;
      bestDepth = depth;
    }
  }
  return best;
}

/** A namespace's representative whose mount table could be read, with that table and its start time. */
export interface NamespaceReader {
  readonly pid: number;
  readonly startTime: string;
  readonly mountinfo: string;
}

/**
 * The representative of a mount namespace, read now: of its processes deepest in nested pid
 * namespaces (see above), the longest-running one that can be read. Pids wrap around (pid_max is
 * 32768 on many hosts), so the lowest pid of a container can be a process that lives for a
 * millisecond (a loop's `grep`) and is gone before its mount table is read: such a process is
 * passed over for the next candidate, never taken as "the namespace has nothing". Null when none
 * of the namespace's deepest processes could be read (they are all gone).
 */
export function readNamespace(pids: readonly number[], procRoot = '/proc'): NamespaceReader | null {
  const depths = pids.map((pid) => pidNamespaceDepth(pid, procRoot));
  const deepest = Math.max(...depths);
  // Never a process of a shallower pid namespace: its root may not be the container's.
  const candidates = pids
    .filter((_, i) => depths[i] === deepest)
    .map((pid) => ({ pid, startTime: processStartTime(pid, procRoot) }));
  // The longest-running first (a container's init, not a loop's `sleep`): a planned stop records
  // this process, and the next start puts the binds back only if it is still there.
  candidates.sort((a, b) => startTicks(a.startTime) - startTicks(b.startTime));
  for (const { pid, startTime } of candidates) {
    if (startTime === null) continue;
    let mountinfo: string;
    try {
      mountinfo = readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8');
    } catch {
      continue;
    }
    // The pid may have been reused between the two reads.
    if (processStartTime(pid, procRoot) === startTime) return { pid, startTime, mountinfo };
  }
  return null;
}

/** Any process's mount table of the namespace (for "does it have view mounts at all"), or null. */
export function anyMountinfo(pids: readonly number[], procRoot = '/proc'): string | null {
  for (const pid of pids) {
    try {
      return readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8');
    } catch {
      // gone: the next one
    }
  }
  return null;
}

function startTicks(startTime: string | null): number {
  return startTime === null ? Number.MAX_SAFE_INTEGER : Number(startTime);
}
