/**
 * The kernel's seccomp user-notification ABI (include/uapi/linux/seccomp.h, filter.h,
 * audit.h) as plain data: ioctl numbers, structure layouts, and the classic-BPF filter that hands
 * `sysinfo(2)` to a listener. Pure: no system calls here, so every byte is unit-tested.
 */

export const SECCOMP_SET_MODE_FILTER = 1;
export const SECCOMP_GET_NOTIF_SIZES = 3;
export const SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3;

export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1;

/** _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp), _IOW('!', 2, __u64). */
export const SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100;
export const SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101;
export const SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102;
/** _IOW('!', 4, __u64), Linux 6.6+: with SYNC_WAKE_UP the caller and the listener hand over on one CPU. */
export const SECCOMP_IOCTL_NOTIF_SET_FLAGS = 0x40082104;
export const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP = 1;

export const NOTIF_SIZE = 80;
export const NOTIF_RESP_SIZE = 24;
/** struct sysinfo on 64-bit Linux (x86_64 and aarch64 alike). */
export const SYSINFO_SIZE = 112;

export const AUDIT_ARCH = { x64: 0xc000003e, arm64: 0xc00000b7 } as const;
/** The sysinfo system call number per architecture. */
export const SYSINFO_NR = { x64: 99, arm64: 179 } as const;
/** x32 system calls on x86_64 carry this bit; they are left alone (allowed). */
const X32_SYSCALL_BIT = 0x40000000;

export interface Notification {
  readonly id: bigint;
  readonly pid: number;
  readonly nr: number;
  readonly arch: number;
  /** args[0]: the caller's `struct sysinfo *`. */
  readonly arg0: bigint;
}

/** Decodes struct seccomp_notif { u64 id; u32 pid; u32 flags; struct seccomp_data data }. */
export function decodeNotification(buf: Buffer): Notification {
  return {
    id: buf.readBigUInt64LE(0),
    pid: buf.readUInt32LE(8),
    nr: buf.readInt32LE(16),
    arch: buf.readUInt32LE(20),
    arg0: buf.readBigUInt64LE(32),
  };
}

/**
 * Encodes struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags }. `error` is a
 * negative errno (the kernel's convention) or 0.
 */
export function encodeResponse(
  buf: Buffer,
  id: bigint,
  response: { val: number; error: number; flags: number },
): Buffer {
  buf.writeBigUInt64LE(id, 0);
  buf.writeBigInt64LE(BigInt(response.val), 8);
  buf.writeInt32LE(response.error, 16);
  buf.writeUInt32LE(response.flags, 20);
  return buf;
}

/** What `sysinfo(2)` returns, in the kernel's units (mem_unit 1: bytes). */
export interface SysinfoFields {
  /** Seconds since boot, rounded up as the kernel does. */
  readonly uptime: number;
  /** 1, 5 and 15-minute load averages in 1/65536 fixed point. */
  readonly loads: readonly [number, number, number];
  readonly totalram: number;
  readonly freeram: number;
  readonly sharedram: number;
  readonly bufferram: number;
  readonly totalswap: number;
  readonly freeswap: number;
  /** Number of threads (the kernel counts every task). */
  readonly procs: number;
}

/** Encodes struct sysinfo: offsets 0 uptime, 8 loads[3], 32..72 ram/swap, 80 procs, 88/96 high, 104 mem_unit. */
export function encodeSysinfo(fields: SysinfoFields, buf: Buffer = Buffer.alloc(SYSINFO_SIZE)): Buffer {
  buf.fill(0, 0, SYSINFO_SIZE);
  const u64 = (value: number, at: number) => buf.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(value))), at);
  buf.writeBigInt64LE(BigInt(Math.max(0, Math.floor(fields.uptime))), 0);
  fields.loads.forEach((load, i) => u64(load, 8 + 8 * i));
  u64(fields.totalram, 32);
  u64(fields.freeram, 40);
  u64(fields.sharedram, 48);
  u64(fields.bufferram, 56);
  u64(fields.totalswap, 64);
  u64(fields.freeswap, 72);
  // procs is an unsigned short in the kernel's struct: it saturates rather than wraps.
  buf.writeUInt16LE(Math.min(0xffff, Math.max(0, Math.floor(fields.procs))), 80);
  buf.writeUInt32LE(1, 104);
  return buf;
}

/** Decodes struct sysinfo (tests, and the benchmark's own check of answers). */
export function decodeSysinfo(buf: Buffer): SysinfoFields & { memUnit: number } {
  const n = (at: number) => Number(buf.readBigUInt64LE(at));
  return {
    uptime: Number(buf.readBigInt64LE(0)),
    loads: [n(8), n(16), n(24)],
    totalram: n(32),
    freeram: n(40),
    sharedram: n(48),
    bufferram: n(56),
    totalswap: n(64),
    freeswap: n(72),
    procs: buf.readUInt16LE(80),
    memUnit: buf.readUInt32LE(104),
  };
}

// Classic BPF opcodes (filter.h): BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K.
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;
/** Offsets in struct seccomp_data { int nr; u32 arch; ... }. */
const NR_OFFSET = 0;
const ARCH_OFFSET = 4;

/**
 * The filter: on the native architecture, `sysinfo` goes to the listener and everything else runs
 * as usual. Calls of other architectures (32-bit compat, x32) are allowed: the view serves only
 * the 64-bit struct layout, and the kernel's own answer beats an error.
 */
export function sysinfoFilter(arch: keyof typeof AUDIT_ARCH): Buffer {
  const program: [number, number, number, number][] = [
    [LD_W_ABS, 0, 0, ARCH_OFFSET],
    [JEQ_K, 0, 4, AUDIT_ARCH[arch]], // other architecture: allow
    [LD_W_ABS, 0, 0, NR_OFFSET],
    [JSET_K, 2, 0, arch === 'x64' ? X32_SYSCALL_BIT : 0], // x32 call: allow
    [JEQ_K, 0, 1, SYSINFO_NR[arch]],
    [RET_K, 0, 0, SECCOMP_RET_USER_NOTIF],
    [RET_K, 0, 0, SECCOMP_RET_ALLOW],
  ];
  const out = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    out.writeUInt16LE(code, i * 8);
    out.writeUInt8(jt, i * 8 + 2);
    out.writeUInt8(jf, i * 8 + 3);
    out.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return out;
}
