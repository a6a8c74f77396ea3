/**
 * What the request loop needs from a filesystem. Every method is synchronous (it runs on a worker
 * thread that blocks in read(2) on /dev/fuse) and returns either its result or a positive errno.
 * A method that throws gets EIO for that request only.
 */
import type { Attr, Statfs } from './codec.js';

export interface RequestContext {
  /** Caller's thread id in the daemon's pid namespace (0 if invisible, and always 0 on RELEASE/FORGET). */
  pid: number;
  uid: number;
  gid: number;
}

export interface EntryReply {
  /** 0 means "no such entry", cached by the kernel for entryTtlMs. */
  nodeid: number;
  attr: Attr | null;
  entryTtlMs: number;
  attrTtlMs: number;
}

export interface AttrReply {
  attr: Attr;
  attrTtlMs: number;
}

export interface OpenReply {
  fh: number;
  /** FOPEN_* flags, e.g. FOPEN_DIRECT_IO. */
  openFlags: number;
}

export type Errno = number;

export interface FuseFilesystem {
  lookup(ctx: RequestContext, parent: number, name: string): EntryReply | Errno;
  getattr(ctx: RequestContext, ino: number): AttrReply | Errno;
  readlink(ctx: RequestContext, ino: number): Buffer | Errno;
  open(ctx: RequestContext, ino: number, flags: number): OpenReply | Errno;
  /** Returns at most `size` bytes; an empty buffer is end of file. */
  read(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Buffer | Errno;
  release(ino: number, fh: number): void;
  opendir(ctx: RequestContext, ino: number): OpenReply | Errno;
  /** Returns whole encoded fuse_dirent records (see encodeDirents), at most `size` bytes. */
  readdir(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Buffer | Errno;
  releasedir(ino: number, fh: number): void;
  statfs(ctx: RequestContext): Statfs;
  /** Names used to label request metrics, and the label of a node (an index into `labels`). */
  readonly labels: readonly string[];
  labelOf(ino: number): number;
}

export function isErrno<T>(value: T | Errno): value is Errno {
  return typeof value === 'number';
}
