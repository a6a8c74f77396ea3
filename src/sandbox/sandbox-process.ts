/**
 * The running sandbox as seen from `run`: the launcher process (which becomes `unshare`), whether
 * the setup script reported that the sandbox is ready, how it ended, and its PID 1's host pid for
 * passing signals on.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { readyFd, readyMessage } from './setup-script.js';

export interface SandboxExit {
  /** Whether the setup script got as far as exec'ing CMD. */
  readonly ready: boolean;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunningSandbox {
  /** Host pid of the launcher, which is `unshare` once it has started. */
  readonly launcherPid: number;
  readonly exit: Promise<SandboxExit>;
  /** Whether the launcher has exited (been reaped): from then on its pid may belong to another process. */
  hasExited(): boolean;
  /** Host pid of the sandbox's PID 1 (CMD once it runs), if it exists. */
  initPid(): number | undefined;
}

export function startSandbox(argv: readonly string[]): RunningSandbox {
  const stdio: ('inherit' | 'pipe')[] = ['inherit', 'inherit', 'inherit'];
  stdio[readyFd] = 'pipe';
  // Same process group as `run`: a terminal's job control and Ctrl-C reach CMD like any foreground program.
  const child = spawn(argv[0]!, argv.slice(1), { stdio });
  if (child.pid === undefined) throw new Error(`cannot start ${argv[0]}`);
  const launcherPid = child.pid;
  let report = '';
  (child.stdio[readyFd] as Readable).on('data', (chunk: Buffer) => {
    report += chunk.toString('utf8');
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const exit = new Promise<SandboxExit>((resolve, reject) => {
    child.once('error', reject);
    // 'close' comes after the readiness pipe is drained, so `ready` is final.
    child.once('close', (code, signal) =>
      resolve({
        ready: report.split('\n').includes(readyMessage),
        code,
        signal: signal as NodeJS.Signals | null,
      }),
    );
  });
  return {
    launcherPid,
    exit,
    hasExited: () => exited,
    initPid: () => (exited ? undefined : childOf(launcherPid)),
  };
}

/** The pid whose parent is `parent` (unshare --fork has exactly one child), found through /proc. */
function childOf(parent: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after the command name, which is in parentheses and may itself contain spaces or ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === parent) return Number(name);
  }
  return undefined;
}
