/**
 * Finds CMD the way a shell would (a name with a slash is a path, otherwise PATH is searched),
 * but inside the sandbox's future root, before anything is set up: a typo then costs nothing and
 * gets a shell's answer (status 127 "not found", 126 "cannot execute").
 */
import { constants, lstatSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import { errnoCode, RunError } from './run-error.js';

export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Resolves `path` (absolute, as seen inside `root`) to a host path, following symlinks as the
 * kernel would after a chroot into `root`: absolute link targets start again at `root`, and `..`
 * never climbs above it. Returns undefined when some component does not exist.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const pending = posix.normalize(path).split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; pending.length > 0;) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const hostPath = join(root, ...done, part);
    let isLink: boolean;
    try {
      isLink = lstatSync(hostPath).isSymbolicLink();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++hops > 40) return undefined; // ELOOP, as the kernel counts
    const target = readlinkSync(hostPath);
    if (isAbsolute(target)) done.length = 0;
    pending.unshift(...target.split('/').filter(Boolean));
  }
  return join(root, ...done);
}

function isExecutableFile(hostPath: string): 'yes' | 'not-executable' | 'missing' {
  try {
    const stat = statSync(hostPath);
    if (!stat.isFile()) return 'not-executable';
    // root may execute a file when any execute bit is set.
    return stat.mode & (constants.S_IXUSR | constants.S_IXGRP | constants.S_IXOTH) ? 'yes' : 'not-executable';
  } catch {
    return 'missing';
  }
}

/**
 * Checks that `command` can be executed in the sandbox. `root` is the rootfs (or `/`), `cwd` the
 * directory relative names with a slash start from (the rootfs's `/`, or the caller's cwd).
 */
export function checkCommand(command: string, root: string, cwd: string, pathVariable = defaultPath): void {
  const candidates = command.includes('/')
    ? [posix.resolve(cwd, command)]
    : pathVariable
        .split(':')
        .map((dir) => (dir === '' ? '.' : dir))
        .map((dir) => posix.resolve(cwd, dir, command));
  let sawNonExecutable = false;
  for (const candidate of candidates) {
    const hostPath = resolveInRoot(root, candidate);
    if (hostPath === undefined) continue;
    const state = isExecutableFile(hostPath);
    if (state === 'yes') return;
    if (state === 'not-executable') sawNonExecutable = true;
  }
  const where = root === '/' ? '' : ` in ${root}`;
  if (sawNonExecutable) throw new RunError(`${command}: cannot execute${where}: not an executable file`, 126);
  throw new RunError(`${command}: command not found${where}`, 127);
}

/** The absolute host path of a program found on PATH, or undefined. */
export function findHostProgram(name: string, pathVariable = defaultPath): string | undefined {
  for (const dir of pathVariable.split(':')) {
    if (!dir.startsWith('/')) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate) === 'yes') return candidate;
  }
  return undefined;
}
