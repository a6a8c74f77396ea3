/**
 * Turns one request from /dev/fuse into one reply: decodes the op's arguments, calls the
 * filesystem, encodes the answer. Knows nothing about what the files contain.
 */
import type { Logger } from '../common/log.js';
import {
  type InHeader,
  readCString,
  readInHeader,
  readU64,
  writeAttrOut,
  writeEntryOut,
  writeOpenOut,
  writeOutHeader,
  writeStatfsOut,
} from './codec.js';
import { type FuseFilesystem, isErrno, type RequestContext } from './filesystem.js';
import {
  declinedOpcodes,
  Errno,
  noReplyOpcodes,
  Opcode,
  opcodeNames,
  StructSize,
  writeOpcodes,
} from './protocol.js';

const BODY = StructSize.IN_HEADER;
const REPLY_BODY = StructSize.OUT_HEADER;

/** Called after every request, for metrics; `errno` is 0 on success. */
export type RequestObserver = (opcode: number, nodeid: number, errno: number, seconds: number) => void;

export class RequestDispatcher {
  constructor(
    private readonly fs: FuseFilesystem,
    private readonly log: Logger,
    private readonly observe: RequestObserver | null = null,
  ) {}

  /**
   * Handles the request in `req[0, length)` and writes the reply into `out`.
   * Returns the reply length, or 0 when the kernel expects no reply.
   */
  handle(req: Buffer, length: number, out: Buffer): number {
    const started = this.observe ? performance.now() : 0;
    const header = readInHeader(req);
    let replyLength: number;
    let errno = 0;
    try {
      replyLength = this.answer(header, req, length, out);
    } catch (err) {
      // One failing request must never take the loop (and every other caller) down with it.
      this.log.error(
        { err, op: opcodeNames[header.opcode] ?? header.opcode, nodeid: header.nodeid },
        'request failed',
      );
      replyLength = this.error(out, header.unique, Errno.EIO);
    }
    if (replyLength > 0) {
      errno = -out.readInt32LE(4);
    }
    if (this.observe) this.observe(header.opcode, header.nodeid, errno, (performance.now() - started) / 1000);
    return replyLength;
  }

  private answer(h: InHeader, req: Buffer, length: number, out: Buffer): number {
    const ctx: RequestContext = { pid: h.pid, uid: h.uid, gid: h.gid };
    const fs = this.fs;
    switch (h.opcode) {
      case Opcode.LOOKUP: {
        const r = fs.lookup(ctx, h.nodeid, readCString(req, BODY, length));
        if (isErrno(r)) return this.error(out, h.unique, r);
        return this.ok(
          out,
          h.unique,
          writeEntryOut(out, REPLY_BODY, r.nodeid, r.entryTtlMs, r.attrTtlMs, r.attr),
        );
      }
      case Opcode.GETATTR: {
        const r = fs.getattr(ctx, h.nodeid);
        if (isErrno(r)) return this.error(out, h.unique, r);
        return this.ok(out, h.unique, writeAttrOut(out, REPLY_BODY, r.attrTtlMs, r.attr));
      }
      case Opcode.READLINK: {
        const r = fs.readlink(ctx, h.nodeid);
        if (isErrno(r)) return this.error(out, h.unique, r);
        return this.data(out, h.unique, r);
      }
      case Opcode.OPEN:
      case Opcode.OPENDIR: {
        const flags = req.readUInt32LE(BODY);
        const r = h.opcode === Opcode.OPEN ? fs.open(ctx, h.nodeid, flags) : fs.opendir(ctx, h.nodeid);
        if (isErrno(r)) return this.error(out, h.unique, r);
        return this.ok(out, h.unique, writeOpenOut(out, REPLY_BODY, r.fh, r.openFlags));
      }
      case Opcode.READ:
      case Opcode.READDIR: {
        const fh = readU64(req, BODY);
        const offset = readU64(req, BODY + 8);
        const size = Math.min(req.readUInt32LE(BODY + 16), out.length - REPLY_BODY);
        const r =
          h.opcode === Opcode.READ
            ? fs.read(ctx, h.nodeid, fh, offset, size)
            : fs.readdir(ctx, h.nodeid, fh, offset, size);
        if (isErrno(r)) return this.error(out, h.unique, r);
        return this.data(out, h.unique, r.length > size ? r.subarray(0, size) : r);
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR: {
        const fh = readU64(req, BODY);
        if (h.opcode === Opcode.RELEASE) fs.release(h.nodeid, fh);
        else fs.releasedir(h.nodeid, fh);
        return this.ok(out, h.unique, 0);
      }
      case Opcode.STATFS:
        return this.ok(out, h.unique, writeStatfsOut(out, REPLY_BODY, fs.statfs(ctx)));
      case Opcode.DESTROY:
        return this.ok(out, h.unique, 0);
      case Opcode.INIT:
        // INIT is negotiated once, before any loop starts; a second one is a protocol violation.
        return this.error(out, h.unique, Errno.EPROTO);
      default:
        if (noReplyOpcodes.has(h.opcode)) {
          // FORGET/BATCH_FORGET: node ids are derived from paths, nothing to free.
          // INTERRUPT: handlers are short and synchronous; the answer is on its way anyway.
          return 0;
        }
        if (writeOpcodes.has(h.opcode)) return this.error(out, h.unique, Errno.EROFS);
        if (!declinedOpcodes.has(h.opcode)) {
          this.log.debug({ opcode: h.opcode }, 'unknown opcode answered ENOSYS');
        }
        return this.error(out, h.unique, Errno.ENOSYS);
    }
  }

  private ok(out: Buffer, unique: bigint, bodyLength: number): number {
    const len = REPLY_BODY + bodyLength;
    writeOutHeader(out, len, 0, unique);
    return len;
  }

  private data(out: Buffer, unique: bigint, payload: Buffer): number {
    payload.copy(out, REPLY_BODY);
    return this.ok(out, unique, payload.length);
  }

  private error(out: Buffer, unique: bigint, errno: number): number {
    writeOutHeader(out, REPLY_BODY, errno, unique);
    return REPLY_BODY;
  }
}
