/**
 * The command line of `lxcfs-ts run`: parsed into plain data, or rejected with a UsageError that
 * the command prints above the usage text (exit status 2). Nothing here looks at the host; limits
 * that depend on it (the host's CPUs, available controllers) are checked when the sandbox is built.
 */
import { resolve } from 'node:path';
import type { LogLevel } from '../common/log.js';
import { logLevels } from '../common/log.js';
import { type UptimeMode, uptimeModes } from '../common/options.js';
import { type CpuQuota, parseCpuList, parseCpus, parseSize, QuantityError } from './quantities.js';

export class UsageError extends Error {}

export interface RunOptions {
  /** `--memory`: the memory limit in bytes. */
  readonly memoryBytes?: number;
  /** `--memory-swap`: the limit on memory plus swap in bytes, or 'unlimited' (`-1`). */
  readonly memorySwap?: number | 'unlimited';
  /** `--cpus`: CFS bandwidth limit. */
  readonly cpuQuota?: CpuQuota;
  /** `--cpuset`: the host CPUs the sandbox may run on. */
  readonly cpuset?: readonly number[];
  /** `--view`: an already mounted view (absolute path); without it a private daemon is started. */
  readonly viewDir?: string;
  /** `--rootfs`: the directory that becomes CMD's root (absolute path). */
  readonly rootfs?: string;
  /** A new time namespace whose boot clock starts at the sandbox's start (`--no-timens` turns it off). */
  readonly timeNamespace: boolean;
  /** Serve sysinfo(2) in the sandbox through a seccomp listener (`--no-sysinfo` turns it off). */
  readonly sysinfo: boolean;
  /** `--uptime`: the private daemon's uptime mode (its default when absent). */
  readonly uptime?: UptimeMode;
  /** `--sysinfo-socket`: the sysinfo socket of the daemon given with `--view`. */
  readonly sysinfoSocket?: string;
  readonly logLevel: LogLevel;
  /** CMD and its arguments. */
  readonly command: readonly string[];
}

export type ParsedRunArgs = { readonly help: true } | { readonly help: false; readonly options: RunOptions };

export const runUsage = `Usage: lxcfs-ts run [OPTIONS] [--] CMD [ARGS...]

Runs CMD the way a container would: in a fresh cgroup with the given limits, in new mount, pid
and time namespaces with its own /proc (CMD is PID 1), with the container-aware view files bound
read-only over /proc/{cpuinfo,meminfo,stat,uptime,diskstats,swaps,loadavg,slabinfo,pressure/*}
and /sys/devices/system/cpu. Everything it set up is removed when CMD exits, also on Ctrl-C,
SIGTERM or failure. Needs root.

Options:
  -m, --memory SIZE        memory limit: bytes or a number with a unit, e.g. 256M, 1.5G, 512m
      --memory-swap SIZE   limit on memory PLUS swap, as in docker: equal to --memory means no
                           swap, -1 means unlimited swap; needs --memory. Without it the sandbox's
                           swap is limited only by the host
      --cpus DECIMAL       CPU bandwidth limit, e.g. 1 or 1.5 (CFS quota per 100 ms period)
      --cpuset LIST        host CPUs the sandbox may use, e.g. 0 or 0,2-3
      --view DIR           use the view already mounted at DIR (e.g. /var/lib/lxcfs) instead of
                           starting a private lxcfs-ts daemon for the duration of the run
      --rootfs DIR         run CMD with DIR as its root directory, like a container image; DIR
                           needs no shell and no mount binary (missing mountpoints are created)
      --no-timens          do not give CMD a time namespace whose uptime starts at 0
      --uptime MODE        the private daemon's --uptime: container (default) or host; decides
                           what /proc/uptime shows with --no-timens (see lxcfs-ts --help)
      --no-sysinfo         leave sysinfo(2) alone (busybox free/uptime, getloadavg() then show the
                           host); by default a seccomp filter sends it to the view daemon
      --sysinfo-socket P   with --view: the sysinfo socket of that daemon (its --sysinfo-socket);
                           without it, a sandbox on --view gets no syscall view
      --log-level LEVEL    debug, info, warn (default), error or silent
  -h, --help               show this help

Exit status: CMD's own; 128+N if CMD was killed by signal N; 126 if CMD cannot be executed,
127 if it is not found; 125 if the sandbox could not be set up; 2 for a bad command line.
`;

/** Docker refuses limits under 6 MiB: the runtime itself would be OOM-killed before CMD starts. */
const minMemoryBytes = 6 * 1024 * 1024;

type ValueFlag =
  | 'memory'
  | 'memory-swap'
  | 'cpus'
  | 'cpuset'
  | 'view'
  | 'rootfs'
  | 'log-level'
  | 'sysinfo-socket'
  | 'uptime';

const valueFlags: Record<string, ValueFlag> = {
  '-m': 'memory',
  '--memory': 'memory',
  '--memory-swap': 'memory-swap',
  '--cpus': 'cpus',
  '--cpuset': 'cpuset',
  '--cpuset-cpus': 'cpuset',
  '--view': 'view',
  '--rootfs': 'rootfs',
  '--log-level': 'log-level',
  '--sysinfo-socket': 'sysinfo-socket',
  '--uptime': 'uptime',
};

export function parseRunArgs(argv: readonly string[], cwd: string = process.cwd()): ParsedRunArgs {
  const values = new Map<ValueFlag, string>();
  let timeNamespace = true;
  let sysinfo = true;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '-h' || arg === '--help') return { help: true };
    if (arg === '--no-timens') {
      timeNamespace = false;
      continue;
    }
    if (arg === '--no-sysinfo') {
      sysinfo = false;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const eq = arg.indexOf('=');
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    const flag = valueFlags[name];
    if (!flag) throw new UsageError(`unknown option '${arg}'`);
    let value: string | undefined;
    if (eq > 0 && name !== arg) value = arg.slice(eq + 1);
    else {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`option '${name}' needs a value`);
    if (values.has(flag)) throw new UsageError(`option '${name}' given twice`);
    values.set(flag, value);
  }
  const command = argv.slice(i);
  if (command.length === 0 || command[0] === '') throw new UsageError('no command given (CMD)');
  try {
    return { help: false, options: { ...limitsFrom(values, cwd), timeNamespace, sysinfo, command } };
  } catch (err) {
    if (err instanceof QuantityError) throw new UsageError(err.message);
    throw err;
  }
}

function limitsFrom(
  values: Map<ValueFlag, string>,
  cwd: string,
): Omit<RunOptions, 'timeNamespace' | 'sysinfo' | 'command'> {
  const memoryText = values.get('memory');
  const memoryBytes = memoryText === undefined ? undefined : parseSize(memoryText);
  if (memoryBytes !== undefined && memoryBytes < minMemoryBytes) {
    throw new UsageError(`--memory ${memoryText}: the minimum is 6M`);
  }
  const swapText = values.get('memory-swap');
  let memorySwap: number | 'unlimited' | undefined;
  if (swapText !== undefined) {
    if (memoryBytes === undefined)
      throw new UsageError('--memory-swap needs --memory (it limits memory plus swap)');
    memorySwap = swapText.trim() === '-1' ? 'unlimited' : parseSize(swapText);
    if (memorySwap !== 'unlimited' && memorySwap < memoryBytes) {
      throw new UsageError(
        `--memory-swap ${swapText} is less than --memory ${memoryText}: it limits memory plus swap, so it must be at least --memory`,
      );
    }
  }
  const cpusText = values.get('cpus');
  const cpusetText = values.get('cpuset');
  const view = values.get('view');
  const rootfs = values.get('rootfs');
  const logLevel = values.get('log-level') ?? 'warn';
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level ${logLevel}: use one of ${logLevels.join(', ')}`);
  }
  for (const [flag, dir] of [
    ['--view', view],
    ['--rootfs', rootfs],
  ] as const) {
    if (dir === '') throw new UsageError(`${flag} needs a directory`);
  }
  return {
    ...(memoryBytes !== undefined && { memoryBytes }),
    ...(memorySwap !== undefined && { memorySwap }),
    ...(cpusText !== undefined && { cpuQuota: parseCpus(cpusText) }),
    ...(cpusetText !== undefined && { cpuset: parseCpuList(cpusetText) }),
    ...(view !== undefined && { viewDir: resolve(cwd, view) }),
    ...(rootfs !== undefined && { rootfs: resolve(cwd, rootfs) }),
    ...sysinfoSocketFrom(values.get('sysinfo-socket'), view, cwd),
    ...uptimeFrom(values.get('uptime'), view),
    logLevel: logLevel as LogLevel,
  };
}

function uptimeFrom(mode: string | undefined, view: string | undefined): { uptime?: UptimeMode } {
  if (mode === undefined) return {};
  if (!(uptimeModes as readonly string[]).includes(mode)) {
    throw new UsageError(`--uptime ${mode}: use one of ${uptimeModes.join(', ')}`);
  }
  if (view !== undefined) throw new UsageError('--uptime sets the private daemon\'s mode; with --view, that daemon\'s own --uptime decides');
  return { uptime: mode as UptimeMode };
}

function sysinfoSocketFrom(socket: string | undefined, view: string | undefined, cwd: string): { sysinfoSocket?: string } {
  if (socket === undefined) return {};
  if (view === undefined) throw new UsageError('--sysinfo-socket goes with --view (a private daemon has its own socket)');
  if (socket === '') throw new UsageError('--sysinfo-socket needs a path');
  return { sysinfoSocket: resolve(cwd, socket) };
}
