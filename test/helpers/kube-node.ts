/**
 * A real one-node Kubernetes cluster for the node e2e tier (scripts/kube-env up --node): the
 * node's processes, what runs in its containers, and what it leaves on the machine.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { repoRoot } from './paths.js';

export interface KubeNode {
  kubeconfig: string;
  /** A process in the node's mount namespace (where containerd and the kubelet run). */
  nsPid: number;
  /** Where the node's /var/lib lives on this machine (its hostPath volumes are there). */
  varLib: string;
  /** Seconds `up --node` took (0 when the node was already running). */
  bringUpSeconds: number;
  /** Stops the node if this process started it. */
  release(): void;
}

export function kubeEnv(args: string[], timeoutMs: number) {
  return spawnSync(`${repoRoot}scripts/kube-env`, args, { encoding: 'utf8', timeout: timeoutMs });
}

function nodeEnv(): Pick<KubeNode, 'kubeconfig' | 'nsPid' | 'varLib'> {
  const env = kubeEnv(['env'], 10_000);
  const value = (name: string) => {
    const match = new RegExp(`export ${name}=(\\S+)`).exec(env.stdout);
    if (!match) throw new Error(`scripts/kube-env env printed no ${name}:\n${env.stdout}${env.stderr}`);
    return match[1]!;
  };
  return {
    kubeconfig: value('KUBECONFIG'),
    nsPid: Number(value('KUBE_ENV_NODE_PID')),
    varLib: `${value('KUBE_ENV_NODE_DIR')}/var-lib`,
  };
}

/** Reuses a running node (kube-env status --node) or brings one up, and stops it afterwards. */
export function acquireKubeNode(): KubeNode {
  const startedHere = kubeEnv(['status', '--node'], 10_000).status !== 0;
  let bringUpSeconds = 0;
  if (startedHere) {
    const started = performance.now();
    // A cold first run builds four Kubernetes binaries from source (several minutes).
    const up = kubeEnv(['up', '--node'], 40 * 60_000);
    if (up.status !== 0) throw new Error(`scripts/kube-env up --node failed:\n${up.stderr}`);
    bringUpSeconds = (performance.now() - started) / 1000;
  }
  return {
    ...nodeEnv(),
    bringUpSeconds,
    release() {
      if (startedHere) {
        const down = kubeEnv(['down'], 5 * 60_000);
        if (down.status !== 0) throw new Error(`scripts/kube-env down failed:\n${down.stderr}`);
      }
    },
  };
}

/** Refreshes the node's namespace pid after node-stop/node-start. */
export function currentNodeNsPid(): number {
  return nodeEnv().nsPid;
}

/** Every process in the node's pods (those on the host network share the machine's sockets). */
export function podProcessIds(): number[] {
  const found = spawnSync('find', ['/sys/fs/cgroup/pids/lxcfs-ts-node', '-name', 'cgroup.procs', '-exec', 'cat', '{}', '+'],
    { encoding: 'utf8' });
  return found.stdout.split('\n').filter(Boolean).map(Number);
}

/** The pids in a container's cgroup (found by its id under the node's cgroup tree). */
export function containerPids(containerId: string): number[] {
  const id = containerId.replace(/^[a-z]+:\/\//, '');
  const found = spawnSync('find', ['/sys/fs/cgroup/pids/', '-type', 'd', '-name', id], { encoding: 'utf8' });
  const dir = found.stdout.split('\n').find((l) => l.includes('/kubepods'));
  if (!dir) throw new Error(`no cgroup for container ${id}`);
  return readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** Mount points of a mountinfo file with their filesystem type and device (major:minor). */
export function mounts(mountinfoPath: string): { mountpoint: string; fstype: string; source: string; device: string }[] {
  return readFileSync(mountinfoPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const sep = fields.indexOf('-');
      return { mountpoint: fields[4]!, fstype: fields[sep + 1]!, source: fields[sep + 2]!, device: fields[2]! };
    });
}

export interface ReaderResult {
  ok: number;
  /** Reads that showed another MemTotal (the host's). */
  wrong: number;
  /** Reads that failed. */
  errors: number;
  /** Changes of state, with the pod's clock (seconds since the epoch). */
  transitions: { state: 'ok' | 'wrong' | 'error'; at: number; detail: string }[];
}

/**
 * Runs test/fixtures/node/reader.sh in a pod for `seconds`: /proc/meminfo read in a loop, each
 * read good only if it shows the expected MemTotal. With `settle`, it ends early once reads have
 * been good again for that many seconds after a bad one.
 */
export function podReader(kubeconfig: string, ns: string, pod: string, seconds: number, memTotalKb: number, settle?: number) {
  const script = readFileSync(`${repoRoot}test/fixtures/node/reader.sh`, 'utf8');
  return runReader(kubeconfig, ns, pod, script, [String(seconds), String(memTotalKb), ...(settle ? [String(settle)] : [])]);
}

/**
 * The same reader, for at most `seconds`, ended by stop(): its loop also ends once a file of its
 * own exists in the pod's /tmp (stop() creates it), and it then prints its totals as usual.
 */
export function stoppablePodReader(kubeconfig: string, ns: string, pod: string, seconds: number, memTotalKb: number) {
  const stopFile = `/tmp/lxcfs-ts-reader-stop-${process.pid}-${Date.now()}`;
  const loop = 'while [ "$(date +%s)" -lt "$end" ]; do';
  const fixture = readFileSync(`${repoRoot}test/fixtures/node/reader.sh`, 'utf8');
  if (!fixture.includes(loop)) throw new Error(`test/fixtures/node/reader.sh has no line ${loop}`);
  const script = fixture.replace(loop, `while [ "$(date +%s)" -lt "$end" ] && [ ! -e ${stopFile} ]; do`);
  const result = runReader(kubeconfig, ns, pod, script, [String(seconds), String(memTotalKb)]);
  return {
    result,
    stop(): Promise<ReaderResult> {
      spawnSync('kubectl', ['-n', ns, 'exec', pod, '--', 'touch', stopFile], {
        env: { ...process.env, KUBECONFIG: kubeconfig },
        timeout: 30_000,
      });
      return result;
    },
  };
}

function runReader(kubeconfig: string, ns: string, pod: string, script: string, args: string[]) {
  const child = spawn('kubectl', ['-n', ns, 'exec', '-i', pod, '--', 'sh', '-s', ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(script);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise<ReaderResult>((resolve, reject) => {
    child.on('close', (code) => {
      const total = /^total (\d+) (\d+) (\d+)$/m.exec(out);
      if (code !== 0 || !total) {
        reject(new Error(`reader in ${ns}/${pod} exited ${code}:\n${out}${err}`));
        return;
      }
      const transitions = [...out.matchAll(/^(ok|wrong|error) (\d+\.\d+) ?(.*)$/gm)].map((m) => ({
        state: m[1] as 'ok' | 'wrong' | 'error',
        at: Number(m[2]),
        detail: m[3] ?? '',
      }));
      resolve({ ok: Number(total[1]), wrong: Number(total[2]), errors: Number(total[3]), transitions });
    });
  });
}

/**
 * Follows a pod's logs (`kubectl logs -f`) from now on, so that what a pod printed while it was
 * being deleted can still be shown once it is gone. text() is what came so far; stop() ends the
 * follower and returns the text.
 */
export function followLogs(kubeconfig: string, ns: string, pod: string): { text(): string; stop(): string } {
  const child = spawn('kubectl', ['-n', ns, 'logs', '-f', '--timestamps', '--tail', '20', pod], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  return {
    text: () => text,
    stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return text;
    },
  };
}

/** What the node could leave on this machine, to compare before `up` and after `down`. */
export interface HostState {
  processes: string[];
  mounts: string[];
  links: string[];
  nftables: string;
  sysctls: Record<string, string>;
  cgroups: string[];
  paths: string[];
}

const nodePaths = [
  '/var/lib/kubelet',
  '/var/lib/containerd',
  '/var/lib/cni',
  '/var/lib/lxcfs-ts',
  '/var/log/pods',
  '/var/log/containers',
  '/run/containerd',
  '/run/netns',
  '/etc/kubernetes',
  '/usr/libexec/kubernetes',
  '/opt/cni',
  '/opt/containerd',
];
const sysctls = [
  'vm.overcommit_memory',
  'kernel.panic',
  'kernel.panic_on_oops',
  'net.ipv4.ip_forward',
  'net.bridge.bridge-nf-call-iptables',
];

function sysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
  } catch {
    return 'absent';
  }
}

/**
 * Processes of this node: the node's own programs (nobody else on the machine runs containerd or
 * a kubelet) and anything started with the node's state directory (the control plane; other work
 * on the machine may run an API server of its own).
 */
export function nodeProcessIds(stateDir: string): number[] {
  return nodeProcesses(stateDir).map((line) => Number(line.split(' ')[0]));
}

function nodeProcesses(stateDir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let exe = '';
    try {
      exe = readlinkSync(`/proc/${entry}/exe`);
    } catch {
      continue;
    }
    const line = cmdline(Number(entry));
    const ours = /\/(kubelet|containerd|containerd-shim-runc-v2|runc)$/.test(exe) || line.includes(stateDir) ||
      line.includes('scripts/lib/tcp-forward.mjs');
    if (ours) out.push(`${entry} ${line}`);
  }
  return out;
}

export function hostState(stateDir: string): HostState {
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!);
  const cgroupDirs: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    for (const name of ['lxcfs-ts-node', 'kubepods']) {
      if (existsSync(`/sys/fs/cgroup/${h}/${name}`)) cgroupDirs.push(`${h}/${name}`);
    }
  }
  return {
    processes: nodeProcesses(stateDir),
    // Other work on the machine mounts tmpfs and FUSE file systems of its own: only overlays,
    // network namespaces and anything in the node's places count.
    mounts: mounts('/proc/self/mountinfo')
      .filter((m) => ['overlay', 'nsfs'].includes(m.fstype) || [stateDir, ...nodePaths].some((p) => m.mountpoint.startsWith(p)))
      .map((m) => `${m.fstype} ${m.mountpoint}`)
      .sort(),
    links: links.sort(),
    nftables: spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout,
    sysctls: Object.fromEntries(sysctls.map((s) => [s, sysctl(s)])),
    cgroups: cgroupDirs.sort(),
    paths: [...nodePaths.filter((p) => existsSync(p)), ...(existsSync(stateDir) ? [stateDir] : [])],
  };
}
