/**
 * The handover protocol between a running agent (the holder of a view's FUSE connection) and a
 * new one that takes the connection over: JSON lines on a Unix socket in the view's parent
 * directory. Pure: parsing and checking only, so every malformed message is refused the same way
 * on both sides.
 *
 *   new -> old   hello     {protocol, pid, version}
 *   old -> new   offer     the descriptor numbers to copy (pidfd_getfd) and the session's state
 *   new -> old   taken     the copies are made and the new serving process is ready
 *   old -> new   released  the old serving process is gone: nobody else reads the connection
 *   new -> old   done      the new agent serves (it asked for a resend); the old one exits
 *   either       refused   {reason}, then the connection is closed
 *
 * Until `done`, the old agent resumes serving whenever the new one goes away or stalls, so a
 * failed takeover leaves the old agent serving, never nobody.
 */
import { basename, dirname, join } from 'node:path';
import type { NegotiatedSession } from '../../fuse/init.js';
import type { ListenerRegistration } from '../../syscall/container-state.js';
import { RECORD_DIRECTORY } from '../repair/unbind-record.js';

export const HANDOVER_PROTOCOL = 1;
/** No message of the protocol comes near this; a longer line is refused. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** A seccomp listener the old agent holds: its descriptor number there, and what it serves. */
export interface OfferedListener extends ListenerRegistration {
  readonly fd: number;
}

export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: number;
  readonly pid: number;
  readonly version: string;
}

export interface OfferMessage {
  readonly type: 'offer';
  readonly protocol: number;
  readonly pid: number;
  readonly version: string;
  /** The old agent's last serving process generation; the new one continues the count. */
  readonly generation: number;
  readonly fuseFd: number;
  readonly inflightFd: number | null;
  readonly listeners: readonly OfferedListener[];
  readonly session: NegotiatedSession;
  readonly mountedAtMs: number;
}

export type HandoverMessage =
  | HelloMessage
  | OfferMessage
  | { readonly type: 'taken' }
  | { readonly type: 'released' }
  | { readonly type: 'done' }
  | { readonly type: 'refused'; readonly reason: string };

export type ParsedMessage = { ok: true; message: HandoverMessage } | { ok: false; reason: string };

/** `<parent>/.lxcfs-ts/<view>.handover.sock`: where both agents see it (the shared parent directory). */
export function handoverSocketPath(mountpoint: string): string {
  return join(dirname(mountpoint), RECORD_DIRECTORY, `${basename(mountpoint)}.handover.sock`);
}

const isDescriptor = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 1 << 20;
const isPid = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isString = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;

function sessionProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'session is not an object';
  const s = v as Record<string, unknown>;
  for (const key of ['minor', 'maxWrite', 'maxRead', 'readBufferSize', 'requestTimeoutSec']) {
    if (!Number.isInteger(s[key]) || (s[key] as number) < 0) return `session.${key} is not a count`;
  }
  if (typeof s.canResend !== 'boolean') return 'session.canResend is not a boolean';
  if (typeof s.flags !== 'string') return 'session.flags is not a string';
  return null;
}

function listenerProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'a listener is not an object';
  const l = v as Record<string, unknown>;
  if (!isDescriptor(l.fd)) return 'a listener has no descriptor';
  if (!Number.isInteger(l.pid) || (l.pid as number) < 0) return 'a listener has no pid';
  if (!isString(l.id, 4096) || !isString(l.metadata, 65536)) return 'a listener has no id or metadata';
  if (!Number.isInteger(l.listenerIndex)) return 'a listener has no index';
  return null;
}

/** Parses one line; anything but a well-formed message of this protocol is refused with a reason. */
export function parseHandoverMessage(line: string): ParsedMessage {
  if (Buffer.byteLength(line) > MAX_MESSAGE_BYTES) return { ok: false, reason: 'message too long' };
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'message is not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'message is not a JSON object' };
  }
  const m = json as Record<string, unknown>;
  switch (m.type) {
    case 'hello':
      if (m.protocol !== HANDOVER_PROTOCOL) return { ok: false, reason: `protocol ${String(m.protocol)} is not ${HANDOVER_PROTOCOL}` };
      if (!isPid(m.pid)) return { ok: false, reason: 'hello has no pid' };
      if (!isString(m.version)) return { ok: false, reason: 'hello has no version' };
      return { ok: true, message: { type: 'hello', protocol: m.protocol, pid: m.pid, version: m.version } };
    case 'offer': {
      if (m.protocol !== HANDOVER_PROTOCOL) return { ok: false, reason: `protocol ${String(m.protocol)} is not ${HANDOVER_PROTOCOL}` };
      if (!isPid(m.pid)) return { ok: false, reason: 'offer has no pid' };
      if (!isString(m.version)) return { ok: false, reason: 'offer has no version' };
      if (!Number.isInteger(m.generation) || (m.generation as number) < 0) return { ok: false, reason: 'offer has no generation' };
      if (!isDescriptor(m.fuseFd)) return { ok: false, reason: 'offer has no FUSE descriptor' };
      if (m.inflightFd !== null && !isDescriptor(m.inflightFd)) return { ok: false, reason: 'offer has a bad in-flight descriptor' };
      if (!Array.isArray(m.listeners) || m.listeners.length > 65536) return { ok: false, reason: 'offer has no listener list' };
      for (const l of m.listeners) {
        const problem = listenerProblem(l);
        if (problem) return { ok: false, reason: problem };
      }
      const problem = sessionProblem(m.session);
      if (problem) return { ok: false, reason: problem };
      if (!Number.isFinite(m.mountedAtMs)) return { ok: false, reason: 'offer has no mount time' };
      return { ok: true, message: m as unknown as OfferMessage };
    }
    case 'taken':
    case 'released':
    case 'done':
      return { ok: true, message: { type: m.type } };
    case 'refused':
      return { ok: true, message: { type: 'refused', reason: isString(m.reason, 4096) ? m.reason : 'no reason given' } };
    default:
      return { ok: false, reason: `unknown message type ${JSON.stringify(m.type)?.slice(0, 40)}` };
  }
}
