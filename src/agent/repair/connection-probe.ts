/**
 * Whether the FUSE connection behind a mount is dead. The kernel keeps a dead connection's
 * superblock (and every bind of it) until the last mount goes, and answers any request on it
 * with ENOTCONN at once; a live connection forwards the request to its daemon, so the probe runs
 * in a child process that is killed if that daemon does not answer.
 */
import { runHostCommand } from './host-command.js';

export type ConnectionState = 'dead' | 'alive' | 'unresponsive' | 'unknown';

const PROBE_TIMEOUT_MS = 2_000;

/** ENOTCONN after the daemon is gone; ECONNABORTED after an abort through fusectl. */
const deadMessages = /Transport endpoint is not connected|Software caused connection abort/;

/**
 * Probes the connection of the mount at `path` (a path the supervisor can reach, e.g.
 * `/proc/PID/root/proc/meminfo` for a mount inside a container) with statfs(2).
 */
export async function probeConnection(path: string): Promise<ConnectionState> {
  const result = await runHostCommand(['stat', '-f', '-c', '%t', path], PROBE_TIMEOUT_MS);
  if (result.ok) return 'alive';
  if (result.timedOut) return 'unresponsive';
  return deadMessages.test(result.detail) ? 'dead' : 'unknown';
}
