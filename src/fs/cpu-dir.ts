/**
 * The host's sys/devices/system/cpu directory as one caller sees it: the `cpuN` entries are
 * renumbered to the caller's visible CPUs (tree `cpu<i>` is host `cpu<visible[i]>`, and no
 * others exist), everything else is the host's entry unchanged.
 */
import { type Dirent, readdirSync } from 'node:fs';
import { join } from 'node:path';

const CPU_NAME = /^cpu(\d+)$/;

export interface HostEntry {
  name: string;
  kind: 'dir' | 'file' | 'link';
}

/** True for names whose existence depends on the caller (cpu0, cpu1, ...). */
export function isCpuName(name: string): boolean {
  return CPU_NAME.test(name);
}

export class CpuDirView {
  private readonly hostDir: string;

  constructor(sysRoot: string) {
    this.hostDir = join(sysRoot, 'devices/system/cpu');
  }

  /**
   * Host path for a path relative to the cpu directory ('' is the directory itself), or null
   * when the caller cannot see it (a cpuN beyond its CPU count).
   */
  hostPath(relative: string, visible: readonly number[] | null): string | null {
    if (relative === '') return this.hostDir;
    const slash = relative.indexOf('/');
    const first = slash < 0 ? relative : relative.slice(0, slash);
    const match = visible ? CPU_NAME.exec(first) : null;
    if (!match || !visible) return join(this.hostDir, relative);
    const index = Number(match[1]);
    if (index >= visible.length) return null;
    const rest = slash < 0 ? '' : relative.slice(slash);
    return join(this.hostDir, `cpu${visible[index]}${rest}`);
  }

  /** The entries of a directory below (or at) the cpu directory, as this caller sees them. */
  list(relative: string, visible: readonly number[] | null): HostEntry[] {
    const host = this.hostPath(relative, visible);
    if (host === null) return [];
    const entries = readdirSync(host, { withFileTypes: true }).map(toHostEntry);
    if (relative !== '' || !visible) return entries;
    const others = entries.filter((e) => !isCpuName(e.name));
    const cpus: HostEntry[] = visible.map((_, i) => ({ name: `cpu${i}`, kind: 'dir' }));
    return [...cpus, ...others];
  }

  /**
   * Every host path below the cpu directory (relative), breadth first, bounded. Used to map a
   * node id back to its path when this thread has not seen the lookup that created it.
   */
  walk(maxEntries = 200_000, maxDepth = 8): string[] {
    const found: string[] = [];
    let level = [''];
    for (let depth = 0; depth < maxDepth && level.length > 0 && found.length < maxEntries; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        let entries: HostEntry[];
        try {
          entries = readdirSync(join(this.hostDir, dir), { withFileTypes: true }).map(toHostEntry);
        } catch {
          continue;
        }
        for (const entry of entries) {
          const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
          found.push(path);
          if (entry.kind === 'dir') next.push(path);
          if (found.length >= maxEntries) break;
        }
      }
      level = next;
    }
    return found;
  }
}

function toHostEntry(d: Dirent): HostEntry {
  return { name: d.name, kind: d.isSymbolicLink() ? 'link' : d.isDirectory() ? 'dir' : 'file' };
}
