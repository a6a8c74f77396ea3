/**
 * The new agent's side of a takeover: asks the agent serving the view for its connection, copies
 * the descriptors it offers straight out of that process (pidfd_getfd: the same open FUSE device,
 * in-flight record and seccomp listeners, not new ones), and walks the rest of the protocol with
 * it. The supervisor starts its serving process between `offered` and `confirm`.
 */
import { createConnection } from 'node:net';
import type { Logger } from '../../common/log.js';
import { closeFd, peerCredentials, pidfdGetfd, pidfdOpen } from '../../native/libc.js';
import type { HeldListener } from '../../syscall/listener-hub.js';
import { HandoverChannel } from './handover-channel.js';
import { HANDOVER_PROTOCOL, type OfferMessage } from './handover-protocol.js';

/** The old agent has stopped its serving process by then, or it is stuck. */
const RELEASED_TIMEOUT_MS = 15_000;

/** The live connection, copied into this process. */
export interface AdoptedConnection {
  readonly offer: OfferMessage;
  readonly fuseFd: number;
  readonly inflightFd: number | null;
  readonly listeners: readonly HeldListener[];
}

export type TakeoverAttempt =
  /** Nobody answers on the handover socket: the view is served by something that cannot hand over. */
  | { readonly kind: 'no-handover'; readonly reason: string }
  /** It did not answer in time (stopped, hung) or refused: the caller falls back. */
  | { readonly kind: 'unanswered'; readonly reason: string }
  | { readonly kind: 'offered'; readonly session: TakeoverSession };

export class TakeoverSession {
  constructor(
    readonly connection: AdoptedConnection,
    private readonly channel: HandoverChannel,
  ) {}

  /** Our serving process is ready: the old agent stops its own. Throws if it does not confirm. */
  async confirm(): Promise<void> {
    this.channel.send({ type: 'taken' });
    const reply = await this.channel.next(RELEASED_TIMEOUT_MS, 'released');
    if (reply.type !== 'released') throw new Error(`expected released, got ${reply.type}`);
  }

  /** We serve alone now; the old agent may go. */
  finish(): void {
    this.channel.send({ type: 'done' });
    this.channel.socket.end();
  }

  /** Gives up before `confirm` succeeded: the copies are closed, the old agent serves on. */
  abandon(): void {
    this.channel.close();
    const c = this.connection;
    for (const fd of [c.fuseFd, c.inflightFd, ...c.listeners.map((l) => l.fd)]) {
      if (fd !== null) closeQuietly(fd);
    }
  }
}

function connect(path: string, timeoutMs: number): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${path} took more than ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Asks the agent behind `socketPath` for its connection. Resolves with the copied descriptors,
 * or with why there is nothing to take over; never throws for a peer's fault.
 */
export async function requestTakeover(
  socketPath: string,
  version: string,
  timeoutMs: number,
  log: Logger,
): Promise<TakeoverAttempt> {
  let socket;
  try {
    socket = await connect(socketPath, timeoutMs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      return { kind: 'no-handover', reason: `no agent answers on ${socketPath} (${code})` };
    }
    return { kind: 'unanswered', reason: (err as Error).message };
  }
  const channel = new HandoverChannel(socket);
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  let peer;
  try {
    peer = peerCredentials(fd ?? -1);
  } catch (err) {
    channel.close();
    return { kind: 'unanswered', reason: `peer credentials unavailable: ${(err as Error).message}` };
  }
  // The socket is root's only, but a connection is worth nothing if its owner is not root either.
  if (peer.uid !== 0) {
    channel.refuse('only root may hand over this view');
    return { kind: 'unanswered', reason: `the handover socket belongs to uid ${peer.uid}, not root` };
  }
  channel.send({ type: 'hello', protocol: HANDOVER_PROTOCOL, pid: process.pid, version });
  let offer;
  try {
    const message = await channel.next(timeoutMs, 'offer');
    if (message.type !== 'offer') throw new Error(`expected offer, got ${message.type}`);
    offer = message;
  } catch (err) {
    channel.close();
    return { kind: 'unanswered', reason: (err as Error).message };
  }
  if (offer.pid !== peer.pid) {
    channel.refuse(`offer names pid ${offer.pid}, the peer is ${peer.pid}`);
    return { kind: 'unanswered', reason: `the offer names pid ${offer.pid} but came from ${peer.pid}` };
  }
  const copies: number[] = [];
  try {
    const pidfd = pidfdOpen(peer.pid);
    try {
      const copy = (target: number) => {
        const fdCopy = pidfdGetfd(pidfd, target);
        copies.push(fdCopy);
        return fdCopy;
      };
      const fuseFd = copy(offer.fuseFd);
      const inflightFd = offer.inflightFd === null ? null : copy(offer.inflightFd);
      const now = Date.now();
      const listeners: HeldListener[] = offer.listeners.map((l) => ({ ...l, fd: copy(l.fd), receivedAtMs: now }));
      log.info(
        { oldPid: peer.pid, oldVersion: offer.version, listeners: listeners.length, generation: offer.generation },
        'takeover: copied the live connection',
      );
      return { kind: 'offered', session: new TakeoverSession({ offer, fuseFd, inflightFd, listeners }, channel) };
    } finally {
      closeQuietly(pidfd);
    }
  } catch (err) {
    for (const c of copies) closeQuietly(c);
    channel.refuse(`copying the descriptors failed: ${(err as Error).message}`);
    return { kind: 'unanswered', reason: `copying the descriptors failed: ${(err as Error).message}` };
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // already closed
  }
}
