import type { ViewOptions } from '../../../src/common/options.js';
import {
  buildTree,
  capturedHost,
  capturedV1,
  fourCpuHost,
  hostPidNs,
  type ProcSpec,
  type Tree,
  v1ProcCgroup,
  v2Container,
  v2ProcCgroup,
} from './fixture-tree.js';

export const agentPid = 900;
export const initPid = 4101;
export const callerPid = 4188;
export const containerPidNs = 4026532500;

export const v1Pod = '/kubepods/burstable/pod0a1b';
export const v1Container = `${v1Pod}/ctr1`;
export const v2Pod = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b.slice';
export const v2ContainerPath = `${v2Pod}/cri-containerd-abc.scope`;

export interface ScenarioOptions {
  options?: Partial<ViewOptions>;
  host?: Record<string, string>;
  /** Extra or replaced cgroup files. */
  cgroups?: Record<string, Record<string, string>>;
  procs?: ProcSpec[];
  /** Start time of the container's PID 1 (clock ticks after boot); unknown (no stat file) by default. */
  initStartTicks?: number;
}

function agent(procCgroup: string): ProcSpec {
  return { pid: agentPid, cgroup: procCgroup, pidNs: hostPidNs, nspid: [agentPid] };
}

/**
 * cgroup v1: a container (init 4101, caller 4188 in its own pid namespace) in
 * /kubepods/burstable/pod0a1b/ctr1 with the files captured on this machine (256 MiB, memsw
 * 384 MiB, quota 1 CPU, cpuset 0-1), below a 1 GiB pod and a 20 GiB kubepods cgroup.
 */
export function v1Scenario(s: ScenarioOptions = {}): Tree {
  const cgroups: Record<string, Record<string, string>> = {
    memory: { 'memory.limit_in_bytes': '9223372036854771712\n', 'memory.usage_in_bytes': '3000000000\n' },
    'memory/kubepods': { 'memory.limit_in_bytes': '21474836480\n' },
    [`memory${v1Pod}`]: { 'memory.limit_in_bytes': '1073741824\n' },
    [`memory${v1Container}`]: capturedV1('memory'),
    cpu: { 'cpu.cfs_quota_us': '-1\n', 'cpu.cfs_period_us': '100000\n' },
    [`cpu${v1Container}`]: capturedV1('cpu'),
    [`cpuacct${v1Container}`]: capturedV1('cpuacct'),
    cpuset: { 'cpuset.cpus': '0-1\n', 'cpuset.effective_cpus': '0-1\n' },
    [`cpuset${v1Container}`]: capturedV1('cpuset'),
    [`blkio${v1Container}`]: capturedV1('blkio'),
    [`pids${v1Container}`]: capturedV1('pids'),
    ...s.cgroups,
  };
  return buildTree({
    version: 1,
    host: { ...capturedHost(), ...s.host },
    cgroups,
    procs: s.procs ?? [
      agent(v1ProcCgroup('/')),
      {
        pid: initPid,
        cgroup: v1ProcCgroup(v1Container),
        pidNs: containerPidNs,
        nspid: [initPid, 1],
        ppid: 4000,
        ...(s.initStartTicks !== undefined && { startTicks: s.initStartTicks }),
      },
      {
        pid: callerPid,
        cgroup: v1ProcCgroup(v1Container),
        pidNs: containerPidNs,
        nspid: [callerPid, 7],
        ppid: initPid,
      },
    ],
    selfPid: agentPid,
    options: s.options,
  });
}

/**
 * cgroup v2 on a 4-CPU host: a Kubernetes container (512 MiB, 1.5 CPU, documented file formats)
 * below a pod cgroup limited to 1 GiB and 2 CPUs.
 */
export function v2Scenario(s: ScenarioOptions = {}): Tree {
  const cgroups: Record<string, Record<string, string>> = {
    '': {
      'cpuset.cpus.effective': '0-3\n',
      'cpu.stat': 'usage_usec 900000000\nuser_usec 700000000\nsystem_usec 200000000\n',
      'memory.stat': 'anon 1000\n',
    },
    'kubepods.slice': {
      'memory.max': '20000000000\n',
      'cpu.max': 'max 100000\n',
      'cpuset.cpus.effective': '0-3\n',
    },
    [v2Pod.slice(1)]: {
      'memory.max': '1073741824\n',
      'memory.swap.max': 'max\n',
      'cpu.max': '200000 100000\n',
      'cpuset.cpus.effective': '0-3\n',
    },
    [v2ContainerPath.slice(1)]: v2Container(),
    ...s.cgroups,
  };
  return buildTree({
    version: 2,
    host: { ...fourCpuHost(), ...s.host },
    cgroups,
    procs: s.procs ?? [
      agent(v2ProcCgroup('/')),
      {
        pid: initPid,
        cgroup: v2ProcCgroup(v2ContainerPath),
        pidNs: containerPidNs,
        nspid: [initPid, 1],
        ppid: 4000,
        ...(s.initStartTicks !== undefined && { startTicks: s.initStartTicks }),
      },
      {
        pid: callerPid,
        cgroup: v2ProcCgroup(v2ContainerPath),
        pidNs: containerPidNs,
        nspid: [callerPid, 7],
        ppid: initPid,
      },
    ],
    selfPid: agentPid,
    options: s.options,
  });
}

/** The value of a `Key:  N kB` line. */
export function field(text: string, key: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${key}:`));
  if (line === undefined) throw new Error(`no ${key} line`);
  return Number(
    line
      .slice(key.length + 1)
      .trim()
      .split(/\s+/)[0],
  );
}
