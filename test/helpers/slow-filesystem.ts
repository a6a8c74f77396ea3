/**
 * A tiny filesystem for engine tests: a root directory with two files, `fast` and `slow`.
 * Reading `slow` blocks its worker thread for `delayMs` (as a hung cgroup read would).
 */
import type { Logger } from '../../src/common/log.js';
import type { Attr, Statfs } from '../../src/fuse/codec.js';
import { encodeDirents, sliceDirents } from '../../src/fuse/codec.js';
import type {
  AttrReply,
  EntryReply,
  Errno,
  FuseFilesystem,
  OpenReply,
  RequestContext,
} from '../../src/fuse/filesystem.js';
import { DirentType, Errno as E, FOPEN_DIRECT_IO } from '../../src/fuse/protocol.js';

export interface SlowFilesystemConfig {
  delayMs: number;
  /** What this instance serves as file content (the fallback instance says "fallback"). */
  content: string;
}

const files = new Map([
  ['fast', 2],
  ['slow', 3],
]);

export function createFilesystem(config: SlowFilesystemConfig, _log: Logger): FuseFilesystem {
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const attr = (ino: number): Attr =>
    ino === 1
      ? { ino, size: 0, mode: 0o40555, nlink: 2, uid: 0, gid: 0, mtimeMs: 0 }
      : { ino, size: 4096, mode: 0o100444, nlink: 1, uid: 0, gid: 0, mtimeMs: 0 };
  return {
    labels: ['file'],
    labelOf: () => 0,
    lookup(_ctx: RequestContext, parent: number, name: string): EntryReply | Errno {
      const ino = parent === 1 ? files.get(name) : undefined;
      if (!ino) return E.ENOENT;
      return { nodeid: ino, attr: attr(ino), entryTtlMs: 1000, attrTtlMs: 1000 };
    },
    getattr(_ctx: RequestContext, ino: number): AttrReply | Errno {
      return ino <= 3 ? { attr: attr(ino), attrTtlMs: 1000 } : E.ENOENT;
    },
    readlink: () => E.EINVAL,
    open: (_ctx, ino): OpenReply | Errno => (ino === 1 ? E.EISDIR : { fh: 0, openFlags: FOPEN_DIRECT_IO }),
    read(_ctx: RequestContext, ino: number, _fh: number, offset: number, size: number): Buffer | Errno {
      if (ino === 3) Atomics.wait(sleeper, 0, 0, config.delayMs);
      return Buffer.from(`${config.content}\n`).subarray(offset, offset + size);
    },
    release() {},
    opendir: (_ctx, ino) => (ino === 1 ? { fh: 0, openFlags: 0 } : E.ENOTDIR),
    readdir(_ctx: RequestContext, _ino: number, _fh: number, offset: number, size: number): Buffer {
      const listing = encodeDirents([
        { name: '.', ino: 1, type: DirentType.DIR },
        { name: '..', ino: 1, type: DirentType.DIR },
        { name: 'fast', ino: 2, type: DirentType.REG },
        { name: 'slow', ino: 3, type: DirentType.REG },
      ]);
      return sliceDirents(listing, offset, size);
    },
    releasedir() {},
    statfs: (): Statfs => ({
      blocks: 0,
      bfree: 0,
      bavail: 0,
      files: 0,
      ffree: 0,
      bsize: 4096,
      namelen: 255,
      frsize: 4096,
    }),
  };
}
