/**
 * `node filter-exec.js SOCKET ID PROGRAM [ARGS...]`: the last step of `lxcfs-ts run`'s sandbox
 * set-up. It installs the seccomp filter that hands `sysinfo(2)` to a listener, sends that
 * listener to the view daemon's socket (the message runc sends for a container), and replaces
 * itself with PROGRAM (an absolute host path: `env` or `chroot`, which find CMD), so CMD and all
 * its descendants run under the filter from their first instruction.
 *
 * Order matters: a filter whose listener nobody holds makes `sysinfo` fail with ENOSYS, worse
 * than the host's values. So the socket is connected first; if that fails, CMD runs without the
 * filter (with a warning). Once the filter is in, a failure to hand the listener over is fatal.
 */
import { connect } from 'node:net';
import { closeFd, execve, nativeArch, NativeError, seccomp, sendWithFds, addressOf } from '../native/libc.js';
import { sandboxState } from './container-state.js';
import { SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_SET_MODE_FILTER, sysinfoFilter } from './seccomp-abi.js';

/** Exit status when the sandbox cannot be set up, as `lxcfs-ts run` documents. */
const SETUP_FAILED = 125;
const CONNECT_TIMEOUT_MS = 5_000;

function fail(message: string): never {
  process.stderr.write(`lxcfs-ts run: ${message}\n`);
  process.exit(SETUP_FAILED);
}

/** The filter program as struct sock_fprog { unsigned short len; struct sock_filter *filter; }. */
function installFilter(): number {
  const program = sysinfoFilter(nativeArch());
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(program.length / 8, 0);
  fprog.writeBigUInt64LE(addressOf(program), 8);
  return seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, fprog);
}

async function connectTo(path: string): Promise<{ fd: number; close: () => void } | string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer');
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      // libuv's descriptor of the connected socket: sendmsg(2) with SCM_RIGHTS needs the raw fd.
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (fd === undefined || fd < 0) resolve('connected socket has no descriptor');
      else resolve({ fd, close: () => socket.destroy() });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
  });
}

async function main(argv: string[]): Promise<never> {
  const [socketPath, id, program, ...args] = argv;
  if (!socketPath || id === undefined || !program?.startsWith('/')) {
    fail('usage: filter-exec.js SOCKET ID /ABSOLUTE/PROGRAM [ARGS...]');
  }
  const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
  const connection = await connectTo(socketPath);
  if (typeof connection === 'string') {
    process.stderr.write(
      `lxcfs-ts run: warning: the view daemon's sysinfo socket ${socketPath} cannot be reached (${connection}); ` +
      'sysinfo(2) shows the host\'s values in this sandbox\n',
    );
    execve(program, [program, ...args], env);
  }
  let listener: number;
  try {
    listener = installFilter();
  } catch (err) {
    connection.close();
    const why = err instanceof NativeError ? err.code : String(err);
    process.stderr.write(
      `lxcfs-ts run: warning: cannot install the sysinfo seccomp filter (${why}); sysinfo(2) shows the host's values\n`,
    );
    execve(program, [program, ...args], env);
  }
  try {
    // In the sandbox's pid namespace this process is PID 1; the daemon cannot use that number.
    sendWithFds(connection.fd, sandboxState(0, id), [listener]);
  } catch (err) {
    fail(`cannot hand the sysinfo listener to the view daemon (${(err as Error).message})`);
  }
  closeFd(listener);
  connection.close();
  try {
    execve(program, [program, ...args], env);
  } catch (err) {
    fail(`cannot execute ${program}: ${(err as Error).message}`);
  }
}

void main(process.argv.slice(2));
