/**
 * The sandbox's cgroup on a cgroup v2 host: one directory `<root>/lxcfs-ts/<name>`. v2 only lets
 * a cgroup use a controller that its parent enabled in `cgroup.subtree_control`, so the controllers
 * are enabled along the path first (only those not enabled yet: the host's own choices are kept).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { formatCpuList } from './quantities.js';
import { errnoCode, RunError } from './run-error.js';
import {
  type CgroupLimits,
  emptyAndRemove,
  readPids,
  removeParentIfUnused,
  type SandboxCgroup,
  sandboxCgroupParent,
  writeCgroupFile,
} from './sandbox-cgroup.js';

/** Controllers a sandbox gets when the host has them, so the views find per-container data. */
const wantedControllers = ['cpu', 'cpuset', 'io', 'memory', 'pids'];

function readWords(file: string): string[] {
  return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
}

export async function createV2Cgroup(
  root: string,
  name: string,
  limits: CgroupLimits,
  log: Logger,
): Promise<SandboxCgroup> {
  const available = readWords(join(root, 'cgroup.controllers'));
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
  const leaf = join(parent, name);
  const cgroup = new V2Cgroup(root, parent, leaf, log);
  try {
    for (let attempt = 1; ; attempt++) {
      enableControllers(root, controllers);
      mkdirSync(parent, { recursive: true });
      enableControllers(parent, controllers);
      try {
        mkdirSync(leaf);
        break;
      } catch (err) {
        if (errnoCode(err) === 'EEXIST')
          throw new RunError(`cgroup ${leaf} already exists; another sandbox uses it`);
        // Another sandbox removed the shared parent as it finished: make it again.
        if (errnoCode(err) !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
    cgroup.created = true;
    writeLimits(leaf, limits);
  } catch (err) {
    await cgroup.remove();
    throw err;
  }
  return cgroup;
}

/** Adds `+controller` to `cgroup.subtree_control` for those the directory does not enable yet. */
function enableControllers(dir: string, controllers: readonly string[]): void {
  const enabled = readSubtreeControl(dir);
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length > 0)
    writeCgroupFile(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
}

function readSubtreeControl(dir: string): string[] {
  const file = join(dir, 'cgroup.subtree_control');
  return existsSync(file) ? readWords(file) : [];
}

function writeLimits(leaf: string, limits: CgroupLimits): void {
  if (limits.memoryBytes !== undefined) {
    writeCgroupFile(join(leaf, 'memory.max'), String(limits.memoryBytes));
    if (limits.memorySwap !== undefined) {
      // v2 limits swap on its own (memory.swap.max), where --memory-swap counts memory plus swap.
      const swapMax = join(leaf, 'memory.swap.max');
      if (!existsSync(swapMax)) {
        throw new RunError(
          '--memory-swap needs swap accounting, which this kernel has off (no memory.swap.max): ' +
            'boot with swapaccount=1 (or without cgroup.memory=noswap), or drop --memory-swap',
        );
      }
      const swap = limits.memorySwap === 'unlimited' ? 'max' : String(limits.memorySwap - limits.memoryBytes);
      writeCgroupFile(swapMax, swap);
    }
  }
  if (limits.cpuQuota !== undefined) {
    writeCgroupFile(join(leaf, 'cpu.max'), `${limits.cpuQuota.quotaUs} ${limits.cpuQuota.periodUs}`);
  }
  if (limits.cpuset !== undefined) writeCgroupFile(join(leaf, 'cpuset.cpus'), formatCpuList(limits.cpuset));
}

class V2Cgroup implements SandboxCgroup {
  created = false;

  constructor(
    readonly root: string,
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
    return this.procsFiles.flatMap(readPids);
  }

  async remove(): Promise<void> {
    if (this.created) {
      // cgroup.kill (Linux 5.14+) kills the whole subtree at once, even processes forking meanwhile.
      const killFile = join(this.leaf, 'cgroup.kill');
      await emptyAndRemove(this.leaves, this.procsFiles, this.log, () => {
        if (existsSync(killFile) && this.pids().length > 0) writeCgroupFile(killFile, '1');
      });
    }
    removeParentIfUnused(this.parent, this.log);
  }
}
