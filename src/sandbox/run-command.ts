/**
 * `lxcfs-ts run [OPTIONS] [--] CMD [ARGS...]`: the command-line face of the sandbox. Usage errors
 * exit 2 with the usage text; failures of the sandbox itself print one line and exit 125; otherwise
 * the exit status is CMD's.
 */
import { createLogger } from '../common/log.js';
import { ownDaemonCommand, ownFilterExecCommand } from './private-daemon.js';
import { parseRunArgs, runUsage, UsageError } from './run-options.js';
import { runSandbox } from './run-sandbox.js';

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseRunArgs>;
  try {
    parsed = parseRunArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`lxcfs-ts run: ${err.message}\n\n${runUsage}`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(runUsage);
    return 0;
  }
  const log = createLogger(parsed.options.logLevel, { component: 'run' });
  const { status, error } = await runSandbox(parsed.options, {
    log,
    daemonCommand: ownDaemonCommand(),
    filterExecCommand: ownFilterExecCommand(),
  });
  if (error !== undefined) process.stderr.write(`lxcfs-ts run: ${error}\n`);
  return status;
}
