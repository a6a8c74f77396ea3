/**
 * Changing mounts inside another process's mount namespace with the host's util-linux, so the
 * container needs no shell and no mount binary (distroless images): `mount -N`/`umount -N` enter
 * the namespace only for the mount system call, after the binary has been loaded from the host.
 *
 * umount (and a mount that remounts read-only) reads /proc/self/mountinfo after entering the
 * namespace, where /proc is the container's procfs: a process of the host's pid namespace has no
 * entry there, so the command also runs in the container's pid namespace (nsenter -p), where it does.
 */
import { type CommandResult, runHostCommand } from './host-command.js';

const MOUNT_TIMEOUT_MS = 10_000;

function inNamespaces(pid: number, argv: string[]): string[] {
  return ['nsenter', '-t', String(pid), '-p', '--', ...argv];
}

/** Lazily detaches the topmost mount on `target` in the mount namespace of `pid`. */
export function detachInNamespace(pid: number, target: string): Promise<CommandResult> {
  return runHostCommand(
    inNamespaces(pid, ['umount', '-N', `/proc/${pid}/ns/mnt`, '-l', target]),
    MOUNT_TIMEOUT_MS,
  );
}

/** Binds `source` on `target`, both paths as the process `pid` sees them, with mount flags such as `ro`. */
export function bindInNamespace(
  pid: number,
  source: string,
  target: string,
  flags: readonly string[],
): Promise<CommandResult> {
  const options = flags.length > 0 ? ['-o', flags.join(',')] : [];
  return runHostCommand(
    inNamespaces(pid, ['mount', '-N', `/proc/${pid}/ns/mnt`, '--bind', ...options, source, target]),
    MOUNT_TIMEOUT_MS,
  );
}
