/**
 * The project's one native exception: the few Linux system calls Node has no API for, called
 * straight from libc through koffi (prebuilt binaries inside the npm package, nothing compiled at
 * install). The FUSE engine does not use it; the syscall view (seccomp user notification) and the
 * agent takeover do, and nothing else may import it.
 *
 * Every wrapper is synchronous and throws a `NativeError` carrying the errno name, so callers can
 * tell "the caller died" (ENOENT, ESRCH) from a real failure. Buffers are passed as pointers: the
 * caller owns their memory and keeps them alive for the call.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';

type Koffi = typeof import('koffi');
// koffi is CommonJS; createRequire keeps this module ESM and loads it only where it is imported.
const koffi = createRequire(import.meta.url)('koffi') as Koffi;

const libc = koffi.load('libc.so.6');

/** A failed system call: `code` is the errno name (`ENOENT`...), `errno` its number. */
export class NativeError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    const code = errnoName(errno);
    super(`${call}: ${code} (errno ${errno})`);
    this.code = code;
  }

  readonly code: string;
}

export function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** System call numbers Node lacks, per architecture (the generic table for arm64). */
const syscallNumbers = {
  x64: { seccomp: 317, pidfdOpen: 434, pidfdGetfd: 438, processVmWritev: 311, sysinfo: 99 },
  arm64: { seccomp: 277, pidfdOpen: 434, pidfdGetfd: 438, processVmWritev: 271, sysinfo: 179 },
} as const;

export type SupportedArch = keyof typeof syscallNumbers;

export function nativeArch(): SupportedArch {
  const arch = process.arch;
  if (arch === 'x64' || arch === 'arm64') return arch;
  throw new Error(`the syscall view supports x86_64 and aarch64 only, not ${arch}`);
}

const nr = syscallNumbers[nativeArch()];

// Fixed-arity prototypes of the variadic syscall(2) and ioctl(2): every argument is a machine word.
const syscall3 = libc.func('long syscall(long nr, long a, long b, long c)');
const syscall3p = libc.func('long syscall(long nr, long a, long b, void *c)');
const syscall6pp = libc.func('long syscall(long nr, long a, void *b, long c, void *d, long e, long f)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');
const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
const recvmsgFn = libc.func('long recvmsg(int fd, void *msg, int flags)');
const sendmsgFn = libc.func('long sendmsg(int fd, void *msg, int flags)');
const closeFn = libc.func('int close(int fd)');
const prctlFn = libc.func('int prctl(int option, unsigned long a, unsigned long b, unsigned long c, unsigned long d)');
const execveFn = libc.func('int execve(const char *path, const char **argv, const char **envp)');
const signalFn = libc.func('void *signal(int sig, void *handler)');
const fcntlFn = libc.func('int fcntl(int fd, int cmd, long arg)');
const mmapFn = libc.func('void *mmap(void *addr, unsigned long length, int prot, int flags, int fd, long offset)');
const getsockoptFn = libc.func('int getsockopt(int fd, int level, int name, void *value, void *length)');

function check(call: string, result: number | bigint): number {
  const value = Number(result);
  if (value < 0) throw new NativeError(call, koffi.errno());
  return value;
}

/** ioctl(fd, request, buffer): the buffer is read and written in place. */
export function ioctl(fd: number, request: number, arg: Buffer): number {
  return check('ioctl', ioctlPtr(fd, request, arg));
}

/** ioctl that tells whether it failed with one of `quiet` (returned) instead of throwing. */
export function ioctlErrno(fd: number, request: number, arg: Buffer): number {
  const value = ioctlPtr(fd, request, arg) as number;
  return value < 0 ? -koffi.errno() : value;
}

/**
 * poll(2) over `pollfds` (struct pollfd[]: int fd, short events, short revents, 8 bytes each).
 * Returns the number of ready entries; EINTR counts as 0 ready.
 */
export function poll(pollfds: Buffer, count: number, timeoutMs: number): number {
  const value = pollFn(pollfds, count, timeoutMs) as number;
  if (value >= 0) return value;
  const errno = koffi.errno();
  if (errno === constants.errno.EINTR) return 0;
  throw new NativeError('poll', errno);
}

export function closeFd(fd: number): void {
  check('close', closeFn(fd));
}

/** seccomp(2) with a pointer argument (the filter program, or the notification sizes). */
export function seccomp(operation: number, flags: number, arg: Buffer): number {
  return check('seccomp', syscall3p(nr.seccomp, operation, flags, arg));
}

export function prctl(option: number, a = 0, b = 0, c = 0, d = 0): number {
  return check('prctl', prctlFn(option, a, b, c, d));
}

/** pidfd_open(2): a descriptor that names one process, immune to pid reuse. */
export function pidfdOpen(pid: number): number {
  return check('pidfd_open', syscall3(nr.pidfdOpen, pid, 0, 0));
}

/** pidfd_getfd(2): a copy of descriptor `targetFd` of the process behind `pidfd`. */
export function pidfdGetfd(pidfd: number, targetFd: number): number {
  return check('pidfd_getfd', syscall3(nr.pidfdGetfd, pidfd, targetFd, 0));
}

/**
 * process_vm_writev(2) of `data` to `address` in process `pid`: one local and one remote iovec.
 * Returns the bytes written; a bad remote address fails with EFAULT.
 */
export function processVmWrite(pid: number, address: bigint, data: Buffer): number {
  const local = Buffer.alloc(16);
  local.writeBigUInt64LE(koffi.address(data), 0);
  local.writeBigUInt64LE(BigInt(data.length), 8);
  const remote = Buffer.alloc(16);
  remote.writeBigUInt64LE(address, 0);
  remote.writeBigUInt64LE(BigInt(data.length), 8);
  return check('process_vm_writev', syscall6pp(nr.processVmWritev, pid, local, 1, remote, 1, 0));
}

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_DONTWAIT = 0x40;
/** struct msghdr on 64-bit Linux: name, namelen, iov, iovlen, control, controllen, flags. */
const MSGHDR_SIZE = 56;
const MAX_FDS = 16;
const CMSG_HEADER = 16;

export interface ReceivedMessage {
  /** Bytes of data received (0 when the peer closed without sending). */
  readonly length: number;
  /** Descriptors passed with SCM_RIGHTS, already close-on-exec. */
  readonly fds: number[];
  /** The kernel cut the data or the descriptors (MSG_TRUNC / MSG_CTRUNC). */
  readonly truncated: boolean;
}

/**
 * recvmsg(2) into `data` without blocking, with room for up to 16 passed descriptors. Returns
 * null when nothing is waiting (EAGAIN).
 */
export function receiveWithFds(fd: number, data: Buffer): ReceivedMessage | null {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(koffi.address(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const control = Buffer.alloc(CMSG_HEADER + 4 * MAX_FDS);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(koffi.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(koffi.address(control), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  const result = Number(recvmsgFn(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (result < 0) {
    const errno = koffi.errno();
    if (errno === constants.errno.EAGAIN) return null;
    throw new NativeError('recvmsg', errno);
  }
  const flags = msg.readInt32LE(48);
  const controlLength = Number(msg.readBigUInt64LE(40));
  const fds: number[] = [];
  // One SCM_RIGHTS header is all a sender of ours (or runc) sends.
  if (controlLength >= CMSG_HEADER) {
    const cmsgLength = Number(control.readBigUInt64LE(0));
    if (control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) {
      for (let at = CMSG_HEADER; at + 4 <= cmsgLength && at + 4 <= control.length; at += 4) {
        fds.push(control.readInt32LE(at));
      }
    }
  }
  return { length: result, fds, truncated: (flags & 0x28) !== 0 };
}

/** sendmsg(2) of `data` with descriptors in SCM_RIGHTS (blocking). */
export function sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(koffi.address(data), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const control = Buffer.alloc(CMSG_HEADER + 8 * Math.ceil(fds.length / 2));
  control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0);
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  fds.forEach((f, i) => control.writeInt32LE(f, CMSG_HEADER + 4 * i));
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(koffi.address(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (fds.length > 0) {
    msg.writeBigUInt64LE(koffi.address(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  return check('sendmsg', sendmsgFn(fd, msg, 0));
}

const SIGPIPE = 13;
const SIGXFSZ = 25;

/**
 * execve(2): replaces this Node process with `path`. Node ignores SIGPIPE and SIGXFSZ, and an
 * ignored signal stays ignored across exec, so both are reset to their defaults first (a
 * pipeline like `yes | head` must end as it does from a shell). Returns only on failure.
 */
export function execve(path: string, argv: readonly string[], env: readonly string[]): never {
  // Node marks the standard descriptors close-on-exec (and non-blocking once it used them):
  // the new program must get them as a shell would hand them over.
  for (const fd of [0, 1, 2]) inheritable(fd);
  signalFn(SIGPIPE, null);
  signalFn(SIGXFSZ, null);
  execveFn(path, [...argv, null], [...env, null]);
  throw new NativeError(`execve ${path}`, koffi.errno());
}

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETFD = 2;
const O_NONBLOCK = 0o4000;

/** Clears close-on-exec and O_NONBLOCK on `fd` (ignored when it is not open). */
function inheritable(fd: number): void {
  const flags = fcntlFn(fd, F_GETFL, 0) as number;
  if (flags < 0) return;
  fcntlFn(fd, F_SETFD, 0);
  if (flags & O_NONBLOCK) fcntlFn(fd, F_SETFL, flags & ~O_NONBLOCK);
}

const PROT_READ_WRITE = 0x3;
const MAP_SHARED = 0x1;

/**
 * Maps `length` bytes of the file `fd` shared, read-write, for the life of the process (never
 * unmapped). Stores into the Buffer land in the file's pages at once, with no system call, and
 * stay there when the process dies: the next process that maps the file sees them.
 */
export function mapShared(fd: number, length: number): Buffer {
  const pointer: unknown = mmapFn(null, length, PROT_READ_WRITE, MAP_SHARED, fd, 0);
  if (pointer === null || koffi.address(pointer) === 0xffffffffffffffffn) {
    throw new NativeError('mmap', koffi.errno());
  }
  return Buffer.from(koffi.view(pointer, length));
}

const SO_PEERCRED = 17;

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * getsockopt(SO_PEERCRED) of a connected Unix socket: who is on the other end, as the kernel
 * recorded it at connect time (it cannot be forged by the peer).
 */
export function peerCredentials(fd: number): PeerCredentials {
  const cred = Buffer.alloc(12);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(cred.length, 0);
  check('getsockopt(SO_PEERCRED)', getsockoptFn(fd, SOL_SOCKET, SO_PEERCRED, cred, length));
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8) };
}

/** The address of a Buffer's memory (for structures that hold pointers). */
export function addressOf(buffer: Buffer): bigint {
  return koffi.address(buffer);
}

export const syscallNumber = nr;
