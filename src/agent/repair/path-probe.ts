/**
 * Looking at what a path inside a container leads to, from the host, through /proc/PID/root:
 * the path is resolved the way the container resolves it (its root, its mounts, whatever hides
 * what), so the answer is about the mount the container actually uses, which a mount table
 * alone cannot tell when mounts are stacked or hidden by mounts above them.
 *
 * The kernel keeps a dead FUSE connection's superblock (and every bind of it) until the last mount
 * goes, and answers any request on it with ENOTCONN at once; a live connection forwards requests
 * to its daemon, which may not answer. So the looking is done by coreutils `stat` in a child
 * process that is killed when it takes too long, never by this process.
 */
import { spawnSync } from 'node:child_process';
import { type CommandResult, runHostCommand } from './host-command.js';

const PROBE_TIMEOUT_MS = 2_000;

/** ENOTCONN after the daemon is gone; ECONNABORTED after an abort through fusectl. */
const deadMessages = /Transport endpoint is not connected|Software caused connection abort/;

/** The paths stat named in its error messages, with the message. */
function statErrors(stderr: string): Map<string, string> {
  const errors = new Map<string, string>();
  for (const line of stderr.split('\n')) {
    const match = /^stat: cannot [^']*'(.*)': (.*)$/.exec(line);
    if (match) errors.set(match[1]!, match[2]!);
  }
  return errors;
}

export interface DeadPaths {
  /** Paths that lead to a dead FUSE connection. */
  readonly dead: ReadonlySet<string>;
  /** Some path could not be decided (gone, or an unresponsive filesystem): look again later. */
  readonly undecided: boolean;
}

function statfs(paths: readonly string[]): Promise<CommandResult> {
  return runHostCommand(['stat', '-f', '-c', '%n', '--', ...paths], PROBE_TIMEOUT_MS);
}

/** Which of these paths lead to a dead FUSE connection (statfs answers ENOTCONN). */
export async function findDeadPaths(paths: readonly string[]): Promise<DeadPaths> {
  if (paths.length === 0) return { dead: new Set(), undecided: false };
  const result = await statfs(paths);
  if (result.timedOut) {
    // One unresponsive filesystem held up the batch: ask about each path on its own.
    if (paths.length === 1) return { dead: new Set(), undecided: true };
    const each = await Promise.all(paths.map((path) => findDeadPaths([path])));
    return {
      dead: new Set(each.flatMap((e) => [...e.dead])),
      undecided: each.some((e) => e.undecided),
    };
  }
  const dead = new Set<string>();
  let undecided = false;
  for (const [path, message] of statErrors(result.detail)) {
    if (deadMessages.test(message)) dead.add(path);
    else undecided = true;
  }
  if (!result.ok && dead.size === 0 && !undecided) undecided = true; // stat failed without naming a path
  return { dead, undecided };
}

export type ConnectionState = 'dead' | 'alive' | 'unresponsive' | 'unknown';

/** The state of the connection behind the mount at `path`. */
export async function probeConnection(path: string): Promise<ConnectionState> {
  const result = await statfs([path]);
  if (result.ok) return 'alive';
  if (result.timedOut) return 'unresponsive';
  return deadMessages.test(result.detail) ? 'dead' : 'unknown';
}

/** probeConnection for start-up checks, where nothing else runs yet. */
export function probeConnectionSync(path: string): ConnectionState {
  const result = spawnSync('stat', ['-f', '-c', '%n', '--', path], {
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
  });
  if (result.status === 0) return 'alive';
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return 'unresponsive';
  return deadMessages.test(result.stderr ?? '') ? 'dead' : 'unknown';
}

/** glibc's dev_t encoding (what stat's %d prints), decoded to major:minor as in mountinfo. */
export function deviceName(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/**
 * The device (major:minor) of what each path leads to; paths that cannot be looked at are left
 * out. Null when stat did not finish in time (a path crosses another, unresponsive filesystem):
 * nothing can be told then, and the caller looks again later.
 *
 * `--cached=always` (statx AT_STATX_DONT_SYNC): the device comes from the superblock, and FUSE
 * then answers from the attributes it has instead of asking the daemon. So a view whose serving
 * process is still starting (10-15 s under emulation), stopped or busy is told apart from another
 * filesystem at once, where a plain stat of it would wait for the serving process.
 */
export async function devicesAt(paths: readonly string[]): Promise<Map<string, string> | null> {
  const devices = new Map<string, string>();
  if (paths.length === 0) return devices;
  const result = await runHostCommand(['stat', '--cached=always', '-c', '%d %n', '--', ...paths], PROBE_TIMEOUT_MS, true);
  if (result.timedOut) return null;
  for (const line of (result.stdout ?? '').split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    devices.set(line.slice(space + 1), deviceName(BigInt(line.slice(0, space))));
  }
  return devices;
}
