/**
 * The fixed part of the view's tree: LXCFS's layout, so existing bind mounts keep working.
 *
 *   /proc/{cpuinfo,meminfo,stat,uptime,diskstats,swaps,loadavg,slabinfo}
 *   /proc/pressure/{cpu,memory,io}            (only when the host has PSI)
 *   /sys/devices/system/cpu/{online,possible,present}
 *   /sys/devices/system/cpu/**                (host entries, passed through; cpuN renumbered per caller)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cpuDirViewFiles, procViewFiles, type ViewFile } from '../views/catalog.js';

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** The directory whose host entries are passed through below the static tree. */
export const CPU_DIR = 'sys/devices/system/cpu';

export type StaticNode =
  | { kind: 'dir'; ino: number; path: string; parent: number; mode: number; children: Map<string, number> }
  | { kind: 'view'; ino: number; path: string; parent: number; file: ViewFile };

export class StaticTree {
  readonly byIno = new Map<number, StaticNode>();
  readonly byPath = new Map<string, StaticNode>();
  private nextIno = 1;

  constructor(procRoot: string) {
    const root = this.addDir('', 0o755);
    const proc = this.addDir('proc', 0o555, root);
    const hasPressure = existsSync(join(procRoot, 'pressure'));
    const pressure = hasPressure ? this.addDir('proc/pressure', 0o555, proc) : null;
    for (const file of procViewFiles) {
      const inPressure = file.path.startsWith('proc/pressure/');
      if (inPressure && !pressure) continue;
      this.addView(file, inPressure && pressure ? pressure : proc);
    }
    const sys = this.addDir('sys', 0o555, root);
    const devices = this.addDir('sys/devices', 0o555, sys);
    const system = this.addDir('sys/devices/system', 0o555, devices);
    const cpu = this.addDir(CPU_DIR, 0o555, system);
    for (const file of cpuDirViewFiles) this.addView(file, cpu);
  }

  get root(): StaticNode {
    return this.byIno.get(1)!;
  }

  private addDir(path: string, perm: number, parent?: StaticNode): StaticNode {
    const node: StaticNode = {
      kind: 'dir',
      ino: this.nextIno++,
      path,
      parent: parent?.ino ?? 1,
      mode: S_IFDIR | perm,
      children: new Map(),
    };
    this.register(node, parent);
    return node;
  }

  private addView(file: ViewFile, parent: StaticNode): void {
    this.register({ kind: 'view', ino: this.nextIno++, path: file.path, parent: parent.ino, file }, parent);
  }

  private register(node: StaticNode, parent?: StaticNode): void {
    this.byIno.set(node.ino, node);
    this.byPath.set(node.path, node);
    if (parent && parent.kind === 'dir')
      parent.children.set(node.path.slice(node.path.lastIndexOf('/') + 1), node.ino);
  }
}
