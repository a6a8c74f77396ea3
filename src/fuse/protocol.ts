/**
 * The FUSE kernel protocol (include/uapi/linux/fuse.h): opcodes, flags and fixed struct sizes.
 * All integers are little-endian; the kernel and this process share one machine.
 */

export const FUSE_KERNEL_VERSION = 7;
/**
 * The minor version we speak. 7.43 adds the request timeout field to init_out; the kernel takes
 * min(ours, its own), so older kernels simply negotiate down.
 */
export const FUSE_OUR_MINOR = 43;
export const FUSE_ROOT_ID = 1n;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
} as const;

export const opcodeNames: Record<number, string> = Object.fromEntries(
  Object.entries(Opcode).map(([name, code]) => [code, name.toLowerCase()]),
);

/** Opcodes that modify the tree or file contents: a read-only view answers them with EROFS. */
export const writeOpcodes: ReadonlySet<number> = new Set([
  Opcode.SETATTR,
  Opcode.SYMLINK,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.UNLINK,
  Opcode.RMDIR,
  Opcode.RENAME,
  Opcode.LINK,
  Opcode.WRITE,
  Opcode.SETXATTR,
  Opcode.REMOVEXATTR,
  Opcode.CREATE,
  Opcode.FALLOCATE,
  Opcode.RENAME2,
  Opcode.COPY_FILE_RANGE,
  Opcode.TMPFILE,
]);

/**
 * Opcodes answered ENOSYS on purpose: the kernel then remembers (no_flush, no_access, no_getxattr,
 * no_statx, no_lseek...) and stops sending them, which saves a round trip per close, stat or ls -l.
 */
export const declinedOpcodes: ReadonlySet<number> = new Set([
  Opcode.FLUSH,
  Opcode.ACCESS,
  Opcode.GETXATTR,
  Opcode.LISTXATTR,
  Opcode.STATX,
  Opcode.LSEEK,
  Opcode.FSYNC,
  Opcode.FSYNCDIR,
  Opcode.GETLK,
  Opcode.SETLK,
  Opcode.SETLKW,
  Opcode.BMAP,
  Opcode.IOCTL,
  Opcode.POLL,
  Opcode.READDIRPLUS,
  Opcode.SYNCFS,
]);

/** Requests the kernel expects no reply to. */
export const noReplyOpcodes: ReadonlySet<number> = new Set([
  Opcode.FORGET,
  Opcode.BATCH_FORGET,
  Opcode.INTERRUPT,
]);

/** INIT flags (fuse_init_in.flags | fuse_init_in.flags2 << 32). */
export const InitFlag = {
  ASYNC_READ: 1n << 0n,
  ATOMIC_O_TRUNC: 1n << 3n,
  BIG_WRITES: 1n << 5n,
  AUTO_INVAL_DATA: 1n << 12n,
  PARALLEL_DIROPS: 1n << 18n,
  ABORT_ERROR: 1n << 21n,
  MAX_PAGES: 1n << 22n,
  CACHE_SYMLINKS: 1n << 23n,
  INIT_EXT: 1n << 30n,
  HAS_RESEND: 1n << 39n,
  REQUEST_TIMEOUT: 1n << 42n,
} as const;

/** High bit of `unique` on a request the kernel resends after FUSE_NOTIFY_RESEND. */
export const UNIQUE_RESEND_BIT = 1n << 63n;

export const NotifyCode = {
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  RESEND: 7,
} as const;

export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;

export const DirentType = {
  UNKNOWN: 0,
  DIR: 4,
  REG: 8,
  LNK: 10,
} as const;

export const StructSize = {
  IN_HEADER: 40,
  OUT_HEADER: 16,
  ATTR: 88,
  ENTRY_OUT: 128,
  ATTR_OUT: 104,
  OPEN_OUT: 16,
  STATFS_OUT: 80,
  DIRENT_BASE: 24,
  INIT_IN_MIN: 8,
  /** fuse_init_out: 8 bytes before 7.5, 24 bytes up to 7.22, 64 bytes from 7.23 on. */
  INIT_OUT_FULL: 64,
  INIT_OUT_COMPAT_22: 24,
  INIT_OUT_COMPAT_5: 8,
} as const;

/** The kernel refuses read buffers smaller than this (and smaller than max_write + header). */
export const FUSE_MIN_READ_BUFFER = 8192;

/** errno values we answer with (Linux numbering). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EROFS: 30,
  EPROTO: 71,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  ENOTSUP: 95,
  ESTALE: 116,
} as const;
