import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUDIT_ARCH,
  decodeNotification,
  decodeSysinfo,
  encodeResponse,
  encodeSysinfo,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_USER_NOTIF,
  SYSINFO_SIZE,
  sysinfoFilter,
} from '../../../src/syscall/seccomp-abi.js';

/**
 * A classic-BPF interpreter for the few instructions the filter uses, so the test checks what
 * the kernel would decide for a call, not the bytes we happened to emit.
 */
function runFilter(program: Buffer, data: { nr: number; arch: number }): number {
  const seccompData = Buffer.alloc(64);
  seccompData.writeInt32LE(data.nr, 0);
  seccompData.writeUInt32LE(data.arch, 4);
  let acc = 0;
  for (let pc = 0, steps = 0; steps < 64; steps++) {
    const at = pc * 8;
    assert.ok(at < program.length, 'the program runs off its end');
    const code = program.readUInt16LE(at);
    const jt = program.readUInt8(at + 2);
    const jf = program.readUInt8(at + 3);
    const k = program.readUInt32LE(at + 4);
    switch (code) {
      case 0x20: // ld w abs
        acc = seccompData.readUInt32LE(k);
        pc++;
        break;
      case 0x15: // jeq k
        pc += 1 + (acc === k ? jt : jf);
        break;
      case 0x45: // jset k
        pc += 1 + ((acc & k) !== 0 ? jt : jf);
        break;
      case 0x06: // ret k
        return k;
      default:
        assert.fail(`unexpected opcode ${code.toString(16)}`);
    }
  }
  return assert.fail('the program does not end');
}

describe('the sysinfo seccomp filter', () => {
  const x64 = sysinfoFilter('x64');
  it('hands sysinfo (99) on x86_64 to the listener', () => {
    assert.equal(runFilter(x64, { nr: 99, arch: AUDIT_ARCH.x64 }), SECCOMP_RET_USER_NOTIF);
  });
  it('allows every other x86_64 call', () => {
    for (const nr of [0, 1, 59, 98, 100, 317, 434]) {
      assert.equal(runFilter(x64, { nr, arch: AUDIT_ARCH.x64 }), SECCOMP_RET_ALLOW, `syscall ${nr}`);
    }
  });
  it('leaves x32 and 32-bit compat calls to the kernel (the 64-bit layout is the only one served)', () => {
    assert.equal(runFilter(x64, { nr: 0x40000000 | 99, arch: AUDIT_ARCH.x64 }), SECCOMP_RET_ALLOW);
    assert.equal(runFilter(x64, { nr: 116, arch: 0x40000003 /* i386 */ }), SECCOMP_RET_ALLOW);
    assert.equal(runFilter(x64, { nr: 99, arch: 0x40000003 }), SECCOMP_RET_ALLOW);
  });
  it('uses aarch64\'s number (179) there', () => {
    const arm = sysinfoFilter('arm64');
    assert.equal(runFilter(arm, { nr: 179, arch: AUDIT_ARCH.arm64 }), SECCOMP_RET_USER_NOTIF);
    assert.equal(runFilter(arm, { nr: 99, arch: AUDIT_ARCH.arm64 }), SECCOMP_RET_ALLOW);
    assert.equal(runFilter(arm, { nr: 179, arch: AUDIT_ARCH.x64 }), SECCOMP_RET_ALLOW);
  });
});

describe('struct sysinfo', () => {
  const fields = {
    uptime: 4242,
    loads: [65536, 32768, 1] as [number, number, number],
    totalram: 268435456,
    freeram: 100 * 1048576,
    sharedram: 4096,
    bufferram: 0,
    totalswap: 2 ** 40,
    freeswap: 2 ** 39,
    procs: 7,
  };
  it('is 112 bytes with the kernel\'s offsets and mem_unit 1', () => {
    const buf = encodeSysinfo(fields);
    assert.equal(buf.length, SYSINFO_SIZE);
    assert.equal(buf.readBigInt64LE(0), 4242n);
    assert.equal(buf.readBigUInt64LE(8), 65536n);
    assert.equal(buf.readBigUInt64LE(24), 1n);
    assert.equal(buf.readBigUInt64LE(32), 268435456n);
    assert.equal(buf.readBigUInt64LE(64), 2n ** 40n);
    assert.equal(buf.readUInt16LE(80), 7);
    assert.equal(buf.readBigUInt64LE(88), 0n, 'totalhigh');
    assert.equal(buf.readUInt32LE(104), 1, 'mem_unit');
    assert.deepEqual({ ...decodeSysinfo(buf), memUnit: undefined }, { ...fields, memUnit: undefined });
  });
  it('saturates procs at 65535 (an unsigned short) and never writes negatives', () => {
    const buf = encodeSysinfo({ ...fields, procs: 100000, freeram: -5, uptime: -1 });
    assert.equal(buf.readUInt16LE(80), 65535);
    assert.equal(buf.readBigUInt64LE(40), 0n);
    assert.equal(buf.readBigInt64LE(0), 0n);
  });
  it('clears a reused buffer', () => {
    const buf = Buffer.alloc(SYSINFO_SIZE, 0xff);
    encodeSysinfo(fields, buf);
    assert.equal(buf.readBigUInt64LE(96), 0n);
    assert.equal(buf.readUInt16LE(82), 0);
  });
});

describe('notification and response', () => {
  it('decodes struct seccomp_notif', () => {
    const buf = Buffer.alloc(80);
    buf.writeBigUInt64LE(0x1122334455667788n, 0);
    buf.writeUInt32LE(4242, 8);
    buf.writeInt32LE(99, 16);
    buf.writeUInt32LE(AUDIT_ARCH.x64, 20);
    buf.writeBigUInt64LE(0x7ffd12345678n, 32);
    assert.deepEqual(decodeNotification(buf), {
      id: 0x1122334455667788n,
      pid: 4242,
      nr: 99,
      arch: AUDIT_ARCH.x64,
      arg0: 0x7ffd12345678n,
    });
  });
  it('encodes struct seccomp_notif_resp with a negative errno', () => {
    const buf = encodeResponse(Buffer.alloc(24), 5n, { val: 0, error: -14, flags: 1 });
    assert.equal(buf.readBigUInt64LE(0), 5n);
    assert.equal(buf.readBigInt64LE(8), 0n);
    assert.equal(buf.readInt32LE(16), -14);
    assert.equal(buf.readUInt32LE(20), 1);
  });
});
