/**
 * Runs a host tool (util-linux mount/umount) to completion. Mounts are made with the tools rather
 * than raw syscalls because Node has no mount(2), and the tools' messages are the ones admins know.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../common/log.js';
import { RunError } from './run-error.js';

/**
 * Runs argv and waits. With `failure` set, a non-zero exit throws a RunError starting with it;
 * without, the failure is logged as a warning (cleanup steps must not stop the ones after them).
 */
export async function runTool(argv: readonly string[], log: Logger, failure?: string): Promise<boolean> {
  const result = await new Promise<{ ok: boolean; detail: string }>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-4096);
    });
    child.once('error', (err) => resolve({ ok: false, detail: err.message }));
    child.once('close', (code, signal) =>
      resolve({
        ok: code === 0,
        detail: stderr.trim() || (signal ? `killed by ${signal}` : `exit status ${code}`),
      }),
    );
  });
  if (result.ok) return true;
  if (failure !== undefined) throw new RunError(`${failure}: ${argv.join(' ')}: ${result.detail}`);
  log.warn({ argv, detail: result.detail }, 'host command failed');
  return false;
}
