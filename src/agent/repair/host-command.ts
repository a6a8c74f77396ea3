/**
 * Runs a host binary (util-linux nsenter, mount, umount; coreutils stat) without blocking the
 * event loop, with a time limit: a mount that waits on an unresponsive FUSE connection must not
 * hold up the supervisor, which has a serving process to keep alive.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly ok: boolean;
  /** Exit status, or null when the command could not start or was killed. */
  readonly status: number | null;
  readonly timedOut: boolean;
  /** What it printed on stderr (or why it did not run), trimmed. */
  readonly detail: string;
  /** What it printed on stdout, when asked for. */
  readonly stdout?: string;
}

export function runHostCommand(
  argv: readonly string[],
  timeoutMs: number,
  captureStdout = false,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    // C locale: messages are matched (stat's errno text) and logged in one language.
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', captureStdout ? 'pipe' : 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      // A process group of its own, so that a command past its time is killed with everything it
      // started (nsenter -p runs its command in a child; a shell runs umount and mount).
      detached: true,
    });
    let stderr = '';
    let stdout = '';
    let timedOut = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-65_536);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, status: null, timedOut: false, detail: `cannot run ${argv[0]}: ${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const detail = timedOut ? `no answer within ${timeoutMs} ms` : stderr.trim() || `exit status ${code}`;
      resolve({ ok: code === 0 && !timedOut, status: code, timedOut, detail, ...(captureStdout && { stdout }) });
    });
  });
}
