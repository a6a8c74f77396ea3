/**
 * The supervisor's end of the syscall view: a Unix socket that OCI runtimes (runc's seccomp
 * `listenerPath`) and `lxcfs-ts run` connect to, each handing over one seccomp listener with the
 * container's state. The supervisor only receives and holds the listeners; the serving process
 * takes its own copies (pidfd_getfd) and answers the notifications. Because the originals live
 * here, a crash of the serving process loses no listener: once every copy of a listener is
 * closed, the kernel fails the container's `sysinfo` with ENOSYS for the rest of its life.
 *
 * The socket is served from the event loop with no thread of its own: a connection is accepted
 * paused (libuv never reads it) and its one message is taken with recvmsg(2) on the raw
 * descriptor, which is how the passed descriptors can be received at all in Node.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../common/log.js';
import { listenRootOnly, removeStaleSocket } from '../common/unix-socket.js';
import { closeFd, receiveWithFds } from '../native/libc.js';
import { type ListenerRegistration, MAX_STATE_BYTES, parseContainerState } from './container-state.js';

/** A peer that has not sent its whole message by then is dropped (runc sends right after connecting). */
const MESSAGE_DEADLINE_MS = 2_000;
const RECEIVE_RETRY_MS = 2;
/** Connections being read at once; more wait in the kernel's backlog. */
const MAX_PENDING = 64;

export interface HeldListener extends ListenerRegistration {
  /** The listener's descriptor in this (the supervisor's) process. */
  readonly fd: number;
  readonly receivedAtMs: number;
}

export interface ListenerHubEvents {
  /** A listener was received and is now held. */
  onListener(listener: HeldListener): void;
}

export class ListenerHub {
  private readonly held = new Map<number, HeldListener>();
  private server: Server | null = null;
  private pending = 0;
  private rejected = 0;

  constructor(
    private readonly socketPath: string,
    private readonly events: ListenerHubEvents,
    private readonly log: Logger,
  ) {}

  /** Every listener held now. */
  listeners(): HeldListener[] {
    return [...this.held.values()];
  }

  get rejectedCount(): number {
    return this.rejected;
  }

  /** Starts listening; a stale socket file left by a dead instance is replaced, a live one refused. */
  async start(): Promise<void> {
    if (this.server) return;
    await removeStaleSocket(this.socketPath, 'another lxcfs-ts instance serves sysinfo on this socket');
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    server.maxConnections = 4096;
    // Root only: whoever connects hands the agent a listener it will write into.
    await listenRootOnly(server, this.socketPath);
    server.on('error', (err) => this.log.error({ err, socket: this.socketPath }, 'sysinfo socket failed'));
    this.server = server;
    this.log.info({ socket: this.socketPath }, 'serving seccomp listeners for sysinfo(2)');
  }

  /** Holds listeners taken over from the agent this one replaces (copies of its descriptors). */
  adopt(listeners: readonly HeldListener[]): void {
    for (const listener of listeners) this.held.set(listener.fd, listener);
    if (listeners.length > 0) this.log.info({ listeners: listeners.length }, 'seccomp listeners taken over');
  }

  /** Called when the serving process found a listener's containers all gone (POLLHUP). */
  release(fd: number): void {
    const listener = this.held.get(fd);
    if (listener === undefined) return;
    this.held.delete(fd);
    try {
      closeFd(fd);
    } catch (err) {
      this.log.warn({ err, fd }, 'closing a released listener failed');
    }
    this.log.debug({ fd, container: listener.id, initPid: listener.pid }, 'listener released: its processes are gone');
  }

  /** Closes every listener held (after a takeover, the newcomer holds its own copies). */
  closeAll(): void {
    for (const fd of this.held.keys()) closeQuietly(fd);
    this.held.clear();
  }

  /** Stops accepting; the held listeners stay open until the process exits (containers keep working). */
  stop(): void {
    this.server?.close();
    this.server = null;
    rmSync(this.socketPath, { force: true });
  }

  private accept(socket: Socket): void {
    if (this.pending >= MAX_PENDING) {
      this.log.warn({ pending: this.pending }, 'too many sysinfo connections being read; refusing one');
      this.rejected++;
      socket.destroy();
      return;
    }
    this.pending++;
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const chunks: Buffer[] = [];
    const fds: number[] = [];
    let size = 0;
    let truncated = false;
    const startedAt = Date.now();
    const buffer = Buffer.allocUnsafe(64 * 1024);
    const finish = (reason: string | null) => {
      this.pending--;
      socket.destroy();
      if (reason === null) reason = this.register(Buffer.concat(chunks), fds);
      else for (const f of fds) closeQuietly(f);
      if (reason !== null) {
        this.rejected++;
        this.log.warn({ reason, bytes: size }, 'refused a seccomp listener');
      }
    };
    if (fd === undefined || fd < 0) {
      finish('connection has no descriptor');
      return;
    }
    const step = () => {
      let message;
      try {
        message = receiveWithFds(fd, buffer);
      } catch (err) {
        finish(`receive failed: ${(err as Error).message}`);
        return;
      }
      if (message === null) {
        if (Date.now() - startedAt > MESSAGE_DEADLINE_MS) finish('peer sent no complete message in time');
        else setTimeout(step, RECEIVE_RETRY_MS);
        return;
      }
      fds.push(...message.fds);
      truncated ||= message.truncated;
      if (message.length === 0) {
        // The peer closed: the message is complete.
        finish(truncated ? 'descriptors were cut off (more than 16 passed)' : null);
        return;
      }
      size += message.length;
      if (size > MAX_STATE_BYTES) {
        finish(`state larger than ${MAX_STATE_BYTES} bytes`);
        return;
      }
      chunks.push(Buffer.from(buffer.subarray(0, message.length)));
      // runc closes after its one message; a peer that keeps the connection open is read to the deadline.
      setImmediate(step);
    };
    step();
  }

  /** Holds the listener from a complete message; returns why it was refused, or null. */
  private register(data: Buffer, fds: number[]): string | null {
    const parsed = parseContainerState(data, fds.length);
    if (!parsed.ok) {
      for (const f of fds) closeQuietly(f);
      return parsed.reason;
    }
    const fd = fds[parsed.value.listenerIndex]!;
    fds.forEach((f, i) => i !== parsed.value.listenerIndex && closeQuietly(f));
    const listener: HeldListener = { ...parsed.value, fd, receivedAtMs: Date.now() };
    this.held.set(fd, listener);
    this.log.info({ fd, container: listener.id, initPid: listener.pid, metadata: listener.metadata }, 'seccomp listener received');
    this.events.onListener(listener);
    return null;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // already closed
  }
}
