/**
 * The small shell programs that build a sandbox with the host's own tools (util-linux mount,
 * unshare, setpriv, coreutils env and chroot), so nothing needs to exist inside a `--rootfs`:
 *
 *  - the launcher runs on the host: it moves itself into the sandbox's cgroups (so CMD and every
 *    process it forks are confined from their first instruction), then replaces itself with
 *    `unshare`, which makes the mount, pid and time namespaces, and then with the waiter;
 *  - the waiter forks the sandbox's PID 1 and reports how it ended;
 *  - the setup script runs as that PID 1, in the new mount namespace: it mounts a fresh /proc,
 *    binds the view files read-only over it, binds the view's parent directory in as a slave
 *    mount, switches to the rootfs if there is one, and finally execs CMD, which stays PID 1.
 *
 * They are built here as data (argv lists) and rendered with strict quoting: nothing from the user
 * is ever interpolated into shell syntax unquoted. CMD is quoted once into the launcher and from
 * there travels as positional parameters.
 */
import { dirname, join } from 'node:path';

/** What the setup script needs to know, all paths absolute and as seen on the host. */
export interface SandboxLayout {
  /** The directory that becomes CMD's root, or undefined to keep the host's root. */
  readonly rootfs?: string;
  /** Where the view is mounted (its `proc/...` and `sys/...` files are bound into the sandbox). */
  readonly viewDir: string;
  /** View files to bind over the sandbox's procfs, as catalog paths (`proc/meminfo`, `proc/pressure/cpu`...). */
  readonly procFiles: readonly string[];
  /** Whether the view has `sys/devices/system/cpu` to bind over the sandbox's sysfs. */
  readonly cpuDirectory: boolean;
  /** The syscall view: CMD is started through the seccomp filter installer. */
  readonly sysinfo?: SysinfoLaunch;
}

export interface SysinfoLaunch {
  /** argv that installs the filter, sends its listener to the daemon and execs the rest (host paths). */
  readonly filterExec: readonly string[];
  /** The daemon's sysinfo socket (host path). */
  readonly socket: string;
  /** A name for the sandbox in the daemon's logs. */
  readonly id: string;
  /** Host paths of env and chroot, which look CMD up (PATH) after the exec. */
  readonly env: string;
  readonly chroot: string;
}

/** One command the setup script runs, in order; any failure aborts the setup (`set -e`). */
export type SetupStep = readonly string[];

/**
 * The view's parent directory, which the sandbox sees at the same path, read-only, as a slave
 * mount: later mounts made on the host below it (a restarted daemon's fresh view) show up inside.
 * Undefined when the view sits directly under `/`, which cannot be bound over the sandbox's root.
 */
export function viewParent(layout: SandboxLayout): string | undefined {
  const parent = dirname(layout.viewDir);
  return parent === '/' ? undefined : parent;
}

/** The mounts the sandbox's PID 1 makes before it execs CMD, in order. */
export function setupSteps(layout: SandboxLayout): SetupStep[] {
  const root = layout.rootfs ?? '';
  const inRoot = (path: string) => (root === '' ? path : join(root, path));
  const bindReadOnly = (source: string, target: string): SetupStep => [
    'mount',
    '--bind',
    '-o',
    'ro',
    source,
    target,
  ];
  const parent = viewParent(layout);
  const steps: SetupStep[] = [];
  if (layout.rootfs !== undefined) {
    // pivot-style switches need the new root to be a mount point of its own.
    steps.push(['mount', '--rbind', root, root]);
    const mountpoints = ['/proc', '/sys', '/dev', ...(parent ? [parent] : [])];
    steps.push(['mkdir', '-p', ...mountpoints.map(inRoot)]);
  }
  // A procfs of the new pid namespace: CMD is PID 1 and sees only its own processes.
  steps.push(['mount', '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', inRoot('/proc')]);
  for (const file of layout.procFiles) {
    steps.push(bindReadOnly(join(layout.viewDir, file), inRoot(`/${file}`)));
  }
  if (layout.rootfs !== undefined) {
    steps.push(['mount', '--rbind', '/sys', inRoot('/sys')]);
    steps.push(['mount', '-o', 'remount,bind,ro', inRoot('/sys')]);
    steps.push(['mount', '--rbind', '/dev', inRoot('/dev')]);
  }
  if (layout.cpuDirectory) {
    // The whole directory, as LXC does: cpuN entries, online, possible and present all come from the view.
    steps.push(
      bindReadOnly(join(layout.viewDir, 'sys/devices/system/cpu'), inRoot('/sys/devices/system/cpu')),
    );
  }
  if (parent) {
    steps.push(['mount', '--rbind', parent, inRoot(parent)]);
    steps.push(['mount', '--make-rslave', inRoot(parent)]);
    steps.push(['mount', '-o', 'remount,bind,ro', inRoot(parent)]);
  }
  return steps;
}

/** POSIX shell single-quoting: safe for any string, including quotes, spaces and newlines. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll('\'', `'\\''`)}'`;
}

function renderCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** The fd on which the setup script reports that every mount is in place, just before it execs CMD. */
export const readyFd = 3;
export const readyMessage = 'ready';

/**
 * The setup script, run as `sh -c SCRIPT lxcfs-ts-sandbox CMD ARGS...`. It closes the readiness
 * pipe for CMD, and in a rootfs moves the rootfs mount over `/` and chroots into it (the way
 * initramfs hands over to the real root): only host binaries run before the switch, so the rootfs
 * needs no shell and no mount binary, and the host tree stays covered by the rootfs mount.
 */
export function renderSetupScript(layout: SandboxLayout): string {
  const lines = ['set -e', ...setupSteps(layout).map(renderCommand)];
  lines.push(`printf '%s\\n' ${readyMessage} >&${readyFd}`);
  const sysinfo = layout.sysinfo;
  // With the syscall view, a host program installs the filter, then execs env or chroot, which find CMD.
  const through = (program: string) =>
    sysinfo ? `${renderCommand([...sysinfo.filterExec, sysinfo.socket, sysinfo.id, program])} ` : '';
  if (layout.rootfs !== undefined) {
    const chroot = sysinfo ? `${through(sysinfo.chroot)}.` : 'chroot .';
    lines.push(`cd ${shellQuote(layout.rootfs)}`, 'mount --move . /', `exec ${chroot} "$@" ${readyFd}>&-`);
  } else {
    lines.push(sysinfo ? `exec ${through(sysinfo.env)}-- "$@" ${readyFd}>&-` : `exec "$@" ${readyFd}>&-`);
  }
  return `${lines.join('\n')}\n`;
}

export interface LauncherOptions {
  /** `cgroup.procs` files the launcher writes its own pid to before anything else happens. */
  readonly procsFiles: readonly string[];
  /** A new time namespace whose CLOCK_BOOTTIME starts near 0 (uptime and process start times agree). */
  readonly timeNamespace: boolean;
  readonly setupScript: string;
  readonly command: readonly string[];
}

/**
 * Runs in the new mount namespace as the parent of the sandbox's PID 1, and waits for it. It is a
 * shell and not `unshare --fork` because a shell reports a child killed by a signal as 128+N
 * (util-linux 2.38's unshare exits 1 when its child dies of SIGKILL, e.g. from the OOM killer).
 * It forks exactly once: after PID 1 is gone the pid namespace accepts no new process. Background
 * jobs of a non-interactive shell get stdin from /dev/null and ignore SIGINT/SIGQUIT, so stdin is
 * passed explicitly and env --default-signal restores the signals; setpriv's parent-death signal
 * kills PID 1, and with it the whole namespace, if this waiter dies.
 */
const waiterScript = [
  'exec 5<&0',
  'setpriv --pdeathsig KILL -- env --default-signal=INT,QUIT sh -c "$0" lxcfs-ts-sandbox "$@" <&5 5<&- &',
  'exec 5<&-',
  // Without the redirection the shell would print "Killed" when the OOM killer ends CMD.
  'wait $! 2>/dev/null',
].join('\n');

/**
 * The argv of the host-side launcher: it joins the cgroups, then becomes `unshare` and then the
 * waiter. It ignores Ctrl-C (the terminal sends it to the whole foreground group, CMD included):
 * `run` decides how the sandbox stops. Its own parent-death signal ends the sandbox with `run`
 * even if `run` itself is SIGKILLed.
 */
export function launcherArgv(options: LauncherOptions): string[] {
  const joinCgroups = options.procsFiles.map(
    (file) =>
      `echo $$ > ${shellQuote(file)} || { echo cannot join cgroup ${shellQuote(file)} >&2; exit 125; }`,
  );
  // The boot clock offset is read at the last moment: CMD's uptime then starts below one second.
  const timens = options.timeNamespace
    ? // a shell parameter expansion, not a JS template
      ['read up rest < /proc/uptime', 'set -- --time --boottime=-"${up%.*}"']
    : ['set --'];
  const unshare =
    'exec setpriv --pdeathsig KILL -- unshare --mount --propagation slave --pid "$@" -- ' +
    `sh -c ${shellQuote(waiterScript)} "$0" ${renderCommand(options.command)}`;
  const launcher = [...joinCgroups, 'trap \'\' INT QUIT', ...timens, unshare].join('\n');
  return ['sh', '-c', launcher, options.setupScript];
}
