/**
 * The agent in a private cgroup namespace, as some container runtimes start even privileged
 * containers: other containers' cgroups read as /../.. paths there. Started through the launcher
 * with LXCFS_TS_CGROUPNS (what the DaemonSet sets), it joins the given namespace and a limited
 * container sees its limit; without it, it says what is wrong and the container sees the host's.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitOf, isMounted, waitFor } from '../../helpers/daemon.js';
import { repoRoot } from '../../helpers/paths.js';
import { cgroupRoot, field, requireRootAndV1, TestCgroups, v1Controllers } from '../cgroup/real-cgroups.js';

const launcher = join(repoRoot, 'bin', 'lxcfs-ts');
const cg = new TestCgroups(`lxcfs-ts-test-deploy-cgns-${process.pid}`);
const limitBytes = 256 * 1024 * 1024;

interface Agent {
  child: ChildProcess;
  mountpoint: string;
  stderr(): string;
}

const agents: Agent[] = [];

/** Starts the daemon through the launcher, in the test's agent cgroup and a new cgroup namespace rooted there. */
function startAgent(env: Record<string, string>): Agent {
  const mountpoint = mkdtempSync(join(tmpdir(), 'lxcfs-ts-test-deploy-cgns-'));
  const moves = v1Controllers.map((c) => `echo $$ > ${cgroupRoot}/${c}/${cg.name}/agent/cgroup.procs`).join(' && ');
  const child = spawn(
    'sh',
    ['-c', `${moves} && exec unshare --cgroup "$0" --health-address off "$1"`, launcher, mountpoint],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, ...env } },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const agent = { child, mountpoint, stderr: () => stderr };
  agents.push(agent);
  return agent;
}

async function waitServing(agent: Agent): Promise<void> {
  await waitFor(`the view at ${agent.mountpoint}`, () => {
    if (agent.child.exitCode !== null) throw new Error(`daemon exited with ${agent.child.exitCode}: ${agent.stderr()}`);
    if (!isMounted(agent.mountpoint)) return false;
    try {
      return readFileSync(join(agent.mountpoint, 'proc/meminfo')).length > 0;
    } catch {
      return false;
    }
  });
}

async function stopAgent(agent: Agent): Promise<void> {
  try {
    process.kill(-agent.child.pid!, 'SIGTERM');
    await exitOf(agent.child, 10_000);
  } catch {
    // already gone, or stuck: the cleanup below kills it
  }
}

/** MemTotal (kB) that a process in the limited workload cgroup reads from the view. */
async function workloadMemTotal(mountpoint: string): Promise<number> {
  const reader = cg.run(`/${cg.name}/workload`, `cat ${mountpoint}/proc/meminfo`);
  let out = '';
  reader.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  assert.equal(await exitOf(reader, 10_000), 0);
  return field(out, 'MemTotal');
}

describe('the agent in a private cgroup namespace', { concurrency: false }, () => {
  before(() => {
    requireRootAndV1();
    cg.create();
    cg.create('agent');
    cg.create('workload');
    cg.set('memory', `/${cg.name}/workload`, 'memory.limit_in_bytes', String(limitBytes));
  });

  after(async () => {
    for (const agent of agents) {
      try {
        process.kill(-agent.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      spawnSync('umount', ['-l', agent.mountpoint]);
      rmSync(agent.mountpoint, { recursive: true, force: true });
    }
    await cg.cleanup();
  });

  test('with LXCFS_TS_CGROUPNS it joins that namespace and containers see their limits', async () => {
    const ownNs = readlinkSync('/proc/self/ns/cgroup');
    const agent = startAgent({ LXCFS_TS_CGROUPNS: `/proc/${process.pid}/ns/cgroup` });
    await waitServing(agent);
    // The launcher and nsenter exec: the daemon keeps the pid it was started with.
    assert.match(readlinkSync(`/proc/${agent.child.pid}/exe`), /node/);
    assert.equal(readlinkSync(`/proc/${agent.child.pid}/ns/cgroup`), ownNs);
    assert.equal(await workloadMemTotal(agent.mountpoint), limitBytes / 1024);
    assert.doesNotMatch(agent.stderr(), /private cgroup namespace/);
    await stopAgent(agent);
  });

  test('without it the daemon reports the problem (and the limits cannot be seen)', async () => {
    const hostMemTotal = field(readFileSync('/proc/meminfo', 'utf8'), 'MemTotal');
    const agent = startAgent({});
    await waitServing(agent);
    assert.notEqual(readlinkSync(`/proc/${agent.child.pid}/ns/cgroup`), readlinkSync('/proc/self/ns/cgroup'));
    await waitFor('the error log line', () => /private cgroup namespace/.test(agent.stderr()));
    assert.equal(await workloadMemTotal(agent.mountpoint), hostMemTotal);
    await stopAgent(agent);
  });

  test('a namespace out of sight (a PID 1 that cannot be inspected) is said, and the daemon starts where it is', async () => {
    const missing = join(tmpdir(), `lxcfs-ts-test-deploy-no-such-ns-${process.pid}`);
    const agent = startAgent({ LXCFS_TS_CGROUPNS: missing });
    await waitServing(agent);
    assert.match(agent.stderr(), new RegExp(`cannot see the cgroup namespace ${missing} \\(LXCFS_TS_CGROUPNS\\); staying in this one`));
    // It is still in the private namespace, and says what that means.
    await waitFor('the error log line', () => /private cgroup namespace/.test(agent.stderr()));
    await stopAgent(agent);
  });

  test('a namespace it cannot join stops the start with a message', async () => {
    const agent = startAgent({ LXCFS_TS_CGROUPNS: '/proc/self/ns/net' });
    assert.equal(await exitOf(agent.child, 10_000), 1);
    assert.match(agent.stderr(), /cannot join the cgroup namespace \/proc\/self\/ns\/net/);
    assert.equal(isMounted(agent.mountpoint), false);
  });
});
