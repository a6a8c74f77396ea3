/**
 * Unix socket files outlive the process that bound them when it dies without closing them; a
 * restart must tell such a leftover from a socket another live process still answers on.
 */
import { existsSync, lstatSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';

/**
 * Removes the socket file at `path` if nobody answers on it; throws `${path}: ${liveMessage}`
 * if a live process does, and refuses a path that is not a socket.
 */
export async function removeStaleSocket(path: string, liveMessage: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket; remove it or pick another path`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path}: ${liveMessage}`);
  rmSync(path, { force: true });
}
