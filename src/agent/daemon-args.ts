/**
 * The daemon's command line: LXCFS's flags (so existing units and manifests work unchanged)
 * plus a few of our own.
 */
import { parseArgs } from 'node:util';
import { type LogLevel, logLevels } from '../common/log.js';
import { type UptimeMode, uptimeModes } from '../common/options.js';
import { parseListenAddress } from './health-server.js';

export const DEFAULT_MOUNTPOINT = '/var/lib/lxcfs';
export const DEFAULT_HEALTH_PORT = 9716;
export const DEFAULT_REPAIR_INTERVAL_S = 5;

export interface DaemonArgs {
  mountpoint: string;
  enableLoadavg: boolean;
  enableCfs: boolean;
  disableSwap: boolean;
  /** What /proc/uptime shows a container outside a time namespace (`--uptime`). */
  uptime: UptimeMode;
  pidfile: string | null;
  allowNonEmpty: boolean;
  entryTtlMs: number;
  attrTtlMs: number;
  logLevel: LogLevel;
  threads: number;
  requestTimeoutSec: number;
  deadlineMs: number;
  healthAddress: { host: string; port: number } | null;
  /** Repair containers' stale binds at start and every repairIntervalMs (0: at start only). */
  repair: boolean;
  repairIntervalMs: number;
  /** Make the mountpoint's parent directory a shared mount if it is not on one. */
  shareParent: boolean;
  /** On SIGTERM/SIGINT, detach containers' binds of the view (they read the host's files) and record them for the next start. */
  unbindOnStop: boolean;
  /** Unix socket that receives seccomp listeners for the syscall view (sysinfo(2)), or null: off. */
  sysinfoSocket: string | null;
  /** The kubelet's seccomp directory, where the Localhost profile for the syscall view is written. */
  seccompProfileDir: string | null;
  /** Take the live connection over from an agent that serves the mountpoint, and offer ours (false: neither). */
  takeover: boolean;
  /** How long that agent has to answer before this one mounts a new view over its mountpoint. */
  takeoverTimeoutMs: number;
  /** After handing the connection over: exit (0), or wait for SIGTERM (a DaemonSet would restart an exited agent). */
  afterHandover: AfterHandover;
}

export const afterHandoverModes = ['exit', 'wait'] as const;
export type AfterHandover = (typeof afterHandoverModes)[number];
export const DEFAULT_TAKEOVER_TIMEOUT_S = 5;

export type ParsedDaemonArgs = { kind: 'run'; args: DaemonArgs } | { kind: 'help' } | { kind: 'version' };

export class UsageError extends Error {}

export const daemonUsage = `Usage: lxcfs-ts [options] [MOUNTPOINT]
       lxcfs-ts run [options] -- CMD [ARGS...]     run CMD in a sandbox that sees the view (see run --help)
       lxcfs-ts repair [MOUNTPOINT]                repair containers' stale binds now (see repair --help)

Serves container-aware /proc and /sys files over FUSE at MOUNTPOINT (default ${DEFAULT_MOUNTPOINT}),
for binding over a container's /proc/meminfo, /proc/cpuinfo, ... Runs in the foreground; stop it
with SIGTERM or SIGINT (the mount is removed).

Options (same as LXCFS):
  -f, --foreground          stay in the foreground (always the case; accepted for compatibility)
  -d, --debug               log at debug level
  -l, --enable-loadavg      per-container /proc/loadavg (counts each container's runnable tasks)
      --enable-cfs          the CPU count also follows the CFS quota (ceil(quota/period)), not only the cpuset
      --enable-pidfd        accepted for compatibility (pid reuse is always guarded against)
  -u, --disable-swap        containers see no swap
  -o OPTS                   comma-separated mount options: nonempty (mount over a non-empty directory),
                            entry_timeout=SECONDS, attr_timeout=SECONDS; allow_other and direct_io are
                            always on and accepted
  -p, --pidfile FILE        write the pid of this (top-level) process to FILE; removed on exit
  -h, --help                show this help
  -v, --version             show the version

Options of lxcfs-ts:
      --log-level LEVEL     ${logLevels.join('|')} (default info); logs are JSON lines on stderr
      --threads N           request worker threads (default 2)
      --request-timeout S   on kernels with FUSE request timeouts (6.14+), abort the connection when a
                            request stays unanswered for S seconds (default 0: off; 0 disables)
      --uptime MODE         what /proc/uptime (and sysinfo's uptime) shows a container that has no
                            time namespace (Kubernetes): container (default), its age, from its PID 1's
                            start; host, the host's uptime as the kernel shows it (ps ELAPSED then
                            right). btime stays the host's boot in both, so ps START is right. In a
                            time namespace (lxcfs-ts run) both show the namespace's own uptime
      --deadline-ms MS      a request not answered within MS milliseconds (a stuck cgroup read) gets
                            the host's content instead, and its thread is replaced (default 1000)
      --health-address A    HOST:PORT serving /healthz, /readyz and /metrics (Prometheus), or off
                            (default 127.0.0.1:${DEFAULT_HEALTH_PORT}); if the port is taken, serving goes on without it

Containers (see docs/resilience.md):
      --repair-interval S   look for containers whose binds of the view come from a dead connection
                            (a crashed or replaced daemon) every S seconds and re-bind them to this
                            view; it is also done at start (default ${DEFAULT_REPAIR_INTERVAL_S}; 0: at start only)
      --no-repair           never change mounts in containers' mount namespaces
      --no-share-parent     do not make the mountpoint's parent directory a shared mount (by default
                            it is made one if it is not on one, so containers that have the parent
                            directory with rslave propagation see a restarted view)
      --unbind-on-stop      planned stop (rollouts): on SIGTERM or SIGINT, first detach containers'
                            binds of the view, so they read the host's /proc files instead of failing
                            while no daemon runs; the next start binds them again

The syscall view (see docs/syscall-view.md; off unless a socket is given):
      --sysinfo-socket PATH answer sysinfo(2) (busybox free/uptime, getloadavg(), sysconf page counts)
                            from the same container view as the files, for containers whose seccomp
                            listener is sent to PATH (runc's listenerPath; lxcfs-ts run does it itself)
      --seccomp-profile-dir DIR
                            Kubernetes: write the Localhost seccomp profile lxcfs-ts/sysinfo.json
                            (RuntimeDefault's rules, with sysinfo sent to PATH) into the kubelet's
                            seccomp directory DIR (normally /var/lib/kubelet/seccomp), for pods the
                            webhook gives the syscall view (its --sysinfo)

Upgrades (see docs/resilience.md#takeover):
      --no-takeover         refuse to start on a mountpoint a live agent serves (by default the new
                            agent takes the live connection over from it: containers notice nothing),
                            and offer no handover socket to a later one (it is then refused too)
      --takeover-timeout S  how long the live agent has to answer (default ${DEFAULT_TAKEOVER_TIMEOUT_S}); if it does not,
                            a new view is mounted over its mountpoint and its containers are repaired
                            onto it once it stops
      --after-handover MODE what an agent does once a newcomer took its connection over: exit (default,
                            code 0) or wait (until SIGTERM, then exit 0 without unmounting: for a
                            DaemonSet, which would restart an agent that exits)
`;

export function parseDaemonArgs(argv: string[]): ParsedDaemonArgs {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  if (positionals.length > 1)
    throw new UsageError(`expected at most one mountpoint, got: ${positionals.join(' ')}`);
  if ((values.o?.length ?? 0) > 1)
    throw new UsageError('-o may be given only once (separate options with commas)');

  const args: DaemonArgs = {
    mountpoint: positionals[0] ?? DEFAULT_MOUNTPOINT,
    enableLoadavg: values['enable-loadavg'] ?? false,
    enableCfs: values['enable-cfs'] ?? false,
    disableSwap: values['disable-swap'] ?? false,
    uptime: 'container',
    pidfile: values.pidfile ?? null,
    allowNonEmpty: false,
    entryTtlMs: 1000,
    attrTtlMs: 1000,
    logLevel: values.debug ? 'debug' : 'info',
    threads: 2,
    requestTimeoutSec: 0,
    deadlineMs: 1000,
    healthAddress: { host: '127.0.0.1', port: DEFAULT_HEALTH_PORT },
    repair: !(values['no-repair'] ?? false),
    repairIntervalMs: DEFAULT_REPAIR_INTERVAL_S * 1000,
    shareParent: !(values['no-share-parent'] ?? false),
    unbindOnStop: values['unbind-on-stop'] ?? false,
    sysinfoSocket: null,
    seccompProfileDir: null,
    takeover: !(values['no-takeover'] ?? false),
    takeoverTimeoutMs: DEFAULT_TAKEOVER_TIMEOUT_S * 1000,
    afterHandover: 'exit',
  };
  for (const option of (values.o?.[0] ?? '').split(',').filter(Boolean)) applyMountOption(args, option);
  if (values['log-level'] !== undefined) {
    if (!logLevels.includes(values['log-level'] as LogLevel)) {
      throw new UsageError(`--log-level must be one of ${logLevels.join(', ')}`);
    }
    args.logLevel = values['log-level'] as LogLevel;
  }
  if (values.uptime !== undefined) {
    if (!uptimeModes.includes(values.uptime as UptimeMode)) {
      throw new UsageError(`--uptime must be one of ${uptimeModes.join(', ')}`);
    }
    args.uptime = values.uptime as UptimeMode;
  }
  if (values.threads !== undefined) args.threads = positiveInteger('--threads', values.threads, 1, 64);
  if (values['request-timeout'] !== undefined) {
    args.requestTimeoutSec = positiveInteger('--request-timeout', values['request-timeout'], 0, 65535);
  }
  if (values['deadline-ms'] !== undefined) {
    args.deadlineMs = positiveInteger('--deadline-ms', values['deadline-ms'], 10, 60_000);
  }
  if (values['repair-interval'] !== undefined) {
    args.repairIntervalMs = positiveInteger('--repair-interval', values['repair-interval'], 0, 86_400) * 1000;
  }
  if (values['takeover-timeout'] !== undefined) {
    args.takeoverTimeoutMs = positiveInteger('--takeover-timeout', values['takeover-timeout'], 1, 600) * 1000;
  }
  if (values['after-handover'] !== undefined) {
    if (!afterHandoverModes.includes(values['after-handover'] as AfterHandover)) {
      throw new UsageError(`--after-handover must be one of ${afterHandoverModes.join(', ')}`);
    }
    args.afterHandover = values['after-handover'] as AfterHandover;
  }
  if (values['health-address'] !== undefined) {
    try {
      args.healthAddress = parseListenAddress(values['health-address']);
    } catch (err) {
      throw new UsageError(`--health-address: ${(err as Error).message}`);
    }
  }
  if (values['sysinfo-socket'] !== undefined) {
    if (!values['sysinfo-socket'].startsWith('/')) throw new UsageError('--sysinfo-socket must be an absolute path');
    // sockaddr_un holds 108 bytes, the terminating NUL included.
    if (Buffer.byteLength(values['sysinfo-socket']) > 107) throw new UsageError('--sysinfo-socket: path longer than 107 bytes');
    args.sysinfoSocket = values['sysinfo-socket'];
  }
  if (values['seccomp-profile-dir'] !== undefined) {
    if (args.sysinfoSocket === null) {
      throw new UsageError('--seccomp-profile-dir needs --sysinfo-socket (the profile sends listeners there)');
    }
    if (!values['seccomp-profile-dir'].startsWith('/')) throw new UsageError('--seccomp-profile-dir must be an absolute path');
    args.seccompProfileDir = values['seccomp-profile-dir'];
  }
  return { kind: 'run', args };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      foreground: { type: 'boolean', short: 'f' },
      debug: { type: 'boolean', short: 'd' },
      'enable-loadavg': { type: 'boolean', short: 'l' },
      'enable-cfs': { type: 'boolean' },
      'enable-pidfd': { type: 'boolean' },
      'disable-swap': { type: 'boolean', short: 'u' },
      o: { type: 'string', short: 'o', multiple: true },
      pidfile: { type: 'string', short: 'p' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      'log-level': { type: 'string' },
      uptime: { type: 'string' },
      threads: { type: 'string' },
      'request-timeout': { type: 'string' },
      'deadline-ms': { type: 'string' },
      'health-address': { type: 'string' },
      'repair-interval': { type: 'string' },
      'no-repair': { type: 'boolean' },
      'no-share-parent': { type: 'boolean' },
      'unbind-on-stop': { type: 'boolean' },
      'sysinfo-socket': { type: 'string' },
      'seccomp-profile-dir': { type: 'string' },
      'no-takeover': { type: 'boolean' },
      'takeover-timeout': { type: 'string' },
      'after-handover': { type: 'string' },
      // LXCFS accepts -s (single-threaded, ignored since it is always multithreaded).
      s: { type: 'boolean', short: 's' },
    },
  });
}

function applyMountOption(args: DaemonArgs, option: string): void {
  const [name, value] = option.split('=', 2) as [string, string | undefined];
  switch (name) {
    case 'nonempty':
      args.allowNonEmpty = true;
      return;
    case 'allow_other':
    case 'direct_io':
      return;
    case 'entry_timeout':
      args.entryTtlMs = seconds(option, value);
      return;
    case 'attr_timeout':
      args.attrTtlMs = seconds(option, value);
      return;
    default:
      throw new UsageError(`unsupported mount option: ${option}`);
  }
}

function seconds(option: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || value === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`${option}: expected a number of seconds`);
  }
  return Math.round(n * 1000);
}

function positiveInteger(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}`);
  return n;
}
