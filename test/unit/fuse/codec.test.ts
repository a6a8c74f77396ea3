import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  direntSize,
  encodeDirents,
  readCString,
  readInHeader,
  readU64,
  sliceDirents,
  writeAttrOut,
  writeEntryOut,
  writeOutHeader,
  writeU64,
} from '../../../src/fuse/codec.js';
import { DirentType, StructSize } from '../../../src/fuse/protocol.js';

test('in_header is decoded field by field (40 bytes, little-endian)', () => {
  const buf = Buffer.alloc(40);
  buf.writeUInt32LE(45, 0);
  buf.writeUInt32LE(1, 4); // LOOKUP
  buf.writeBigUInt64LE(0x8000000000000012n, 8); // a resent request keeps its high bit
  buf.writeBigUInt64LE(2n ** 52n + 7n, 16);
  buf.writeUInt32LE(1000, 24);
  buf.writeUInt32LE(1001, 28);
  buf.writeUInt32LE(4242, 32);
  assert.deepEqual(readInHeader(buf), {
    len: 45,
    opcode: 1,
    unique: 0x8000000000000012n,
    nodeid: 2 ** 52 + 7,
    uid: 1000,
    gid: 1001,
    pid: 4242,
  });
});

test('u64 helpers round-trip values up to 2^53', () => {
  const buf = Buffer.alloc(8);
  for (const v of [0, 1, 0xffffffff, 0x1_0000_0000, 2 ** 53 - 1]) {
    writeU64(buf, v, 0);
    assert.equal(readU64(buf, 0), v);
    assert.equal(buf.readBigUInt64LE(0), BigInt(v));
  }
});

test('out_header carries the errno negated and the unique unchanged', () => {
  const buf = Buffer.alloc(16);
  writeOutHeader(buf, 16, 2, 77n);
  assert.equal(buf.readUInt32LE(0), 16);
  assert.equal(buf.readInt32LE(4), -2);
  assert.equal(buf.readBigUInt64LE(8), 77n);
});

test('names stop at the NUL terminator', () => {
  const buf = Buffer.concat([Buffer.alloc(40), Buffer.from('meminfo\0junk')]);
  assert.equal(readCString(buf, 40, buf.length), 'meminfo');
});

test('entry_out: node id, TTLs split into seconds and nanoseconds, attr at byte 40', () => {
  const buf = Buffer.alloc(StructSize.ENTRY_OUT);
  const attr = { ino: 5, size: 4096, mode: 0o100444, nlink: 1, uid: 0, gid: 0, mtimeMs: 1_700_000_000_250 };
  assert.equal(writeEntryOut(buf, 0, 5, 1500, 1000, attr), 128);
  assert.equal(buf.readBigUInt64LE(0), 5n);
  assert.equal(buf.readBigUInt64LE(8), 0n, 'generation');
  assert.equal(buf.readBigUInt64LE(16), 1n, 'entry_valid seconds');
  assert.equal(buf.readBigUInt64LE(24), 1n, 'attr_valid seconds');
  assert.equal(buf.readUInt32LE(32), 500_000_000, 'entry_valid_nsec');
  assert.equal(buf.readUInt32LE(36), 0, 'attr_valid_nsec');
  assert.equal(buf.readBigUInt64LE(40), 5n, 'attr.ino');
  assert.equal(buf.readBigUInt64LE(48), 4096n, 'attr.size');
  assert.equal(buf.readBigUInt64LE(56), 8n, 'attr.blocks (512-byte units)');
  assert.equal(buf.readBigUInt64LE(72), 1_700_000_000n, 'mtime seconds');
  assert.equal(buf.readUInt32LE(92), 250_000_000, 'mtime nsec');
  assert.equal(buf.readUInt32LE(100), 0o100444, 'mode');
  assert.equal(buf.readUInt32LE(104), 1, 'nlink');
  assert.equal(buf.readUInt32LE(120), 4096, 'blksize');
});

test('a negative entry is node id 0 with a TTL and no attributes', () => {
  const buf = Buffer.alloc(StructSize.ENTRY_OUT, 0xff);
  writeEntryOut(buf, 0, 0, 1000, 0, null);
  assert.equal(buf.readBigUInt64LE(0), 0n);
  assert.equal(buf.readBigUInt64LE(16), 1n);
  assert.ok(buf.subarray(40).every((b) => b === 0));
});

test('attr_out is 104 bytes with the attr at byte 16', () => {
  const buf = Buffer.alloc(StructSize.ATTR_OUT);
  const n = writeAttrOut(buf, 0, 1000, {
    ino: 9,
    size: 0,
    mode: 0o40555,
    nlink: 2,
    uid: 0,
    gid: 0,
    mtimeMs: 0,
  });
  assert.equal(n, 104);
  assert.equal(buf.readBigUInt64LE(0), 1n);
  assert.equal(buf.readBigUInt64LE(16), 9n);
  assert.equal(buf.readUInt32LE(16 + 60), 0o40555);
});

test('dirents are padded to 8 bytes and each off points at the next record', () => {
  const listing = encodeDirents([
    { name: '.', ino: 1, type: DirentType.DIR },
    { name: 'meminfo', ino: 5, type: DirentType.REG },
    { name: 'a-longer-name', ino: 6, type: DirentType.REG },
  ]);
  assert.equal(direntSize(1), 32);
  assert.equal(direntSize(7), 32);
  assert.equal(direntSize(13), 40);
  assert.equal(listing.length, 32 + 32 + 40);
  assert.equal(listing.readBigUInt64LE(8), 32n);
  assert.equal(listing.readBigUInt64LE(32 + 8), 64n);
  assert.equal(listing.readBigUInt64LE(64 + 8), 104n);
  assert.equal(listing.readUInt32LE(32 + 16), 7);
  assert.equal(listing.readUInt32LE(32 + 20), DirentType.REG);
  assert.equal(listing.toString('utf8', 32 + 24, 32 + 24 + 7), 'meminfo');
});

test('a listing is served in whole records that fit the requested size', () => {
  const listing = encodeDirents(
    Array.from({ length: 10 }, (_, i) => ({ name: `entry${i}`, ino: i + 1, type: DirentType.REG })),
  );
  const first = sliceDirents(listing, 0, 70);
  assert.equal(first.length, 64, 'two 32-byte records fit in 70 bytes, not three');
  const rest = sliceDirents(listing, 64, 4096);
  assert.equal(rest.length, listing.length - 64);
  assert.equal(sliceDirents(listing, listing.length, 4096).length, 0, 'end of directory');
  assert.equal(sliceDirents(listing, 0, 10).length, 0, 'nothing fits');
});
