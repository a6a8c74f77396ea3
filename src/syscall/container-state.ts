/**
 * The message an OCI runtime sends a seccomp agent (runc >= 1.1, `listenerPath` in the seccomp
 * profile): the container state as JSON, with the listener descriptors in SCM_RIGHTS, named in
 * order by `fds`. `lxcfs-ts run` sends the same message for its sandbox. Anything malformed is
 * refused with a reason, and the descriptors that came with it are closed by the caller.
 */

export interface ListenerRegistration {
  /** The container's init as the runtime reports it (host pid namespace); 0 when not given. */
  readonly pid: number;
  /** The container id (runc) or a sandbox's name, for logs. */
  readonly id: string;
  /** The profile's `listenerMetadata`, for logs. */
  readonly metadata: string;
  /** Index of the seccomp listener among the passed descriptors. */
  readonly listenerIndex: number;
}

/** Largest state accepted (a pod's annotations end up in it; the API server caps them at 256 KiB). */
export const MAX_STATE_BYTES = 1024 * 1024;

export type ParsedState = { ok: true; value: ListenerRegistration } | { ok: false; reason: string };

export function parseContainerState(data: Buffer, fdCount: number): ParsedState {
  if (data.length === 0) return { ok: false, reason: 'empty message' };
  if (data.length > MAX_STATE_BYTES) return { ok: false, reason: `state larger than ${MAX_STATE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, reason: 'state is not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'state is not a JSON object' };
  }
  const state = json as Record<string, unknown>;
  const fds = state.fds;
  if (!Array.isArray(fds) || !fds.every((f) => typeof f === 'string')) {
    return { ok: false, reason: 'state has no "fds" list of names' };
  }
  const listenerIndex = fds.indexOf('seccompFd');
  if (listenerIndex < 0) return { ok: false, reason: 'state names no "seccompFd"' };
  if (fds.length !== fdCount) {
    return { ok: false, reason: `state names ${fds.length} descriptors but ${fdCount} came with it` };
  }
  const pid = state.pid === undefined ? 0 : state.pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 0) return { ok: false, reason: 'bad "pid"' };
  const inner = typeof state.state === 'object' && state.state !== null ? (state.state as Record<string, unknown>) : {};
  const id = typeof inner.id === 'string' ? inner.id : typeof state.id === 'string' ? state.id : '';
  const metadata = typeof state.metadata === 'string' ? state.metadata : '';
  return { ok: true, value: { pid, id: id.slice(0, 128), metadata: metadata.slice(0, 256), listenerIndex } };
}

/** The message `lxcfs-ts run` sends for its sandbox, in the runtime's shape. */
export function sandboxState(pid: number, id: string): Buffer {
  return Buffer.from(
    JSON.stringify({ ociVersion: '1.0.2', fds: ['seccompFd'], pid, metadata: 'lxcfs-ts run', state: { id, pid } }),
  );
}
