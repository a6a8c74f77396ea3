/**
 * `lxcfs-ts repair [MOUNTPOINT]`: one repair pass, by hand. The daemon repairs containers by
 * itself (at start and every few seconds); this is for scripts, for checking a node, and for
 * daemons started with --no-repair. Prints one line per container mount it changed or could not
 * change. Exit status: 0 when everything was repaired or nothing needed it, 1 when something could
 * not be repaired, 2 for a bad command line.
 */
import { parseArgs } from 'node:util';
import { createLogger, type Logger, type LogLevel, logLevels } from '../../common/log.js';
import { DEFAULT_MOUNTPOINT } from '../daemon-args.js';
import { readMountinfo } from '../mountinfo.js';
import { canonicalMountpoint } from '../preflight.js';
import { probeConnection } from './path-probe.js';
import { type RepairOutcome, ViewRepairer } from './view-repairer.js';
import { topmostAt, VIEW_FSTYPE } from './view-mounts.js';

export const repairUsage = `Usage: lxcfs-ts repair [options] [MOUNTPOINT]

Repairs containers whose binds of the view (their /proc/meminfo, /proc/cpuinfo, ...
/sys/devices/system/cpu) come from a dead FUSE connection, left by an LXCFS or lxcfs-ts daemon
that crashed or was replaced: each stale mount is detached and the same file of the live view at
MOUNTPOINT (default ${DEFAULT_MOUNTPOINT}) is bound in its place, from the host (the container needs
no shell and no mount binary). Binds removed by a planned stop (lxcfs-ts --unbind-on-stop) are
put back. Containers are found from /proc/*/mountinfo, whatever runs them.

The running daemon does this by itself at start and every few seconds; this command does one pass
now and reports one line per container mount. A container can only be repaired if it sees the live
view: it needs the view's parent directory mounted with HostToContainer (rslave) propagation.
Needs root.

Options:
      --log-level LEVEL   ${logLevels.join('|')} (default warn); logs are JSON lines on stderr
  -h, --help              show this help

Exit status: 0 if everything was repaired or nothing needed repair, 1 if some mount could not be
repaired (or there is no live view at MOUNTPOINT), 2 for a bad command line.
`;

class UsageError extends Error {}

function parse(argv: string[]): { help: true } | { help: false; mountpoint: string; logLevel: LogLevel } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { help: { type: 'boolean', short: 'h' }, 'log-level': { type: 'string' } },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.values.help) return { help: true };
  if (parsed.positionals.length > 1) {
    throw new UsageError(`expected at most one mountpoint, got: ${parsed.positionals.join(' ')}`);
  }
  const logLevel = parsed.values['log-level'] ?? 'warn';
  if (!logLevels.includes(logLevel as LogLevel)) {
    throw new UsageError(`--log-level must be one of ${logLevels.join(', ')}`);
  }
  return { help: false, mountpoint: parsed.positionals[0] ?? DEFAULT_MOUNTPOINT, logLevel: logLevel as LogLevel };
}

const labels: Record<RepairOutcome['result'], string> = {
  repaired: 'repaired',
  restored: 'restored',
  failed: 'FAILED',
  unreachable: 'UNREPAIRABLE',
};

export function formatOutcome(o: RepairOutcome): string {
  const who = `pid ${o.pid} (${o.command}) ${o.namespace}`;
  const what = o.source !== undefined && (o.result === 'repaired' || o.result === 'restored')
    ? `${o.target} <- ${o.source}`
    : o.target;
  return `${labels[o.result].padEnd(12)} ${who} ${what}${o.detail ? `: ${o.detail}` : ''}`;
}

/** The live view's device, or a message saying why there is none. */
async function liveDevice(mountpoint: string): Promise<{ device: string } | { problem: string }> {
  const top = topmostAt(readMountinfo(), mountpoint);
  if (!top || top.fstype !== VIEW_FSTYPE) {
    return {
      problem: `no view is mounted at ${mountpoint}${top ? ` (${top.fstype} is)` : ''}: start the daemon first (lxcfs-ts ${mountpoint})`,
    };
  }
  const state = await probeConnection(mountpoint);
  if (state === 'dead') {
    return {
      problem: `the view at ${mountpoint} is a dead mount (its daemon is gone): start the daemon, which detaches it and repairs containers`,
    };
  }
  if (state !== 'alive') return { problem: `the view at ${mountpoint} does not answer (${state})` };
  return { device: top.device };
}

async function repairOnce(mountpoint: string, log: Logger): Promise<number> {
  const live = await liveDevice(mountpoint);
  if ('problem' in live) {
    process.stderr.write(`lxcfs-ts repair: ${live.problem}\n`);
    return 1;
  }
  const repairer = new ViewRepairer({ mountpoint, liveDevice: live.device, recheckEvery: 1, log });
  const outcomes = await repairer.pass();
  for (const outcome of outcomes) process.stdout.write(`${formatOutcome(outcome)}\n`);
  const count = (result: RepairOutcome['result']) => outcomes.filter((o) => o.result === result).length;
  const problems = count('failed') + count('unreachable');
  if (outcomes.length === 0) {
    process.stdout.write(`nothing to repair: no container holds a stale bind of a view (live view: ${mountpoint})\n`);
  } else {
    process.stdout.write(
      `${count('repaired')} repaired, ${count('restored')} restored, ${count('failed')} failed, ${count('unreachable')} unrepairable\n`,
    );
  }
  return problems === 0 ? 0 : 1;
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lxcfs-ts repair: ${err.message}\n\n${repairUsage}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(repairUsage);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('lxcfs-ts repair: needs root: it changes mounts in other mount namespaces (try sudo)\n');
    return 1;
  }
  const log = createLogger(parsed.logLevel, { component: 'repair' });
  return repairOnce(canonicalMountpoint(parsed.mountpoint), log);
}
