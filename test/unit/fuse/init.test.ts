import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildInitReply, parseInitRequest } from '../../../src/fuse/init.js';
import { InitFlag } from '../../../src/fuse/protocol.js';

function initRequest(minor: number, flags: bigint): Buffer {
  const buf = Buffer.alloc(40 + 64);
  buf.writeUInt32LE(buf.length, 0);
  buf.writeUInt32LE(26, 4);
  buf.writeUInt32LE(7, 40);
  buf.writeUInt32LE(minor, 44);
  buf.writeUInt32LE(131072, 48);
  buf.writeUInt32LE(Number(flags & 0xffffffffn), 52);
  buf.writeUInt32LE(Number(flags >> 32n), 56);
  return buf;
}

// What kernel 6.18 offered here: flags 0x73fffffb, flags2 0x5fd.
const OFFER_6_18 = 0x73fffffbn | (0x5fdn << 32n);

test('the kernel offer is parsed with flags2 when INIT_EXT is set', () => {
  const req = parseInitRequest(initRequest(45, OFFER_6_18), 104);
  assert.equal(req.minor, 45);
  assert.equal(req.maxReadahead, 131072);
  assert.equal(req.flags, OFFER_6_18);
});

test('a modern kernel gets a 64-byte reply at our minor, with resend and only flags we implement', () => {
  const { reply, session } = buildInitReply(2n, parseInitRequest(initRequest(45, OFFER_6_18), 104), {
    requestTimeoutSec: 30,
  });
  assert.equal(reply.length, 16 + 64);
  assert.equal(reply.readUInt32LE(0), reply.length);
  assert.equal(reply.readBigUInt64LE(8), 2n);
  assert.equal(reply.readUInt32LE(16), 7);
  assert.equal(reply.readUInt32LE(20), 43);
  const flags = BigInt(reply.readUInt32LE(28)) | (BigInt(reply.readUInt32LE(48)) << 32n);
  assert.equal(flags & ~OFFER_6_18, 0n, 'never enables a flag the kernel did not offer');
  assert.ok(flags & InitFlag.INIT_EXT);
  assert.ok(flags & InitFlag.HAS_RESEND);
  assert.ok(flags & InitFlag.REQUEST_TIMEOUT);
  assert.equal(reply.readUInt16LE(16 + 40), 30, 'request_timeout seconds');
  assert.equal(reply.readUInt16LE(16 + 28), 32, 'max_pages');
  assert.equal(session.canResend, true);
  assert.equal(session.requestTimeoutSec, 30);
  assert.ok(session.readBufferSize >= 8192);
});

test('without a requested timeout the timeout flag stays off', () => {
  const { reply, session } = buildInitReply(2n, parseInitRequest(initRequest(45, OFFER_6_18), 104), {
    requestTimeoutSec: 0,
  });
  const flags2 = BigInt(reply.readUInt32LE(48)) << 32n;
  assert.equal(flags2 & InitFlag.REQUEST_TIMEOUT, 0n);
  assert.equal(session.requestTimeoutSec, 0);
});

test('reply sizes follow the negotiated minor (a longer reply would kill the connection)', () => {
  const sizeFor = (minor: number) =>
    buildInitReply(2n, parseInitRequest(initRequest(minor, 0n), 104), { requestTimeoutSec: 0 }).reply.length -
    16;
  assert.equal(sizeFor(4), 8);
  assert.equal(sizeFor(22), 24);
  assert.equal(sizeFor(23), 64);
  assert.equal(sizeFor(39), 64);
});

test('an old kernel cannot resend', () => {
  const { session } = buildInitReply(2n, parseInitRequest(initRequest(36, 1n << 30n), 104), {
    requestTimeoutSec: 0,
  });
  assert.equal(session.minor, 36);
  assert.equal(session.canResend, false);
});

test('a different major version is refused', () => {
  const buf = initRequest(45, 0n);
  buf.writeUInt32LE(8, 40);
  assert.throws(
    () => buildInitReply(2n, parseInitRequest(buf, 104), { requestTimeoutSec: 0 }),
    /major version 7/,
  );
});
