/**
 * The sandbox's cgroup on a cgroup v2 host: one directory `<root>/lxcfs-ts/<name>`. v2 only lets
 * a cgroup use a controller that its parent enabled in `cgroup.subtree_control`, so the controllers
 * are enabled along the path first (only those not enabled yet: the host's own choices are kept).
 */
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { formatCpuList } from './quantities.js';
import { RunError } from './run-error.js';
import {
  type CgroupFs,
  type CgroupLimits,
  emptyAndRemove,
  makeLeaf,
  readPids,
  realCgroupFs,
  removeParentIfUnused,
  type SandboxCgroup,
  sandboxCgroupParent,
  writeCgroupFile,
} from './sandbox-cgroup.js';

/** Controllers a sandbox gets when the host has them, so the views find per-container data. */
const wantedControllers = ['cpu', 'cpuset', 'io', 'memory', 'pids'];

function readWords(fs: CgroupFs, file: string): string[] {
  return fs.exists(file) ? fs.read(file).split(/\s+/).filter(Boolean) : [];
}

export async function createV2Cgroup(
  root: string,
  name: string,
  limits: CgroupLimits,
  log: Logger,
  fs: CgroupFs = realCgroupFs,
): Promise<SandboxCgroup> {
  const available = readWords(fs, join(root, 'cgroup.controllers'));
  const needed = [
    ...(limits.memoryBytes !== undefined ? ['memory'] : []),
    ...(limits.cpuQuota !== undefined ? ['cpu'] : []),
    ...(limits.cpuset !== undefined ? ['cpuset'] : []),
  ];
  for (const controller of needed) {
    if (!available.includes(controller)) {
      throw new RunError(
        `the cgroup v2 '${controller}' controller is not available (not in ${join(root, 'cgroup.controllers')}); ` +
        'it may still be bound to a cgroup v1 hierarchy, or be disabled on the kernel command line',
      );
    }
  }
  const controllers = wantedControllers.filter((c) => available.includes(c));
  const parent = join(root, sandboxCgroupParent);
  const cgroup = new V2Cgroup(fs, parent, join(parent, name), log);
  try {
    enableControllers(fs, root, controllers);
    makeLeaf(fs, parent, cgroup.leaf, () => enableControllers(fs, parent, controllers));
    cgroup.created = true;
    writeLimits(fs, cgroup.leaf, limits);
  } catch (err) {
    await cgroup.remove();
    throw err;
  }
  return cgroup;
}

/** Adds `+controller` to `cgroup.subtree_control` for those the directory does not enable yet. */
function enableControllers(fs: CgroupFs, dir: string, controllers: readonly string[]): void {
  const enabled = readWords(fs, join(dir, 'cgroup.subtree_control'));
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length > 0) {
    writeCgroupFile(fs, join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  }
}

function writeLimits(fs: CgroupFs, leaf: string, limits: CgroupLimits): void {
  if (limits.memoryBytes !== undefined) {
    writeCgroupFile(fs, join(leaf, 'memory.max'), String(limits.memoryBytes));
    if (limits.memorySwap !== undefined) {
      // v2 limits swap on its own (memory.swap.max), where --memory-swap counts memory plus swap.
      const swapMax = join(leaf, 'memory.swap.max');
      if (!fs.exists(swapMax)) {
        throw new RunError(
          '--memory-swap needs swap accounting, which this kernel has off (no memory.swap.max): ' +
          'boot with swapaccount=1 (or without cgroup.memory=noswap), or drop --memory-swap',
        );
      }
      const swap = limits.memorySwap === 'unlimited' ? 'max' : String(limits.memorySwap - limits.memoryBytes);
      writeCgroupFile(fs, swapMax, swap);
    }
  }
  if (limits.cpuQuota !== undefined) {
    writeCgroupFile(fs, join(leaf, 'cpu.max'), `${limits.cpuQuota.quotaUs} ${limits.cpuQuota.periodUs}`);
  }
  if (limits.cpuset !== undefined)
    writeCgroupFile(fs, join(leaf, 'cpuset.cpus'), formatCpuList(limits.cpuset));
}

class V2Cgroup implements SandboxCgroup {
  created = false;

  constructor(
    private readonly fs: CgroupFs,
    readonly parent: string,
    readonly leaf: string,
    private readonly log: Logger,
  ) {}

  get leaves(): string[] {
    return this.created ? [this.leaf] : [];
  }

  get procsFiles(): string[] {
    return this.leaves.map((leaf) => join(leaf, 'cgroup.procs'));
  }

  pids(): number[] {
    return this.procsFiles.flatMap((file) => readPids(this.fs, file));
  }

  async remove(): Promise<void> {
    if (this.created) {
      // cgroup.kill (Linux 5.14+) kills the whole cgroup at once, even processes forking meanwhile.
      const killFile = join(this.leaf, 'cgroup.kill');
      await emptyAndRemove(this.fs, this.leaves, this.procsFiles, this.log, () => {
        if (this.fs.exists(killFile) && this.pids().length > 0) writeCgroupFile(this.fs, killFile, '1');
      });
    }
    removeParentIfUnused(this.fs, this.parent, this.log);
  }
}
