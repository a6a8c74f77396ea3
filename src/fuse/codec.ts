/**
 * Byte-level encoding and decoding of FUSE messages. Node ids and file handles are kept as plain
 * numbers: the filesystem chooses them and keeps them below 2^53, and the kernel only echoes them.
 */
import { type DirentType, StructSize } from './protocol.js';

export interface InHeader {
  /** Total request length in bytes, header included. */
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  /** Caller's thread id in our pid namespace; 0 when the caller is not visible there (or for RELEASE/FORGET). */
  pid: number;
}

const TWO_32 = 0x1_0000_0000;

/** Reads a u64 that is known to fit in a JS number (node ids, file handles, offsets, counts). */
export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_32;
}

export function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32LE(value >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_32) >>> 0, offset + 4);
}

export function readInHeader(buf: Buffer): InHeader {
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: readU64(buf, 16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
  };
}

/** Writes the 16-byte out header; `error` is a positive errno or 0 (the wire carries it negated). */
export function writeOutHeader(buf: Buffer, len: number, error: number, unique: bigint): void {
  buf.writeUInt32LE(len, 0);
  buf.writeInt32LE(error === 0 ? 0 : -error, 4);
  buf.writeBigUInt64LE(unique, 8);
}

/** A name argument: NUL-terminated bytes starting at `offset`. */
export function readCString(buf: Buffer, offset: number, end: number): string {
  let stop = buf.indexOf(0, offset);
  if (stop < 0 || stop > end) stop = end;
  return buf.toString('utf8', offset, stop);
}

export interface Attr {
  ino: number;
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** Modification (and change/access) time in milliseconds since the epoch. */
  mtimeMs: number;
  blksize?: number;
}

/** fuse_attr, 88 bytes. */
export function writeAttr(buf: Buffer, offset: number, attr: Attr): void {
  const seconds = Math.floor(attr.mtimeMs / 1000);
  const nanos = Math.floor((attr.mtimeMs - seconds * 1000) * 1e6);
  writeU64(buf, attr.ino, offset);
  writeU64(buf, attr.size, offset + 8);
  writeU64(buf, Math.ceil(attr.size / 512), offset + 16);
  writeU64(buf, seconds, offset + 24); // atime
  writeU64(buf, seconds, offset + 32); // mtime
  writeU64(buf, seconds, offset + 40); // ctime
  buf.writeUInt32LE(nanos, offset + 48);
  buf.writeUInt32LE(nanos, offset + 52);
  buf.writeUInt32LE(nanos, offset + 56);
  buf.writeUInt32LE(attr.mode, offset + 60);
  buf.writeUInt32LE(attr.nlink, offset + 64);
  buf.writeUInt32LE(attr.uid, offset + 68);
  buf.writeUInt32LE(attr.gid, offset + 72);
  buf.writeUInt32LE(0, offset + 76); // rdev
  buf.writeUInt32LE(attr.blksize ?? 4096, offset + 80);
  buf.writeUInt32LE(0, offset + 84); // flags
}

function writeTtl(buf: Buffer, secondsOffset: number, nanosOffset: number, ttlMs: number): void {
  const seconds = Math.floor(ttlMs / 1000);
  writeU64(buf, seconds, secondsOffset);
  buf.writeUInt32LE(Math.round((ttlMs - seconds * 1000) * 1e6), nanosOffset);
}

/** fuse_entry_out, 128 bytes. `nodeid` 0 with a TTL is a negative entry the kernel caches. */
export function writeEntryOut(
  buf: Buffer,
  offset: number,
  nodeid: number,
  entryTtlMs: number,
  attrTtlMs: number,
  attr: Attr | null,
): number {
  buf.fill(0, offset, offset + StructSize.ENTRY_OUT);
  writeU64(buf, nodeid, offset);
  // generation stays 0: node ids are never reused for a different file.
  writeTtl(buf, offset + 16, offset + 32, entryTtlMs);
  writeTtl(buf, offset + 24, offset + 36, attrTtlMs);
  if (attr) writeAttr(buf, offset + 40, attr);
  return StructSize.ENTRY_OUT;
}

/** fuse_attr_out, 104 bytes. */
export function writeAttrOut(buf: Buffer, offset: number, attrTtlMs: number, attr: Attr): number {
  writeTtl(buf, offset, offset + 8, attrTtlMs);
  buf.writeUInt32LE(0, offset + 12);
  writeAttr(buf, offset + 16, attr);
  return StructSize.ATTR_OUT;
}

/** fuse_open_out, 16 bytes. */
export function writeOpenOut(buf: Buffer, offset: number, fh: number, openFlags: number): number {
  writeU64(buf, fh, offset);
  buf.writeUInt32LE(openFlags, offset + 8);
  buf.writeUInt32LE(0, offset + 12);
  return StructSize.OPEN_OUT;
}

export interface Statfs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

/** fuse_statfs_out (fuse_kstatfs), 80 bytes. */
export function writeStatfsOut(buf: Buffer, offset: number, st: Statfs): number {
  buf.fill(0, offset, offset + StructSize.STATFS_OUT);
  writeU64(buf, st.blocks, offset);
  writeU64(buf, st.bfree, offset + 8);
  writeU64(buf, st.bavail, offset + 16);
  writeU64(buf, st.files, offset + 24);
  writeU64(buf, st.ffree, offset + 32);
  buf.writeUInt32LE(st.bsize, offset + 40);
  buf.writeUInt32LE(st.namelen, offset + 44);
  buf.writeUInt32LE(st.frsize, offset + 48);
  return StructSize.STATFS_OUT;
}

export interface DirEntry {
  name: string;
  ino: number;
  type: (typeof DirentType)[keyof typeof DirentType];
}

/**
 * Encodes a whole directory listing as consecutive fuse_dirent records. Each record's `off`
 * field is the byte offset of the record after it, so a READDIR offset is a position in this
 * buffer and a listing can be served in pieces from one snapshot.
 */
export function encodeDirents(entries: readonly DirEntry[]): Buffer {
  const names = entries.map((e) => Buffer.from(e.name, 'utf8'));
  let total = 0;
  for (const name of names) total += direntSize(name.length);
  const out = Buffer.alloc(total);
  let pos = 0;
  entries.forEach((entry, i) => {
    const name = names[i]!;
    const size = direntSize(name.length);
    writeU64(out, entry.ino, pos);
    writeU64(out, pos + size, pos + 8);
    out.writeUInt32LE(name.length, pos + 16);
    out.writeUInt32LE(entry.type, pos + 20);
    name.copy(out, pos + StructSize.DIRENT_BASE);
    pos += size;
  });
  return out;
}

export function direntSize(nameLength: number): number {
  return (StructSize.DIRENT_BASE + nameLength + 7) & ~7;
}

/**
 * The records of an encoded listing that start at byte `offset` and fit in `size` bytes
 * (whole records only, as the kernel requires).
 */
export function sliceDirents(listing: Buffer, offset: number, size: number): Buffer {
  if (offset >= listing.length || offset + StructSize.DIRENT_BASE > listing.length)
    return listing.subarray(0, 0);
  let end = offset;
  while (end < listing.length) {
    const next = end + direntSize(listing.readUInt32LE(end + 16));
    if (next > listing.length || next - offset > size) break;
    end = next;
  }
  return listing.subarray(offset, end);
}
