/**
 * The Localhost seccomp profile that Kubernetes pods opted into the syscall view run with.
 *
 * A Localhost profile replaces the runtime's default one, so it must be at least as strict:
 * these are the rules containerd 1.6 generates as RuntimeDefault for a container with the default
 * capabilities (its unconditional allow list, the per-architecture extras, chroot for the default
 * CAP_SYS_CHROOT, clone without namespace flags, clone3 answered ENOSYS so libcs fall back to
 * clone), with one change: sysinfo(2) is handed to the agent's listener (SCMP_ACT_NOTIFY and
 * listenerPath, which runc connects to when a container or an exec'd process starts).
 *
 * Rules that RuntimeDefault adds only for extra capabilities (CAP_SYS_ADMIN's mount, CAP_SYS_PTRACE's
 * process_vm_*, ...) are left out: a static file cannot depend on a container's capabilities, so
 * the webhook does not give this profile to containers that add those capabilities.
 *
 * The format is the OCI runtime spec's `linux.seccomp` object, which containerd reads from the
 * kubelet's seccomp directory as is.
 */
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The profile's path below the kubelet's seccomp directory: a pod's `localhostProfile`. */
export const sysinfoProfileName = 'lxcfs-ts/sysinfo.json';
/** Sent by runc with each listener; tells our profile's containers from anyone else's. */
export const listenerMetadata = 'lxcfs-ts';

/** Capabilities for which RuntimeDefault allows more system calls than this profile does. */
export const capabilitiesWithExtraSyscalls = [
  'DAC_READ_SEARCH', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_MODULE', 'SYS_PACCT', 'SYS_PTRACE', 'SYS_RAWIO',
  'SYS_TIME', 'SYS_TTY_CONFIG', 'SYS_NICE', 'SYSLOG', 'BPF', 'PERFMON',
] as const;

/** Allowed for every container, whatever its capabilities (sysinfo is not here: it is notified). */
const allowedEverywhere = [
  '_llseek', '_newselect', 'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget',
  'capset', 'chdir', 'chmod', 'chown', 'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres',
  'clock_getres_time64', 'clock_gettime', 'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64',
  'close', 'close_range', 'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create',
  'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old',
  'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64',
  'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32',
  'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr',
  'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync', 'ftruncate', 'ftruncate64',
  'futex', 'futex_time64', 'futex_waitv', 'futimesat', 'get_robust_list', 'get_thread_area', 'getcpu',
  'getcwd', 'getdents', 'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32',
  'getgroups', 'getgroups32', 'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid',
  'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'getrusage',
  'getsid', 'getsockname', 'getsockopt', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr',
  'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'io_destroy',
  'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'io_setup', 'io_submit', 'io_uring_enter',
  'io_uring_register', 'io_uring_setup', 'ioctl', 'ioprio_get', 'ioprio_set', 'ipc', 'kill',
  'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr',
  'link', 'linkat', 'listen', 'listxattr', 'llistxattr', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat',
  'lstat64', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod',
  'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify',
  'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink',
  'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock', 'munlockall', 'munmap', 'nanosleep',
  'newfstatat', 'open', 'openat', 'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv',
  'preadv2', 'prlimit64', 'process_mrelease', 'pselect6', 'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2',
  'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64',
  'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir',
  'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_get_priority_max',
  'sched_get_priority_min', 'sched_getaffinity', 'sched_getattr', 'sched_getparam', 'sched_getscheduler',
  'sched_rr_get_interval', 'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr',
  'sched_setparam', 'sched_setscheduler', 'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop',
  'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg', 'sendto',
  'set_robust_list', 'set_thread_area', 'set_tid_address', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32',
  'setgid', 'setgid32', 'setgroups', 'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid',
  'setregid32', 'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit',
  'setsid', 'setsockopt', 'setuid', 'setuid32', 'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown',
  'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socket', 'socketcall', 'socketpair',
  'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range',
  'syncfs', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime',
  'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime',
  'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times', 'tkill', 'truncate', 'truncate64',
  'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime', 'utimensat', 'utimensat_time64', 'utimes',
  'vfork', 'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
];

type ProfileArch = 'x64' | 'arm64';

/** The architectures a filter covers: the native one and its compat ABIs, as RuntimeDefault does. */
const architectures: Record<ProfileArch, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64'],
};

const allowedOnArch: Record<ProfileArch, string[]> = {
  x64: ['arch_prctl', 'modify_ldt'],
  arm64: ['arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'set_tls', 'sync_file_range2'],
};

/** personality(2) values RuntimeDefault lets through: Linux, its 32-bit flavours, and the query. */
const personalities = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP: namespaces need CAP_SYS_ADMIN. */
const cloneNamespaceFlags = 0x7e020000;
const ENOSYS = 38;

interface SyscallRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_NOTIFY';
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo: number; op: 'SCMP_CMP_EQ' | 'SCMP_CMP_MASKED_EQ' }[];
}

export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  architectures: string[];
  listenerPath: string;
  listenerMetadata: string;
  syscalls: SyscallRule[];
}

export function sysinfoSeccompProfile(listenerPath: string, arch: ProfileArch): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: architectures[arch],
    listenerPath,
    listenerMetadata,
    syscalls: [
      { names: [...allowedEverywhere, ...allowedOnArch[arch], 'chroot', 'ptrace'], action: 'SCMP_ACT_ALLOW' },
      ...personalities.map((value): SyscallRule => ({
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value, valueTwo: 0, op: 'SCMP_CMP_EQ' }],
      })),
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: cloneNamespaceFlags, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      { names: ['sysinfo'], action: 'SCMP_ACT_NOTIFY' },
    ],
  };
}

export class ProfileDirError extends Error {}

/**
 * Writes the profile into the kubelet's seccomp directory (write and rename: the runtime reads it
 * whenever a pod starts, and must never see half a file). Returns the file's path.
 */
export function installSysinfoProfile(seccompDir: string, listenerPath: string, arch: ProfileArch): string {
  try {
    if (!statSync(seccompDir).isDirectory()) throw new ProfileDirError(`${seccompDir} is not a directory`);
  } catch (err) {
    if (err instanceof ProfileDirError) throw err;
    throw new ProfileDirError(
      `the kubelet's seccomp directory ${seccompDir} is not there (${(err as NodeJS.ErrnoException).code}); ` +
      'mount the node\'s /var/lib/kubelet/seccomp at the same path (or pass the kubelet\'s --root-dir + /seccomp)',
    );
  }
  const path = join(seccompDir, sysinfoProfileName);
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(sysinfoSeccompProfile(listenerPath, arch), null, 2)}\n`, { mode: 0o644 });
  renameSync(temporary, path);
  return path;
}
