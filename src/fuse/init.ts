/**
 * INIT negotiation: the first request on a new connection. Done once per mount by the process
 * that mounted; a serving process that re-attaches to the connection later reuses the result.
 */
import { readSync, writeSync } from 'node:fs';
import { readInHeader, writeOutHeader } from './codec.js';
import {
  FUSE_KERNEL_VERSION,
  FUSE_MIN_READ_BUFFER,
  FUSE_OUR_MINOR,
  InitFlag,
  Opcode,
  StructSize,
} from './protocol.js';

export interface InitRequest {
  major: number;
  minor: number;
  maxReadahead: number;
  /** flags | flags2 << 32 as offered by the kernel. */
  flags: bigint;
}

export interface NegotiatedSession {
  /** Protocol minor both sides use. */
  minor: number;
  maxWrite: number;
  /** Flags we enabled (a subset of the kernel's offer). */
  flags: string;
  /** The kernel can resend in-flight requests to a restarted server (FUSE_NOTIFY_RESEND). */
  canResend: boolean;
  /** Seconds after which the kernel aborts the connection for an unanswered request; 0 = none. */
  requestTimeoutSec: number;
  /** Size of the buffer every read(2) of /dev/fuse must offer. */
  readBufferSize: number;
  /** Largest READ payload the kernel will ask for. */
  maxRead: number;
}

export interface InitPreferences {
  /** Kernel-enforced deadline per request (FUSE 7.43+); 0 disables. */
  requestTimeoutSec: number;
}

const MAX_PAGES = 32; // 128 KiB per READ
const PAGE = 4096;
// The view never receives writes; the smallest sane max_write keeps the read buffer small.
const MAX_WRITE = 4096;

const WANTED =
  InitFlag.ASYNC_READ |
  InitFlag.PARALLEL_DIROPS |
  InitFlag.MAX_PAGES |
  InitFlag.CACHE_SYMLINKS |
  InitFlag.INIT_EXT |
  InitFlag.HAS_RESEND |
  InitFlag.REQUEST_TIMEOUT;

export function parseInitRequest(buf: Buffer, length: number): InitRequest {
  const body = StructSize.IN_HEADER;
  if (length < body + StructSize.INIT_IN_MIN) throw new Error(`INIT request too short (${length} bytes)`);
  const major = buf.readUInt32LE(body);
  const minor = buf.readUInt32LE(body + 4);
  const maxReadahead = length >= body + 12 ? buf.readUInt32LE(body + 8) : 0;
  let flags = length >= body + 16 ? BigInt(buf.readUInt32LE(body + 12)) : 0n;
  if (flags & InitFlag.INIT_EXT && length >= body + 20) flags |= BigInt(buf.readUInt32LE(body + 16)) << 32n;
  return { major, minor, maxReadahead, flags };
}

/**
 * Builds the INIT reply (header included) for the given offer. The reply's size depends on the
 * negotiated minor: the kernel rejects a longer reply and kills the connection.
 */
export function buildInitReply(
  unique: bigint,
  req: InitRequest,
  prefs: InitPreferences,
): { reply: Buffer; session: NegotiatedSession } {
  if (req.major !== FUSE_KERNEL_VERSION) {
    throw new Error(`kernel speaks FUSE ${req.major}.${req.minor}; only major version 7 is supported`);
  }
  const minor = Math.min(req.minor, FUSE_OUR_MINOR);
  let enabled = req.flags & WANTED;
  if (prefs.requestTimeoutSec <= 0 || minor < 43) enabled &= ~InitFlag.REQUEST_TIMEOUT;
  const bodySize =
    minor < 5
      ? StructSize.INIT_OUT_COMPAT_5
      : minor < 23
        ? StructSize.INIT_OUT_COMPAT_22
        : StructSize.INIT_OUT_FULL;
  const reply = Buffer.alloc(StructSize.OUT_HEADER + bodySize);
  writeOutHeader(reply, reply.length, 0, unique);
  const o = StructSize.OUT_HEADER;
  reply.writeUInt32LE(FUSE_KERNEL_VERSION, o);
  reply.writeUInt32LE(minor, o + 4);
  if (bodySize > StructSize.INIT_OUT_COMPAT_5) {
    reply.writeUInt32LE(req.maxReadahead, o + 8);
    reply.writeUInt32LE(Number(enabled & 0xffffffffn), o + 12);
    reply.writeUInt16LE(16, o + 16); // max_background
    reply.writeUInt16LE(12, o + 18); // congestion_threshold
    reply.writeUInt32LE(MAX_WRITE, o + 20);
  }
  if (bodySize === StructSize.INIT_OUT_FULL) {
    reply.writeUInt32LE(1, o + 24); // time_gran: nanoseconds
    reply.writeUInt16LE(enabled & InitFlag.MAX_PAGES ? MAX_PAGES : 0, o + 28);
    reply.writeUInt32LE(Number((enabled >> 32n) & 0xffffffffn), o + 32); // flags2
    if (enabled & InitFlag.REQUEST_TIMEOUT)
      reply.writeUInt16LE(Math.min(prefs.requestTimeoutSec, 0xffff), o + 40);
  }
  const maxRead = (enabled & InitFlag.MAX_PAGES ? MAX_PAGES : 32) * PAGE;
  const session: NegotiatedSession = {
    minor,
    maxWrite: MAX_WRITE,
    flags: `0x${enabled.toString(16)}`,
    canResend: (req.flags & InitFlag.HAS_RESEND) !== 0n && minor >= 40,
    requestTimeoutSec: enabled & InitFlag.REQUEST_TIMEOUT ? prefs.requestTimeoutSec : 0,
    readBufferSize: Math.max(FUSE_MIN_READ_BUFFER, StructSize.IN_HEADER + 40 + MAX_WRITE) + PAGE,
    maxRead,
  };
  return { reply, session };
}

/** Reads the INIT request from a freshly mounted connection and answers it. */
export function negotiateInit(fd: number, prefs: InitPreferences): NegotiatedSession {
  const buf = Buffer.alloc(64 * 1024);
  const n = readSync(fd, buf, 0, buf.length, null);
  const header = readInHeader(buf);
  if (header.opcode !== Opcode.INIT)
    throw new Error(`expected INIT as the first request, got opcode ${header.opcode}`);
  const { reply, session } = buildInitReply(header.unique, parseInitRequest(buf, n), prefs);
  writeSync(fd, reply, 0, reply.length);
  return session;
}
