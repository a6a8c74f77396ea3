/**
 * Entry point of the `lxcfs-ts` executable. The first argument selects a sub-command; anything
 * else is the daemon itself, with LXCFS's own command line (`lxcfs-ts [-f] [-l] ... [MOUNTPOINT]`).
 */
type CommandMain = (argv: string[]) => Promise<number>;

const subcommands: Record<string, () => Promise<{ main: CommandMain }>> = {
  run: () => import('./sandbox/run-command.js'),
  repair: () => import('./agent/repair/repair-command.js'),
  webhook: () => import('./webhook/webhook-command.js'),
  inject: () => import('./webhook/inject-command.js'),
};

async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  const loader = first !== undefined ? subcommands[first] : undefined;
  if (loader) return (await loader()).main(rest);
  const daemon = await import('./agent/daemon-command.js');
  return daemon.main(argv);
}

dispatch(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`lxcfs-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  },
);
