import { posix } from 'node:path';
import { cpuDirViewFiles, procViewFiles } from '../views/catalog.js';

/** Where the node agent mounts the view by default in Kubernetes (its parent is what pods see propagate). */
export const defaultViewDir = '/var/lib/lxcfs-ts/lxcfs';

/** The whole per-CPU directory; opt-in, because it needs an agent that serves the full directory. */
export const cpuDirectory = posix.dirname(cpuDirViewFiles[0]!.path);

const pressureFiles = procViewFiles.filter((f) => f.path.startsWith('proc/pressure/')).map((f) => f.path);

/**
 * Injected by default: the /proc files runc allows bind mounts over, plus the online CPU list.
 * Pressure files are left out because runc refuses mounts under /proc/pressure.
 */
export const defaultInjectedPaths: readonly string[] = [
  ...procViewFiles.filter((f) => !pressureFiles.includes(f.path)).map((f) => f.path),
  `${cpuDirectory}/online`,
];

/** Every path `--files` accepts: each file of the catalog, and the cpu directory as a whole. */
export const injectablePaths: readonly string[] = [
  ...procViewFiles.map((f) => f.path),
  ...cpuDirViewFiles.map((f) => f.path),
  cpuDirectory,
];

/** Short names accepted in `--files` lists. */
const fileAliases: Record<string, readonly string[]> = {
  default: defaultInjectedPaths,
  pressure: pressureFiles,
};

/** Host directories never exposed to pods, whatever the view directory is. */
const forbiddenParents = new Set([
  '/',
  '/var',
  '/var/lib',
  '/var/run',
  '/run',
  '/etc',
  '/usr',
  '/home',
  '/root',
  '/tmp',
  '/opt',
  '/srv',
  '/mnt',
  '/proc',
  '/sys',
  '/dev',
  '/boot',
]);

export interface InjectedMount {
  /** Pod volume name this mount prefers (a suffix is added if the pod already uses the name). */
  readonly volumeName: string;
  /** Path on the node. */
  readonly hostPath: string;
  /** hostPath volume type: File/Directory make kubelet wait for the agent instead of creating an empty directory. */
  readonly hostPathType: 'File' | 'Directory';
  /** Path inside each container. */
  readonly mountPath: string;
  /** Set only on the parent directory mount, so a restarted agent's new mount reaches running pods. */
  readonly propagation?: 'HostToContainer';
}

/** Everything the mutation needs to know: what to mount, and into which containers. */
export interface InjectionPlan {
  readonly viewDir: string;
  readonly mounts: readonly InjectedMount[];
  readonly initContainers: boolean;
  /** The Localhost seccomp profile of the syscall view (relative to the kubelet's seccomp directory), or null: off. */
  readonly sysinfoProfile: string | null;
}

export interface InjectionOptions {
  /** The view's mountpoint on the node (`--view-dir`). */
  viewDir: string;
  /** Paths relative to the view directory and aliases (`--files`). */
  files: readonly string[];
  /** Also mount into init containers. */
  initContainers: boolean;
  /** Mount the view's parent directory read-only with HostToContainer propagation (needed for self-repair). */
  parentMount: boolean;
  /** Offer the syscall view to pods that ask for it, with this Localhost profile; null: off. */
  sysinfoProfile: string | null;
}

export const defaultInjectionOptions: InjectionOptions = {
  viewDir: defaultViewDir,
  files: ['default'],
  initContainers: false,
  parentMount: true,
  sysinfoProfile: null,
};

export class InjectionConfigError extends Error {}

/** Expands aliases, validates every entry and drops duplicates and files covered by a selected directory. */
export function resolveFiles(entries: readonly string[]): string[] {
  const expanded: string[] = [];
  for (const raw of entries) {
    const entry = raw.trim().replace(/^\/+|\/+$/g, '');
    if (entry === '') continue;
    const alias = fileAliases[entry];
    if (alias) {
      expanded.push(...alias);
      continue;
    }
    if (!injectablePaths.includes(entry)) {
      throw new InjectionConfigError(
        `unknown view file "${raw}"; accepted: ${Object.keys(fileAliases).join(', ')}, ${injectablePaths.join(', ')}`,
      );
    }
    expanded.push(entry);
  }
  const unique = [...new Set(expanded)];
  const dirs = unique.filter((p) => p === cpuDirectory);
  const result = unique.filter((p) => !dirs.some((d) => p.startsWith(`${d}/`)));
  if (result.length === 0) throw new InjectionConfigError('no view file selected');
  return result;
}

/**
 * The view's parent directory, refused when it is a broad host directory: it is mounted into every
 * injected pod, so it must be a directory that holds nothing but the view.
 */
export function viewParentDir(viewDir: string): string {
  const parent = posix.dirname(viewDir);
  if (forbiddenParents.has(parent) || !posix.basename(parent).includes('lxcfs')) {
    throw new InjectionConfigError(
      `the parent of the view directory ${viewDir} is ${parent}, which would be mounted into every pod; ` +
      `use a view directory whose parent is dedicated to it and named after lxcfs (default ${defaultViewDir}), ` +
      'or pass --no-parent-mount (running pods then cannot be repaired after an agent restart)',
    );
  }
  return parent;
}

function checkViewDir(viewDir: string): void {
  if (
    !viewDir.startsWith('/') ||
    posix.normalize(viewDir) !== viewDir ||
    viewDir === '/' ||
    viewDir.endsWith('/')
  ) {
    throw new InjectionConfigError(`--view-dir must be a normalized absolute path, got "${viewDir}"`);
  }
}

/**
 * The profile name is a path below the kubelet's seccomp directory; sysinfo(2) must come with the
 * files it is read together with (busybox free reads both), so those must be injected too.
 */
function checkSysinfoProfile(profile: string, mounts: readonly InjectedMount[]): void {
  if (profile === '' || profile.startsWith('/') || posix.normalize(profile) !== profile || profile.startsWith('..')) {
    throw new InjectionConfigError(
      `--sysinfo-profile must be a path relative to the kubelet's seccomp directory, got "${profile}"`,
    );
  }
  const needed = ['/proc/meminfo', '/proc/uptime', '/proc/loadavg', '/proc/swaps'];
  const missing = needed.filter((path) => !mounts.some((m) => m.mountPath === path));
  if (missing.length > 0) {
    throw new InjectionConfigError(
      `--sysinfo needs the files sysinfo(2) agrees with in --files; missing: ${missing.join(', ')}`,
    );
  }
}

function volumeNameFor(path: string): string {
  return `lxcfs-ts-${path.replace(/\//g, '-')}`;
}

export function buildInjectionPlan(options: InjectionOptions): InjectionPlan {
  checkViewDir(options.viewDir);
  const mounts: InjectedMount[] = resolveFiles(options.files).map((path) => ({
    volumeName: volumeNameFor(path),
    hostPath: `${options.viewDir}/${path}`,
    hostPathType: path === cpuDirectory ? 'Directory' : 'File',
    mountPath: `/${path}`,
  }));
  if (options.parentMount) {
    const parent = viewParentDir(options.viewDir);
    mounts.push({
      volumeName: 'lxcfs-ts-view-parent',
      hostPath: parent,
      hostPathType: 'Directory',
      mountPath: parent,
      propagation: 'HostToContainer',
    });
  }
  if (options.sysinfoProfile !== null) checkSysinfoProfile(options.sysinfoProfile, mounts);
  return {
    viewDir: options.viewDir,
    mounts,
    initContainers: options.initContainers,
    sysinfoProfile: options.sysinfoProfile,
  };
}
