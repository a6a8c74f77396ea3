/**
 * The sandbox's cgroups on a cgroup v1 host: one leaf `<hierarchy>/lxcfs-ts/<name>` in every
 * mounted hierarchy among memory, cpu, cpuacct, cpuset, blkio and pids (a hierarchy that holds
 * several controllers, such as `cpu,cpuacct`, gets one leaf), with the requested limits written.
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

/** The controller each limit needs; the sandbox cannot honour the limit without it. */
function requiredControllers(limits: CgroupLimits): string[] {
  const needed: string[] = [];
  if (limits.memoryBytes !== undefined) needed.push('memory');
  if (limits.cpuQuota !== undefined) needed.push('cpu');
  if (limits.cpuset !== undefined) needed.push('cpuset');
  return needed;
}

export async function createV1Cgroup(
  hierarchies: ReadonlyMap<string, string>,
  name: string,
  limits: CgroupLimits,
  log: Logger,
): Promise<SandboxCgroup> {
  for (const controller of requiredControllers(limits)) {
    if (!hierarchies.has(controller)) {
      throw new RunError(
        `the cgroup v1 '${controller}' controller is not mounted on this host (needed for the requested limit); ` +
          `mount it (mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller}) or drop the option`,
      );
    }
  }
  const mountPoints = [...new Set(hierarchies.values())];
  const cgroup = new V1Cgroup(
    mountPoints.map((mount) => join(mount, sandboxCgroupParent)),
    name,
    log,
  );
  try {
    for (const parent of cgroup.parents) cgroup.createLeaf(parent, hierarchies);
    writeLimits(hierarchies, cgroup.leafIn(hierarchies), limits);
  } catch (err) {
    await cgroup.remove();
    throw err;
  }
  return cgroup;
}

class V1Cgroup implements SandboxCgroup {
  readonly leaves: string[] = [];

  constructor(
    readonly parents: readonly string[],
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  get procsFiles(): string[] {
    return this.leaves.map((leaf) => join(leaf, 'cgroup.procs'));
  }

  /** The leaf that holds a given controller's files. */
  leafIn(hierarchies: ReadonlyMap<string, string>): (controller: string) => string {
    return (controller) => join(hierarchies.get(controller)!, sandboxCgroupParent, this.name);
  }

  createLeaf(parent: string, hierarchies: ReadonlyMap<string, string>): void {
    const isCpuset =
      hierarchies.has('cpuset') && parent === join(hierarchies.get('cpuset')!, sandboxCgroupParent);
    const leaf = join(parent, this.name);
    // Another sandbox may remove the shared parent between our mkdir calls when it finishes:
    // then the leaf's mkdir fails with ENOENT and the parent is simply made again.
    for (let attempt = 1; ; attempt++) {
      mkdirSync(parent, { recursive: true });
      if (isCpuset) inheritCpusetIfEmpty(parent);
      try {
        mkdirSync(leaf);
        break;
      } catch (err) {
        if (errnoCode(err) === 'EEXIST')
          throw new RunError(`cgroup ${leaf} already exists; another sandbox uses it`);
        if (errnoCode(err) !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
    this.leaves.push(leaf);
    // v1 cpuset cgroups start with no CPUs and no memory nodes: a task cannot join until both are set.
    if (isCpuset) inheritCpusetIfEmpty(leaf);
  }

  pids(): number[] {
    return [...new Set(this.procsFiles.flatMap(readPids))];
  }

  async remove(): Promise<void> {
    await emptyAndRemove(this.leaves, this.procsFiles, this.log);
    for (const parent of this.parents) removeParentIfUnused(parent, this.log);
  }
}

/** Copies `cpuset.cpus` and `cpuset.mems` from the parent cgroup when they are still empty. */
function inheritCpusetIfEmpty(dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (readFileSync(join(dir, file), 'utf8').trim() !== '') continue;
    const inherited = readFileSync(join(dir, '..', file), 'utf8').trim();
    writeCgroupFile(join(dir, file), inherited);
  }
}

function writeLimits(
  hierarchies: ReadonlyMap<string, string>,
  leafOf: (controller: string) => string,
  limits: CgroupLimits,
): void {
  if (limits.memoryBytes !== undefined) {
    const memory = leafOf('memory');
    writeCgroupFile(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    if (limits.memorySwap !== undefined) {
      const memsw = join(memory, 'memory.memsw.limit_in_bytes');
      if (!existsSync(memsw)) {
        throw new RunError(
          '--memory-swap needs swap accounting, which this kernel has off (no memory.memsw.limit_in_bytes): ' +
            'boot with swapaccount=1, or drop --memory-swap',
        );
      }
      writeCgroupFile(memsw, limits.memorySwap === 'unlimited' ? '-1' : String(limits.memorySwap));
    }
  }
  if (limits.cpuQuota !== undefined) {
    const cpu = leafOf('cpu');
    writeCgroupFile(join(cpu, 'cpu.cfs_period_us'), String(limits.cpuQuota.periodUs));
    writeCgroupFile(join(cpu, 'cpu.cfs_quota_us'), String(limits.cpuQuota.quotaUs));
  }
  if (limits.cpuset !== undefined && hierarchies.has('cpuset')) {
    writeCgroupFile(join(leafOf('cpuset'), 'cpuset.cpus'), formatCpuList(limits.cpuset));
  }
}
