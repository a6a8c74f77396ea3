/**
 * Unix socket files outlive the process that bound them when it dies without closing them; a
 * restart must tell such a leftover from a socket another live process still answers on.
 */
import { chmodSync, existsSync, lstatSync, rmSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';

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

/**
 * Listens on the Unix socket `path` for root only (mode 0600: whoever connects talks to a root
 * daemon about descriptors it will use). Resolves once listening; a bind error rejects.
 */
export async function listenRootOnly(server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o600);
}
