import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The controllers the views read. */
export const controllers = ['memory', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'pids'] as const;
export type Controller = (typeof controllers)[number];

/** A caller's (or container's) cgroup path per controller, as written in /proc/<pid>/cgroup. */
export type CgroupPaths = Readonly<Record<Controller, string | null>>;

/**
 * Where each controller's hierarchy is mounted. cgroup v2: one unified tree at the root, every
 * controller there. cgroup v1 (and "hybrid" hosts, whose v1 hierarchies carry the controllers):
 * one directory per hierarchy under the root, named after the controller or after the co-mounted
 * set ("cpu,cpuacct"), usually with per-controller symlinks.
 */
export interface CgroupLayout {
  readonly version: 1 | 2;
  readonly root: string;
  /** Absolute directory of the hierarchy holding `controller`, or null when it is not mounted. */
  readonly hierarchy: Readonly<Record<Controller, string | null>>;
}

export function detectCgroupLayout(root: string): CgroupLayout {
  if (existsSync(join(root, 'cgroup.controllers'))) {
    const hierarchy = Object.fromEntries(controllers.map((c) => [c, root])) as Record<Controller, string>;
    return { version: 2, root, hierarchy };
  }
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    // no cgroup mount at all: every view falls back to host content
  }
  const hierarchy = {} as Record<Controller, string | null>;
  for (const c of controllers) {
    const direct = entries.includes(c) ? join(root, c) : null;
    const comounted = entries.find((e) => e.split(',').includes(c));
    const dir = direct ?? (comounted !== undefined ? join(root, comounted) : null);
    hierarchy[c] = dir !== null && isDirectory(dir) ? dir : null;
  }
  return { version: 1, root, hierarchy };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Parses /proc/<pid>/cgroup. v1 lines are `id:controller[,controller...]:/path`; v2 has one
 * `0::/path` line. A trailing `/init.scope` is dropped: systemd puts a system container's PID 1
 * there and its services in sibling sub-cgroups, and the container is the parent.
 * Paths that leave our cgroup namespace (`/../..`) cannot be opened, so they resolve to null.
 */
export function parseProcCgroup(text: string, version: 1 | 2): CgroupPaths {
  const out: Record<Controller, string | null> = {
    memory: null,
    cpu: null,
    cpuacct: null,
    cpuset: null,
    blkio: null,
    pids: null,
  };
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const first = text.indexOf(':', start);
    const second = first < 0 ? -1 : text.indexOf(':', first + 1);
    if (first >= 0 && second >= 0 && second < end) {
      const names = text.slice(first + 1, second);
      const path = normalizeCgroupPath(text.slice(second + 1, end));
      if (version === 2) {
        if (names === '' && text.slice(start, first) === '0') {
          for (const c of controllers) out[c] = path;
        }
      } else if (names !== '') {
        for (const name of names.split(',')) {
          if ((controllers as readonly string[]).includes(name)) out[name as Controller] = path;
        }
      }
    }
    start = end + 1;
  }
  return out;
}

function normalizeCgroupPath(raw: string): string | null {
  let path = raw.trim();
  if (!path.startsWith('/') || path.includes('/..') || path.endsWith(' (deleted)')) return null;
  if (path === '/init.scope') return '/';
  if (path.endsWith('/init.scope')) path = path.slice(0, -'/init.scope'.length);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

/** True when `path` is `ancestor` or lies below it. */
export function isSameOrBelow(path: string, ancestor: string): boolean {
  if (ancestor === '/') return true;
  return path === ancestor || (path.startsWith(ancestor) && path.charCodeAt(ancestor.length) === 0x2f);
}

/** `/a/b/c` -> `/a/b`; `/a` -> `/`; `/` -> null. */
export function parentCgroup(path: string): string | null {
  if (path === '/') return null;
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

/** The absolute directory of a cgroup inside a hierarchy. */
export function cgroupDir(hierarchy: string, path: string): string {
  return path === '/' ? hierarchy : hierarchy + path;
}
