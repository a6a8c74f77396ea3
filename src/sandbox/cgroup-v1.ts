/**
 * The sandbox's cgroups on a cgroup v1 host: one leaf `<hierarchy>/lxcfs-ts/<name>` in every
 * mounted hierarchy among memory, cpu, cpuacct, cpuset, blkio and pids (a hierarchy that holds
 * several controllers, such as `cpu,cpuacct`, gets one leaf), with the requested limits written.
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
  fs: CgroupFs = realCgroupFs,
): Promise<SandboxCgroup> {
  for (const controller of requiredControllers(limits)) {
    if (!hierarchies.has(controller)) {
      throw new RunError(
        `the cgroup v1 '${controller}' controller is not mounted on this host (needed for the requested limit); ` +
        `mount it (mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller}) or drop the option`,
      );
    }
  }
  const cgroup = new V1Cgroup(fs, log);
  const leafOf = (controller: string) => join(hierarchies.get(controller)!, sandboxCgroupParent, name);
  const cpusetMount = hierarchies.get('cpuset');
  try {
    for (const mount of new Set(hierarchies.values())) {
      const parent = join(mount, sandboxCgroupParent);
      const leaf = join(parent, name);
      cgroup.parents.push(parent);
      // v1 cpuset cgroups start with no CPUs and no memory nodes; no task can join one until both are set.
      const isCpuset = mount === cpusetMount;
      makeLeaf(fs, parent, leaf, () => {
        if (isCpuset) inheritCpusetIfEmpty(fs, parent);
      });
      cgroup.leaves.push(leaf);
      if (isCpuset) inheritCpusetIfEmpty(fs, leaf);
    }
    writeLimits(fs, leafOf, limits);
  } catch (err) {
    await cgroup.remove();
    throw err;
  }
  return cgroup;
}

class V1Cgroup implements SandboxCgroup {
  readonly leaves: string[] = [];
  readonly parents: string[] = [];

  constructor(
    private readonly fs: CgroupFs,
    private readonly log: Logger,
  ) {}

  get procsFiles(): string[] {
    return this.leaves.map((leaf) => join(leaf, 'cgroup.procs'));
  }

  pids(): number[] {
    return [...new Set(this.procsFiles.flatMap((file) => readPids(this.fs, file)))];
  }

  async remove(): Promise<void> {
    await emptyAndRemove(this.fs, this.leaves, this.procsFiles, this.log);
    for (const parent of this.parents) removeParentIfUnused(this.fs, parent, this.log);
  }
}

/** Copies `cpuset.cpus` and `cpuset.mems` from the parent cgroup when they are still empty. */
function inheritCpusetIfEmpty(fs: CgroupFs, dir: string): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if (fs.read(join(dir, file)).trim() !== '') continue;
    writeCgroupFile(fs, join(dir, file), fs.read(join(dir, '..', file)).trim());
  }
}

function writeLimits(fs: CgroupFs, leafOf: (controller: string) => string, limits: CgroupLimits): void {
  if (limits.memoryBytes !== undefined) {
    const memory = leafOf('memory');
    writeCgroupFile(fs, join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    if (limits.memorySwap !== undefined) {
      const memsw = join(memory, 'memory.memsw.limit_in_bytes');
      if (!fs.exists(memsw)) {
        throw new RunError(
          '--memory-swap needs swap accounting, which this kernel has off (no memory.memsw.limit_in_bytes): ' +
          'boot with swapaccount=1, or drop --memory-swap',
        );
      }
      writeCgroupFile(fs, memsw, limits.memorySwap === 'unlimited' ? '-1' : String(limits.memorySwap));
    }
  }
  if (limits.cpuQuota !== undefined) {
    const cpu = leafOf('cpu');
    writeCgroupFile(fs, join(cpu, 'cpu.cfs_period_us'), String(limits.cpuQuota.periodUs));
    writeCgroupFile(fs, join(cpu, 'cpu.cfs_quota_us'), String(limits.cpuQuota.quotaUs));
  }
  if (limits.cpuset !== undefined) {
    writeCgroupFile(fs, join(leafOf('cpuset'), 'cpuset.cpus'), formatCpuList(limits.cpuset));
  }
}
