/**
 * The whole system on a real Kubernetes node (scripts/kube-env up --node: kube-apiserver,
 * controller-manager, scheduler, kubelet, containerd and runc built or installed on this machine),
 * with the project's image built here and installed by `kubectl apply -k deploy/overlays/local-node`:
 * what a pod sees, what happens to its readers when the agent crashes, is replaced, or the node
 * restarts, and what an uninstall and the node's teardown leave behind.
 *
 * The steps depend on each other and run in order; times are reported as test diagnostics.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  acquireKubeNode,
  cmdline,
  containerPids,
  currentNodeNsPid,
  hostState,
  type HostState,
  type KubeNode,
  kubeEnv,
  mounts,
  nodeProcessIds,
  podProcessIds,
  followLogs,
  podReader,
  stoppablePodReader,
} from '../../helpers/kube-node.js';
import { chartDir, helm } from '../../helpers/helm.js';
import { hasDaemonSetSurge, helmArgsWithoutSurge, type Kubectl, kubectlFor } from '../../helpers/kube-env.js';
import { repoRoot } from '../../helpers/paths.js';
import { eventually } from '../../helpers/webhook-process.js';

const overlay = `${repoRoot}deploy/overlays/local-node`;
const stateDir = process.env.KUBE_ENV_DIR ?? '/tmp/lxcfs-ts-kube-env';
const system = 'lxcfs-ts';
const ns = `e2e-node-${randomBytes(3).toString('hex')}`;
/** Labelled for the syscall view too (lxcfs-ts.io/sysinfo=enabled). */
const sysinfoNs = `${ns}-sysinfo`;
/** The busybox pod's loop: its own sysinfo(2) (through the listener runc sent when it started), 5 times a second. */
const sysinfoLoop = 'while true; do echo "total $(free -m | awk \'/^Mem:/ {print $2}\')"; sleep 0.2; done';
const viewDir = '/var/lib/lxcfs-ts/lxcfs';
const memTotalKb = 262144;
/** The files the webhook injects by default (docs/webhook.md, "What is injected"). */
const injected = [
  '/proc/cpuinfo',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/uptime',
  '/proc/diskstats',
  '/proc/swaps',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/sys/devices/system/cpu/online',
];

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') throw new Error('the node e2e tests need root, and CI must run them as root');

interface PodStatus {
  metadata: { name: string; uid: string; creationTimestamp?: string; annotations?: Record<string, string> };
  status: {
    phase?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: {
      name: string;
      ready: boolean;
      restartCount: number;
      containerID?: string;
      state?: {
        waiting?: { reason?: string };
        running?: { startedAt?: string };
        terminated?: { exitCode?: number; reason?: string };
      };
    }[];
  };
}

function workload(name: string, command: string[]) {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'k8s.local/procps:dev',
          imagePullPolicy: 'Never',
          command,
          // Small requests: two of these, the agent and the webhook fit on the 2-CPU node.
          resources: { limits: { memory: '256Mi', cpu: '1' }, requests: { memory: '64Mi', cpu: '100m' } },
        },
      ],
    },
  });
}

/** A pod from the busybox image (Alpine-like: its free and uptime read sysinfo(2), not /proc/meminfo). */
function busyboxPod(name: string, namespace: string, script: string) {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'main',
          image: 'k8s.local/busybox:dev',
          imagePullPolicy: 'Never',
          command: ['sh', '-c', script],
          resources: { limits: { memory: '256Mi', cpu: '1' }, requests: { memory: '16Mi', cpu: '50m' } },
        },
      ],
    },
  });
}

/** The machine's memory in MiB, as free -m prints it from the kernel's own sysinfo(2). */
function hostMemMiB(): number {
  const kb = Number(/^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
  return Math.floor(kb / 1024);
}

interface KubeEvent {
  involvedObject: { name: string };
  reason: string;
  message: string;
  lastTimestamp: string;
}

/**
 * Every socket the processes listen on in the machine's network namespace is on loopback, the
 * bridge's address or the `kubernetes` Service address the bridge carries.
 */
function assertListensLocally(pids: number[]): void {
  const ours = new Set(pids);
  const listening = spawnSync('ss', ['-Hltnp'], { encoding: 'utf8' }).stdout.split('\n').filter((line) =>
    [...line.matchAll(/pid=(\d+)/g)].some((m) => ours.has(Number(m[1]))));
  assert.ok(listening.length >= 5, `the node's listening sockets were found: ${listening.join('\n')}`);
  for (const line of listening) {
    const local = line.trim().split(/\s+/)[3]!;
    assert.match(local, /^(127\.0\.0\.1|10\.88\.0\.1|10\.0\.0\.1|\[::1\]):\d+$/, `listens on loopback or the bridge only: ${line}`);
  }
}

const ready = (pod: PodStatus) =>
  pod.status.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.ready);

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

describe('lxcfs-ts on a real node', { skip: !isRoot && 'needs root' }, () => {
  let node: KubeNode | undefined;
  let k: Kubectl;
  let initial: HostState;
  let released = false;
  /** Step 4's agent replacement, in seconds since the epoch (step 4b measures the syscall view across it). */
  let agentDeletedAt = 0;
  let agentReadyAgainAt = 0;

  const agentPod = () =>
    k.json<{ items: PodStatus[] }>(['-n', system, 'get', 'pods', '-l', 'app.kubernetes.io/component=agent']).items;
  const pod = (name: string) => k.json<PodStatus>(['-n', ns, 'get', 'pod', name]);
  const exec = (name: string, script: string) => k(['-n', ns, 'exec', name, '--', 'sh', '-c', script]);
  const nodeMounts = () => mounts(`/proc/${node!.nsPid}/mountinfo`);
  /**
   * `fuse.lxcfs` mounts the node's namespace copied from the machine when it was made (another
   * LXCFS, or a dead mount someone left in /tmp): not this install's, so never counted as its leftovers.
   */
  let foreign = new Set<string>();
  const installMounts = () => nodeMounts().filter((m) => m.fstype === 'fuse.lxcfs' && !foreign.has(m.mountpoint));

  async function agentReady(timeoutMs: number): Promise<PodStatus> {
    return eventually('a ready agent pod', () => {
      const pods = agentPod().filter((p) => ready(p));
      return pods.length === 1 ? pods[0] : undefined;
    }, timeoutMs);
  }

  /** Entries under the view's mountpoint on the node's disk (what the runtime may have made there). */
  function underMountpoint(): string[] {
    const dir = `${node!.varLib}${viewDir.replace('/var/lib', '')}`;
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  before(() => {
    initial = hostState(stateDir);
    node = acquireKubeNode();
    k = kubectlFor(node.kubeconfig);
    foreign = new Set(mounts(`/proc/${node.nsPid}/mountinfo`)
      .filter((m) => m.fstype === 'fuse.lxcfs' && m.mountpoint !== viewDir).map((m) => m.mountpoint));
  });

  after(() => {
    if (node && !released) node.release();
  });

  it('0. the node runs isolated: no cloud metadata, loopback and its own bridge only', () => {
    // Checked from the rules, never by sending anything towards 169.254.169.254.
    const table = spawnSync('nft', ['list', 'table', 'inet', 'lxcfs_ts_node'], { encoding: 'utf8' }).stdout;
    assert.match(table, /hook output[\s\S]*ip daddr 169\.254\.0\.0\/16 reject/, 'traffic to 169.254.0.0/16 is rejected');
    const kubelet = readFileSync(`${stateDir}/kubelet.pid`, 'utf8').trim();
    const environ = readFileSync(`/proc/${kubelet}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('AWS_EC2_METADATA_DISABLED=true'), 'the kubelet runs with AWS_EC2_METADATA_DISABLED=true');
    assertListensLocally(nodeProcessIds(stateDir));
  });

  it('1. installs with kustomize: agent and webhook ready', async (t: TestContext) => {
    t.diagnostic(`node bring-up: ${node!.bringUpSeconds.toFixed(0)} s`);
    if (foreign.size > 0) t.diagnostic(`fuse.lxcfs mounts on the machine before the install, not counted: ${[...foreign].join(' ')}`);
    const started = performance.now();
    k(['apply', '-k', overlay]);
    const agent = await agentReady(180_000);
    await eventually('the webhook replicas available', () => {
      const d = k.json<{ spec: { replicas: number }; status: { availableReplicas?: number } }>(
        ['-n', system, 'get', 'deployment', 'lxcfs-ts-webhook'],
      );
      return d.status.availableReplicas === d.spec.replicas ? true : undefined;
    }, 120_000);
    await eventually('the caBundle written by the webhook', () => {
      const mwc = k.json<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
        ['get', 'mutatingwebhookconfiguration', 'lxcfs-ts'],
      );
      return mwc.webhooks.every((w) => (w.clientConfig.caBundle ?? '') !== '') ? true : undefined;
    }, 60_000);
    t.diagnostic(`install to ready: ${seconds(performance.now() - started)} (agent ${agent.metadata.name})`);
    assertListensLocally([...nodeProcessIds(stateDir), ...podProcessIds()]);
    const view = nodeMounts().find((m) => m.mountpoint === viewDir);
    assert.equal(view?.fstype, 'fuse.lxcfs', `the agent's view is mounted at ${viewDir} on the node`);

    k(['create', 'namespace', ns]);
    k(['label', 'namespace', ns, 'lxcfs-ts.io/inject=enabled']);
    await eventually('the namespace\'s service account token', () =>
      k(['-n', ns, 'get', 'sa', 'default', '-o', 'jsonpath={.secrets[0].name}']).trim() || undefined, 60_000);
  });

  it('2. a pod limited to 256Mi and 1 CPU sees its limits, and programs agree', async (t: TestContext) => {
    k(['apply', '-f', '-'], workload('work', ['sleep', 'infinity']));
    await eventually('pod work running', () => (ready(pod('work')) ? true : undefined), 60_000);
    assert.equal(pod('work').metadata.annotations?.['lxcfs-ts.io/status'], 'mutated');
    const out = exec('work', [
      'echo "== meminfo"; cat /proc/meminfo',
      'echo "== processors"; grep -c ^processor /proc/cpuinfo',
      'echo "== online"; cat /sys/devices/system/cpu/online',
      'echo "== free"; free -k',
      'echo "== getconf"; getconf _NPROCESSORS_ONLN',
      'echo "== lscpu"; lscpu',
      'echo "== top"; top -bn1 | head -5',
      'echo "== nproc"; nproc',
      'echo "== uptime"; cat /proc/uptime',
      'echo "== epoch"; date +%s',
    ].join('; '));
    const section = (name: string) => new RegExp(`== ${name}\\n([\\s\\S]*?)(?=\\n== |$)`).exec(out)?.[1] ?? '';
    assert.match(section('meminfo'), /^MemTotal:\s+262144 kB$/m);
    assert.equal(section('processors').trim(), '1');
    assert.equal(section('online').trim(), '0');
    assert.match(section('free'), /^Mem:\s+262144\s/m, 'free -k shows the limit as total memory');
    assert.equal(section('getconf').trim(), '1', 'getconf _NPROCESSORS_ONLN (glibc reads the online file)');
    assert.match(section('lscpu'), /^On-line CPU\(s\) list:\s+0$/m);
    assert.match(section('top'), /^MiB Mem :\s+256\.0 total/m);
    // coreutils nproc counts the CPUs in the affinity mask (the cpuset), which no file can change.
    t.diagnostic(`nproc (affinity mask, not a file) prints ${section('nproc').trim()}`);
    // --uptime container (the default): the container's age, not the node's uptime. Kubernetes
    // gives the start to the second: allow that rounding plus a second.
    const startedAt = pod('work').status.containerStatuses!.find((c) => c.name === 'main')?.state?.running?.startedAt;
    const age = Number(section('epoch').trim()) - Date.parse(startedAt ?? '') / 1000;
    const uptime = Number(section('uptime').split(' ')[0]);
    assert.ok(Math.abs(uptime - age) <= 2, `/proc/uptime ${uptime} s, the container's age ${age} s (started ${startedAt})`);
    t.diagnostic(`/proc/uptime ${uptime} s for a container ${age} s old`);
  });

  it('2b. the syscall view: busybox free -m shows the limit in a namespace labelled for it; elsewhere pods are untouched', async (t: TestContext) => {
    k(['create', 'namespace', sysinfoNs]);
    k(['label', 'namespace', sysinfoNs, 'lxcfs-ts.io/inject=enabled', 'lxcfs-ts.io/sysinfo=enabled']);
    await eventually('the namespace\'s service account token', () =>
      k(['-n', sysinfoNs, 'get', 'sa', 'default', '-o', 'jsonpath={.secrets[0].name}']).trim() || undefined, 60_000);
    k(['apply', '-f', '-'], busyboxPod('bb', sysinfoNs, sysinfoLoop));
    k(['apply', '-f', '-'], busyboxPod('bb-plain', ns, 'exec sleep 100000'));
    const bb = () => k.json<PodStatus & { spec: { containers: { securityContext?: { seccompProfile?: unknown } }[] } }>(
      ['-n', sysinfoNs, 'get', 'pod', 'bb']);
    await eventually('pod bb running', () => (ready(bb()) ? true : undefined), 60_000);
    await eventually('pod bb-plain running', () => (ready(pod('bb-plain')) ? true : undefined), 60_000);

    assert.equal(bb().metadata.annotations?.['lxcfs-ts.io/sysinfo-status'], 'enabled: main');
    assert.deepEqual(bb().spec.containers[0]!.securityContext?.seccompProfile,
      { type: 'Localhost', localhostProfile: 'lxcfs-ts/sysinfo.json' });
    const profile = JSON.parse(readFileSync(`${node!.varLib}/kubelet/seccomp/lxcfs-ts/sysinfo.json`, 'utf8'));
    t.diagnostic(`the agent's profile: ${profile.syscalls.length} rules, listener ${profile.listenerPath}`);

    // kubectl exec: runc connects to the listener again for the exec'd process.
    const out = k(['-n', sysinfoNs, 'exec', 'bb', '--', 'sh', '-c', 'free -m; echo "== uptime"; uptime; echo "== loadavg"; cat /proc/loadavg']);
    t.diagnostic(`in bb:\n${out}`);
    assert.match(out, /^Mem:\s+256\s/m, 'busybox free -m: the limit, from sysinfo(2)');
    const loads = /load average: ([\d.]+), ([\d.]+), ([\d.]+)/.exec(out)!.slice(1).map(Number);
    const file = /== loadavg\n([\d.]+) ([\d.]+) ([\d.]+)/.exec(out)!.slice(1).map(Number);
    loads.forEach((l, i) => assert.ok(Math.abs(l - file[i]!) <= 0.05, `sysinfo's load ${loads} agrees with /proc/loadavg ${file}`));
    const logged = await eventually('bb\'s own loop printing', () =>
      (k(['-n', sysinfoNs, 'logs', 'bb', '--tail', '1']).match(/^total (\d+)$/m)?.[1]), 30_000);
    assert.equal(logged, '256', 'the pod\'s own process (started by runc) is served too');

    // A pod in a namespace without the label: no profile, and its busybox free shows the machine.
    const plain = k.json<PodStatus & { spec: { containers: { securityContext?: unknown }[] } }>(['-n', ns, 'get', 'pod', 'bb-plain']);
    assert.equal(plain.metadata.annotations?.['lxcfs-ts.io/sysinfo-status'], undefined);
    assert.equal(plain.spec.containers[0]!.securityContext, undefined, 'no securityContext added');
    const total = Number(/^Mem:\s+(\d+)\s/m.exec(exec('bb-plain', 'free -m'))![1]);
    assert.ok(Math.abs(total - hostMemMiB()) <= 1, `busybox free -m without the syscall view: the machine's ${hostMemMiB()} MiB (got ${total})`);
  });

  it('3. kill -9 of the serving process under a reader loop: zero failed reads', async (t: TestContext) => {
    const agent = await agentReady(30_000);
    const container = agent.status.containerStatuses!.find((c) => c.name === 'agent')!;
    const pids = containerPids(container.containerID!);
    const server = pids.find((p) => cmdline(p).includes('serve-main.js'));
    const supervisor = pids.find((p) => p !== server && cmdline(p).includes('cli.js'));
    assert.ok(server && supervisor, `serving process and supervisor in the agent container: ${pids.map(cmdline).join(' | ')}`);

    const reader = podReader(node!.kubeconfig, ns, 'work', 12, memTotalKb);
    await new Promise((r) => setTimeout(r, 4000));
    k(['-n', system, 'exec', agent.metadata.name, '-c', 'agent', '--', 'sh', '-c', `kill -9 ${server}`]);
    const result = await reader;
    t.diagnostic(`reads during the kill: ${result.ok} good, ${result.wrong} wrong, ${result.errors} failed`);
    assert.equal(result.errors, 0, `no failed read: ${JSON.stringify(result.transitions)}`);
    assert.equal(result.wrong, 0, `no read of the host's file: ${JSON.stringify(result.transitions)}`);
    assert.ok(result.ok > 100, `the reader kept reading (${result.ok} reads)`);
    const after = containerPids(container.containerID!);
    assert.ok(after.includes(supervisor!), 'the supervisor (holding /dev/fuse) lives on');
    assert.ok(after.some((p) => p !== server && cmdline(p).includes('serve-main.js')), 'a new serving process took over');
  });

  it('3b. takeover: a newcomer agent pod takes the live connection over, then the DaemonSet\'s next pod takes it from the newcomer; zero failed reads, no host value', async (t: TestContext) => {
    // Kubernetes 1.20 has no DaemonSet surge: the newcomer is a plain pod made of the DaemonSet's
    // own pod template, pinned to the node, waiting after it hands over (--after-handover wait).
    const newcomer = 'lxcfs-ts-agent-newcomer';
    const serving = 'took over the live connection: serving alone';
    const handedOver = 'handed the connection over';
    const stoppedHandedOver = 'stopped (the connection was handed over: nothing is unmounted)';
    const repairs = /repaired a container's stale view mounts|put back view binds/;
    const logsOf = (name: string) => {
      const r = k.try(['-n', system, 'logs', name, '-c', 'agent']);
      return r.status === 0 ? r.stdout : '';
    };
    const takeoverMsIn = (log: string) => {
      const line = log.split('\n').find((l) => l.includes(serving));
      const ms = /"takeoverMs":(\d+)/.exec(line ?? '')?.[1];
      return ms === undefined ? undefined : Number(ms);
    };
    /** When the agent logged a line (its own clock, seconds since the epoch). */
    const loggedAt = (log: string, msg: string) => {
      const line = log.split('\n').find((l) => l.includes(msg));
      const ms = /"time":(\d+)/.exec(line ?? '')?.[1];
      return ms === undefined ? undefined : Number(ms) / 1000;
    };
    const viewDevices = () => nodeMounts().filter((m) => m.mountpoint === viewDir && m.fstype === 'fuse.lxcfs').map((m) => m.device);
    const newcomerPod = () => {
      const r = k.try(['-n', system, 'get', 'pod', newcomer, '-o', 'json']);
      return r.status === 0 ? JSON.parse(r.stdout) as PodStatus : undefined;
    };
    const newcomerAlive = () => {
      const c = newcomerPod()?.status.containerStatuses?.find((s) => s.name === 'agent');
      if (c?.state?.terminated) throw new Error(`the newcomer's agent ended: ${JSON.stringify(c.state.terminated)}\n${logsOf(newcomer)}`);
    };
    /** Reads in the work pod across one event; 0 failed reads and 0 host values, or the step fails. */
    const across = async (what: string, event: () => Promise<void>) => {
      const reader = stoppablePodReader(node!.kubeconfig, ns, 'work', 300, memTotalKb);
      try {
        await new Promise((r) => setTimeout(r, 3000));
        const started = Date.now() / 1000;
        await event();
        await new Promise((r) => setTimeout(r, 2000));
        const result = await reader.stop();
        t.diagnostic(`${what}: ${result.ok} good reads, ${result.wrong} of the host's file, ${result.errors} failed` +
          (result.transitions.length > 0 ? `; changes: ${result.transitions.map((x) => `${x.state}@+${(x.at - started).toFixed(2)}s`).join(' ')}` : ''));
        assert.equal(result.errors, 0, `${what}: no failed read: ${JSON.stringify(result.transitions)}`);
        assert.equal(result.wrong, 0, `${what}: no read of the host's file: ${JSON.stringify(result.transitions)}`);
        assert.ok(result.ok > 100, `${what}: the reader kept reading (${result.ok} reads)`);
      } finally {
        await reader.stop().catch(() => undefined);
      }
    };

    const old = await agentReady(30_000);
    const oldRestarts = old.status.containerStatuses!.find((c) => c.name === 'agent')!.restartCount;
    const devices = viewDevices();
    assert.equal(devices.length, 1, `one view mounted at ${viewDir} on the node: ${devices.join(' ')}`);

    interface Template {
      metadata: { annotations?: Record<string, string> };
      spec: Record<string, unknown> & { containers: { name: string; args?: string[] }[] };
    }
    const ds = k.json<{ spec: { template: Template } }>(['-n', system, 'get', 'daemonset', 'lxcfs-ts-agent']);
    const spec = structuredClone(ds.spec.template.spec);
    const agent = spec.containers.find((c) => c.name === 'agent')!;
    const args = agent.args ?? [];
    const dsWaits = args.some((a, i) => a === '--after-handover=wait' || (a === '--after-handover' && args[i + 1] === 'wait'));
    if (!dsWaits) agent.args = [...args.slice(0, -1), '--after-handover', 'wait', ...args.slice(-1)];
    t.diagnostic(`the DaemonSet's agent ${dsWaits ? 'waits' : 'does not wait'} after handing over (${args.join(' ')})`);
    const manifest = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: newcomer,
        namespace: system,
        // Not the DaemonSet's selector: it would adopt the pod (and remove one of two on the node).
        labels: { 'app.kubernetes.io/name': 'lxcfs-ts', 'app.kubernetes.io/component': 'agent-newcomer' },
        annotations: ds.spec.template.metadata.annotations ?? {},
      },
      // Never restarted: a newcomer that ends is a failure to see, not to retry.
      spec: { ...spec, nodeName: (old as PodStatus & { spec: { nodeName: string } }).spec.nodeName, restartPolicy: 'Never' },
    });

    const oldLogs = followLogs(node!.kubeconfig, system, old.metadata.name);
    let newcomerLogs: { stop(): string } | undefined;
    try {
      // 1. The newcomer takes the connection over from the DaemonSet's pod.
      await across('newcomer takes over from the DaemonSet\'s pod', async () => {
        const created = performance.now();
        k(['apply', '-f', '-'], manifest);
        const ms = await eventually('the newcomer serving alone', () => {
          newcomerAlive();
          return takeoverMsIn(logsOf(newcomer));
        }, 120_000);
        t.diagnostic(`newcomer: takeoverMs ${ms} (its ask to serving alone); pod created to serving alone: ${seconds(performance.now() - created)}`);
        await eventually('the DaemonSet\'s agent to say it handed over', () => (oldLogs.text().includes(handedOver) ? true : undefined), 30_000);
        if (dsWaits) {
          await eventually('the DaemonSet\'s agent waiting for SIGTERM', () =>
            (oldLogs.text().includes('handed over: waiting for SIGTERM') ? true : undefined), 30_000);
        } else {
          // It exits; the kubelet restarts its container, which takes the view back from the newcomer.
          await eventually('the DaemonSet\'s agent exiting after the handover', () =>
            (oldLogs.text().includes('handed over: exiting') ? true : undefined), 30_000);
          await eventually('the restarted DaemonSet agent to take the view back', () => {
            const p = agentPod().find((a) => a.metadata.name === old.metadata.name);
            const restarted = (p?.status.containerStatuses?.find((c) => c.name === 'agent')?.restartCount ?? 0) > oldRestarts;
            const tookBack = takeoverMsIn(logsOf(old.metadata.name)) !== undefined && logsOf(newcomer).includes(handedOver);
            return restarted && tookBack ? true : undefined;
          }, 120_000);
          t.diagnostic(`the DaemonSet's restarted agent took the view back: takeoverMs ${takeoverMsIn(logsOf(old.metadata.name))}`);
        }
      });
      assert.deepEqual(viewDevices(), devices, 'the same one mount serves (nothing unmounted, nothing mounted over it)');
      assert.doesNotMatch(logsOf(newcomer), repairs, 'no container needed a repair');
      newcomerAlive();

      // 2. The DaemonSet's pod deleted (without surge, its replacement comes once it is gone): it
      // stops without unmounting, and the replacement takes the connection over from the newcomer.
      if (dsWaits) {
        await across('the DaemonSet\'s pod replaced, its new pod takes over from the newcomer', async () => {
          const deleted = performance.now();
          const deletedAt = Date.now() / 1000;
          k(['-n', system, 'delete', 'pod', old.metadata.name, '--wait=false']);
          const next = await eventually('the DaemonSet\'s new pod serving alone', () => {
            newcomerAlive();
            const p = agentPod().find((a) => a.metadata.name !== old.metadata.name);
            const ms = p ? takeoverMsIn(logsOf(p.metadata.name)) : undefined;
            return p && ms !== undefined ? { name: p.metadata.name, ms } : undefined;
          }, 180_000);
          t.diagnostic(`the DaemonSet's new pod ${next.name}: takeoverMs ${next.ms}; serving alone ${seconds(performance.now() - deleted)} after the delete`);
          await eventually('the newcomer to say it handed over and waits', () => {
            const log = logsOf(newcomer);
            return log.includes(handedOver) && log.includes('handed over: waiting for SIGTERM') ? true : undefined;
          }, 30_000);
          await eventually('the old DaemonSet agent stopped without unmounting', () =>
            (oldLogs.text().includes(stoppedHandedOver) ? true : undefined), 30_000);
          assert.doesNotMatch(oldLogs.text(), /planned stop|stopping: unmounting/, 'the old agent neither unbound nor unmounted anything');
          const replacement = await agentReady(120_000);
          // Without surge the DaemonSet makes the new pod only once the old one is gone.
          const createdAt = Date.parse(replacement.metadata.creationTimestamp ?? '') / 1000;
          t.diagnostic(`the old DaemonSet pod logged its stop +${(loggedAt(oldLogs.text(), stoppedHandedOver)! - deletedAt).toFixed(1)} s ` +
            `after the delete; its replacement was created +${(createdAt - deletedAt).toFixed(0)} s after it`);
        });
        assert.deepEqual(viewDevices(), devices, 'still the same one mount');
      } else {
        t.diagnostic('the DaemonSet\'s agent serves again (its restarted container took the view back): its pod is deleted in step 4');
      }

      // 3. The newcomer, which has handed over, deleted: its SIGTERM changes nothing.
      await across('the newcomer deleted', async () => {
        const follower = followLogs(node!.kubeconfig, system, newcomer);
        newcomerLogs = follower;
        // Following before the delete: the pod's last lines would be gone with it.
        await eventually('the newcomer\'s log followed', () => (follower.text().includes(serving) ? true : undefined), 20_000);
        const deletedAt = Date.now() / 1000;
        k(['-n', system, 'delete', 'pod', newcomer, '--wait=false']);
        await eventually('the newcomer pod gone', () => (newcomerPod() === undefined ? true : undefined), 90_000);
        const log = follower.stop();
        t.diagnostic(`the newcomer logged its stop +${((loggedAt(log, stoppedHandedOver) ?? NaN) - deletedAt).toFixed(1)} s ` +
          `after the delete; its pod was gone +${(Date.now() / 1000 - deletedAt).toFixed(1)} s after it`);
        assert.ok(log.includes(stoppedHandedOver), `the newcomer stopped without unmounting:\n${log}`);
        assert.doesNotMatch(log, /planned stop|stopping: unmounting/, 'the newcomer neither unbound nor unmounted anything');
      });
      assert.deepEqual(viewDevices(), devices, 'still the same one mount');
      const agentNow = await agentReady(30_000);
      assert.doesNotMatch(logsOf(agentNow.metadata.name), repairs, 'no container needed a repair');
    } finally {
      oldLogs.stop();
      newcomerLogs?.stop();
      k.try(['-n', system, 'delete', 'pod', newcomer, '--ignore-not-found', '--wait=false']);
    }
  });

  it('4. the agent pod deleted: the reader recovers by itself', async (t: TestContext) => {
    const old = (await agentReady(30_000)).metadata.name;
    // Reads until the view has been back for 3 s (at most 2 minutes).
    const reader = podReader(node!.kubeconfig, ns, 'work', 120, memTotalKb, 3);
    await new Promise((r) => setTimeout(r, 3000));
    const deletedAt = Date.now() / 1000;
    agentDeletedAt = deletedAt;
    // What the old agent logs while it stops is the only account of a stop that went wrong.
    const oldLogs = followLogs(node!.kubeconfig, system, old);
    k(['-n', system, 'delete', 'pod', old, '--wait=false']);
    const replaced = await eventually('a new agent ready', () => {
      const p = agentPod().find((a) => a.metadata.name !== old && ready(a));
      return p ? { at: Date.now() / 1000, pod: p } : undefined;
    }, 120_000);
    const result = await reader;
    const stopLog = oldLogs.stop();
    const firstBad = result.transitions.find((x) => x.state !== 'ok');
    const last = result.transitions.at(-1);
    agentReadyAgainAt = replaced.at;
    const created = Date.parse(replaced.pod.metadata.creationTimestamp ?? '') / 1000;
    t.diagnostic(`agent replaced: new pod created ${(created - deletedAt).toFixed(0)} s and ready ` +
      `${(replaced.at - deletedAt).toFixed(1)} s after the delete`);
    t.diagnostic(`reads: ${result.ok} good, ${result.wrong} of the host's file, ${result.errors} failed; ` +
      `changes: ${result.transitions.map((x) => `${x.state}@+${(x.at - deletedAt).toFixed(2)}s`).join(' ')}`);
    // The default install stops agents with --unbind-on-stop: the host's file while no agent
    // runs, never an error.
    assert.equal(result.errors, 0, `no failed read: ${JSON.stringify(result.transitions)}\nthe old agent's log:\n${stopLog}`);
    assert.ok(firstBad, 'the reader saw the agent go (the host\'s file while it was away)');
    assert.equal(last?.state, 'ok', `the reader sees the view again by itself: ${JSON.stringify(result.transitions)}`);
    t.diagnostic(`reader without the view for ${(last.at - firstBad.at).toFixed(2)} s; ` +
      `view back ${(last.at - deletedAt).toFixed(2)} s after the delete; the new agent's readiness ` +
      `probe passed at +${(replaced.at - deletedAt).toFixed(1)} s (it serves before the probe's next period)`);
  });

  it('4b. the syscall view across that replacement: what sysinfo(2) returned meanwhile', async (t: TestContext) => {
    // bb's loop ran through step 4. Its listener was held by the old agent's processes: when they
    // ended, the kernel answers the loop's sysinfo(2) with ENOSYS, and busybox free (which does
    // not check the result) prints whatever was in its buffer. A process started afterwards
    // (kubectl exec) gets a new listener from runc, and the new agent serves it.
    const logged = () => k(['-n', sysinfoNs, 'logs', 'bb', '--timestamps']).split('\n').flatMap((line) => {
      const m = /^(\S+) total (\S*)$/.exec(line);
      return m ? [{ at: Date.parse(m[1]!) / 1000, total: m[2]! }] : [];
    });
    const settled = agentReadyAgainAt + 2;
    // Ten lines (two seconds) of the loop after the new agent settled.
    const lines = await eventually('bb\'s loop after the replacement', () => {
      const all = logged();
      return all.filter((l) => l.at > settled).length >= 10 ? all : undefined;
    }, 30_000);
    const before = lines.filter((l) => l.at < agentDeletedAt - 1);
    const after = lines.filter((l) => l.at > settled);
    const tally = (list: typeof lines) => {
      const counts = new Map<string, number>();
      for (const l of list) {
        const kind = l.total === '256' ? 'limit' : Number(l.total) === hostMemMiB() ? 'host' : `other(${l.total})`;
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      }
      return [...counts].map(([kind, n]) => `${kind} ${n}`).join(', ');
    };
    t.diagnostic(`bb's loop before the agent pod was deleted: ${tally(before)}; after the new agent was ready: ${tally(after)}`);
    assert.ok(before.length > 10 && before.every((l) => l.total === '256'), 'served before the replacement');
    assert.ok(after.every((l) => l.total !== '256'),
      'the loop\'s listener died with the old agent (docs/syscall-view.md: processes started before a replacement are not served)');
    // busybox free mixes sysinfo(2) with /proc/meminfo: wait for bb's files to be re-bound first
    // (the new agent repairs containers one after another), then start a process.
    const filesBack = await eventually('bb\'s /proc/meminfo to be its view again', () =>
      /^MemTotal:\s+262144 kB$/m.test(k(['-n', sysinfoNs, 'exec', 'bb', '--', 'cat', '/proc/meminfo'])) ? Date.now() / 1000 : undefined, 60_000);
    t.diagnostic(`bb's files were its view again ${(filesBack - agentDeletedAt).toFixed(1)} s after the agent pod was deleted`);
    const fresh = k(['-n', sysinfoNs, 'exec', 'bb', '--', 'free', '-m']);
    assert.match(fresh, /^Mem:\s+256\s/m, 'a process started after the replacement is served by the new agent');
    k(['delete', 'namespace', sysinfoNs, '--wait=false']);
    k(['-n', ns, 'delete', 'pod', 'bb-plain', '--wait=false']);
  });

  it('5. node restart with workloads starting before the agent: no directory for a file, no crash-loop', async (t: TestContext) => {
    // A pod that checks its view when it starts and fails otherwise, as programs that size
    // themselves at start-up would: it would crash-loop if started without the view.
    const strict = 'grep -q "^MemTotal: *262144 kB" /proc/meminfo && test -f /proc/meminfo || exit 1; exec sleep infinity';
    k(['apply', '-f', '-'], workload('strict', ['sh', '-c', strict]));
    await eventually('pod strict running', () => (ready(pod('strict')) ? true : undefined), 60_000);

    // The agent's image leaves the node (as after a reboot that lost it, or a slow registry),
    // so that the workloads certainly start before the agent is back.
    const ctr = (args: string[]) => spawnSync('ctr', ['--address', `${stateDir}/node/run/containerd/containerd.sock`,
      '--namespace', 'k8s.io', ...args], { encoding: 'utf8' });
    assert.equal(ctr(['images', 'rm', 'docker.io/library/lxcfs-ts:dev']).status, 0);
    const stop = kubeEnv(['node-stop'], 120_000);
    assert.equal(stop.status, 0, stop.stderr);
    const restartedAt = Date.now();
    const start = kubeEnv(['node-start'], 180_000);
    assert.equal(start.status, 0, start.stderr);
    node!.nsPid = currentNodeNsPid();
    // The restarted node's mount namespace is a new copy of the machine's mounts: other work's
    // fuse.lxcfs mounts made since the first copy are not this install's either.
    for (const m of nodeMounts()) if (m.fstype === 'fuse.lxcfs' && m.mountpoint !== viewDir) foreign.add(m.mountpoint);
    t.diagnostic(`node restarted and Ready in ${seconds(Date.now() - restartedAt)}`);
    assert.deepEqual(installMounts(), [], 'no view survives the restart');

    // The workloads wait for the view's files instead of starting without them.
    await eventually('both workloads waiting for the view', () => {
      const events = k.json<{ items: KubeEvent[] }>(['-n', ns, 'get', 'events']).items.filter((e) => e.reason === 'FailedMount' && Date.parse(e.lastTimestamp) >= restartedAt - 1000 &&
        e.message.includes(viewDir));
      const waiting = new Set(events.map((e) => e.involvedObject.name));
      return waiting.has('work') && waiting.has('strict') ? true : undefined;
    }, 90_000);
    await new Promise((r) => setTimeout(r, 3000));
    for (const name of ['work', 'strict']) assert.equal(ready(pod(name)), false, `${name} does not run without the view`);
    assert.deepEqual(underMountpoint(), [], 'nothing was created under the view\'s mountpoint while it was absent');

    const importedAt = Date.now();
    const image = kubeEnv(['image', 'app'], 300_000);
    assert.equal(image.status, 0, image.stderr);
    await agentReady(120_000);
    const agentUp = Date.now();
    await eventually('the workloads running', () => (['work', 'strict'].every((n) => ready(pod(n))) ? true : undefined), 180_000);
    t.diagnostic(`image back to agent ready: ${seconds(agentUp - importedAt)}; ` +
      `agent ready to workloads running: ${seconds(Date.now() - agentUp)}`);

    for (const name of ['work', 'strict']) {
      const p = pod(name);
      const c = p.status.containerStatuses![0]!;
      t.diagnostic(`${name}: restarts ${c.restartCount}`);
      assert.notEqual(c.state?.waiting?.reason, 'CrashLoopBackOff');
      const checks = injected.map((f) => `test -f ${f} && ! test -d ${f} || echo "not a file: ${f}"`).join('; ');
      assert.equal(exec(name, checks).trim(), '', `${name}: every view file is a file`);
      assert.match(exec(name, 'cat /proc/meminfo'), /^MemTotal:\s+262144 kB$/m, `${name} sees the view`);
      assert.equal(exec(name, 'cat /sys/devices/system/cpu/online').trim(), '0');
    }
    assert.deepEqual(underMountpoint(), [], 'nothing under the view\'s mountpoint on the node\'s disk');
  });

  it('6. uninstall leaves the node clean', async (t: TestContext) => {
    const started = performance.now();
    k(['delete', '-k', overlay, '--wait=false']);
    // The agent's and the webhook's pods gone (the namespace itself follows later: the namespace
    // controller waits out the pods' grace period before it looks again).
    await eventually('the install\'s pods gone', () => {
      const left = k.try(['-n', system, 'get', 'pods', '-o', 'name']);
      return left.status !== 0 || left.stdout.trim() === '' ? true : undefined;
    }, 120_000);
    t.diagnostic(`uninstalled in ${seconds(performance.now() - started)}`);
    assert.deepEqual(installMounts(), [], 'no lxcfs mount of the install on the node');
    for (const name of ['work', 'strict']) {
      const c = pod(name).status.containerStatuses![0]!;
      for (const pid of containerPids(c.containerID!)) {
        const stale = mounts(`/proc/${pid}/mountinfo`).filter((m) => m.fstype === 'fuse.lxcfs');
        assert.deepEqual(stale, [], `${name} (pid ${pid}) keeps no bind of the view`);
      }
      assert.match(exec(name, 'cat /proc/meminfo'), /^MemTotal:/m, `${name} reads /proc/meminfo without an error`);
    }
    const left = existsSync(`${node!.varLib}/lxcfs-ts`) ? spawnSync('find', [`${node!.varLib}/lxcfs-ts`, '-mindepth', '1'],
      { encoding: 'utf8' }).stdout.trim().split('\n').map((p) => p.replace(node!.varLib, '/var/lib')) : [];
    t.diagnostic(`left on the node's disk (hostPath directories are never removed by Kubernetes): ${left.join(' ') || 'nothing'}`);
    k(['delete', 'namespace', ns, '--wait=false']);
  });

  it('6b. installs with Helm in a namespace of its own: pods get the view; helm uninstall leaves none broken', async (t: TestContext) => {
    // The chart's README command, with the image built on the machine (never pulled), into
    // another namespace than deploy/'s; the PodDisruptionBudget comes as policy/v1beta1 on 1.20,
    // which has no DaemonSet surge either (the README's values for such clusters).
    const release = 'lxcfs-ts-chart';
    const apps = `${ns}-helm`;
    const h = (args: string[]) => helm(args, node!.kubeconfig);
    const started = performance.now();
    h(['install', 'lxcfs-ts', chartDir, '-n', release, '--create-namespace',
      '--set', 'image.tag=dev', '--set', 'image.pullPolicy=Never', ...(hasDaemonSetSurge(k) ? [] : helmArgsWithoutSurge)]);
    const agentPods = () =>
      k.json<{ items: PodStatus[] }>(['-n', release, 'get', 'pods', '-l', 'app.kubernetes.io/component=agent']).items;
    await eventually('the chart\'s agent ready', () => (agentPods().some((p) => ready(p)) ? true : undefined), 180_000);
    await eventually('the chart\'s webhook replicas available', () => {
      const d = k.json<{ spec: { replicas: number }; status: { availableReplicas?: number } }>(
        ['-n', release, 'get', 'deployment', 'lxcfs-ts-webhook'],
      );
      return d.status.availableReplicas === d.spec.replicas ? true : undefined;
    }, 120_000);
    await eventually('the caBundle written by the chart\'s webhook', () => {
      const mwc = k.json<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
        ['get', 'mutatingwebhookconfiguration', 'lxcfs-ts'],
      );
      return mwc.webhooks.every((w) => (w.clientConfig.caBundle ?? '') !== '') ? true : undefined;
    }, 60_000);
    t.diagnostic(`helm install to ready: ${seconds(performance.now() - started)}`);
    assert.equal(nodeMounts().find((m) => m.mountpoint === viewDir)?.fstype, 'fuse.lxcfs', 'the chart\'s agent serves the view');

    k(['create', 'namespace', apps]);
    k(['label', 'namespace', apps, 'lxcfs-ts.io/inject=enabled']);
    await eventually('the namespace\'s service account token', () =>
      k(['-n', apps, 'get', 'sa', 'default', '-o', 'jsonpath={.secrets[0].name}']).trim() || undefined, 60_000);
    const spec = JSON.parse(workload('work', ['sleep', 'infinity'])) as { metadata: { namespace: string } };
    spec.metadata.namespace = apps;
    k(['apply', '-f', '-'], JSON.stringify(spec));
    const appPod = () => k.json<PodStatus>(['-n', apps, 'get', 'pod', 'work']);
    await eventually('pod work running', () => (ready(appPod()) ? true : undefined), 60_000);
    assert.equal(appPod().metadata.annotations?.['lxcfs-ts.io/status'], 'mutated');
    const read = (file: string) => k(['-n', apps, 'exec', 'work', '--', 'cat', file]);
    assert.match(read('/proc/meminfo'), /^MemTotal:\s+262144 kB$/m, 'the pod sees its limit');

    const uninstalled = performance.now();
    h(['uninstall', 'lxcfs-ts', '-n', release]);
    await eventually('the release\'s pods gone', () => {
      const left = k.try(['-n', release, 'get', 'pods', '-o', 'name']);
      return left.status !== 0 || left.stdout.trim() === '' ? true : undefined;
    }, 120_000);
    t.diagnostic(`helm uninstall until its pods are gone: ${seconds(performance.now() - uninstalled)}`);
    assert.deepEqual(installMounts(), [], 'no lxcfs mount left on the node');
    const c = appPod().status.containerStatuses![0]!;
    for (const pid of containerPids(c.containerID!)) {
      const stale = mounts(`/proc/${pid}/mountinfo`).filter((m) => m.fstype === 'fuse.lxcfs');
      assert.deepEqual(stale, [], `work (pid ${pid}) keeps no bind of the view`);
    }
    assert.match(read('/proc/meminfo'), /^MemTotal:/m, 'the pod reads /proc/meminfo (the host\'s) without an error');
    k(['delete', 'namespace', apps, release, '--wait=false']);
  });

  it('7. the node\'s teardown leaves the machine as it was', (t: TestContext) => {
    if (node!.bringUpSeconds === 0) {
      t.skip('the node was already running; it is not this test\'s to stop');
      return;
    }
    const started = performance.now();
    released = true;
    node!.release();
    t.diagnostic(`kube-env down: ${seconds(performance.now() - started)}`);
    const final = hostState(stateDir);
    assert.deepEqual(final.processes, [], 'no node process left');
    assert.deepEqual(final.mounts, initial.mounts, 'mounts as before');
    assert.deepEqual(final.links, initial.links, 'network links as before');
    assert.equal(final.nftables, initial.nftables, 'firewall rules as before');
    assert.deepEqual(final.sysctls, initial.sysctls, 'sysctls as before');
    assert.deepEqual(final.cgroups, initial.cgroups, 'cgroups as before');
    assert.deepEqual(final.paths, initial.paths, 'no directory left in the node\'s places');
  });
});
