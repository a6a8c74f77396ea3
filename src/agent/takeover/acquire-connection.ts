/**
 * Where a starting agent's FUSE connection comes from: a fresh mount, or the live connection of
 * the agent already serving the mountpoint (a takeover), or, when that agent does not answer, a
 * fresh mount over its mountpoint. Which one happened is said in the log, once.
 */
import type { Logger } from '../../common/log.js';
import { type NegotiatedSession, negotiateInit } from '../../fuse/init.js';
import { MountError, mountFuse, openFuseDevice, unmount } from '../../fuse/mount.js';
import type { HeldListener } from '../../syscall/listener-hub.js';
import type { DaemonArgs } from '../daemon-args.js';
import type { MountEntry } from '../mountinfo.js';
import { alreadyServedMessage, StartupError } from '../preflight.js';
import { handoverSocketPath } from './handover-protocol.js';
import type { TakeoverSession } from './takeover-client.js';

export interface LiveConnection {
  readonly fd: number;
  readonly session: NegotiatedSession;
  readonly mountedAtMs: number;
  /** The first serving process's generation: > 0 makes it ask the kernel for a resend. */
  readonly generation: number;
  /** The syscall view's in-flight record taken over, if any (else the supervisor makes one). */
  readonly inflightFd: number | null;
  /** Seccomp listeners taken over. */
  readonly listeners: readonly HeldListener[];
  /** Set when the connection is being taken over: the rest of the protocol is the supervisor's. */
  readonly takeover: TakeoverSession | null;
  readonly takeoverStartedAt: number;
}

function mountFresh(mountpoint: string, args: DaemonArgs): LiveConnection {
  const fd = openFuseDevice();
  mountFuse({ fd, mountpoint, source: 'lxcfs', subtype: 'lxcfs', options: ['ro', 'default_permissions'] });
  let session: NegotiatedSession;
  try {
    session = negotiateInit(fd, { requestTimeoutSec: args.requestTimeoutSec });
  } catch (err) {
    unmount(mountpoint, true);
    throw new MountError(`FUSE INIT failed: ${(err as Error).message}`);
  }
  return {
    fd,
    session,
    mountedAtMs: Date.now(),
    generation: 0,
    inflightFd: null,
    listeners: [],
    takeover: null,
    takeoverStartedAt: 0,
  };
}

/**
 * `beforeMount` runs only when a fresh mount is made (making the parent directory shared): a
 * refused start or a takeover changes nothing on the host.
 */
export async function acquireConnection(
  mountpoint: string,
  live: MountEntry | null,
  args: DaemonArgs,
  version: string,
  log: Logger,
  beforeMount: () => void,
): Promise<LiveConnection> {
  const freshMount = () => {
    beforeMount();
    return mountFresh(mountpoint, args);
  };
  if (!live) return freshMount();
  if (!args.takeover) throw new StartupError(alreadyServedMessage(mountpoint, live, '--no-takeover was given'));
  const started = Date.now();
  const socket = handoverSocketPath(mountpoint);
  log.info({ mountpoint, socket }, 'a live agent serves this mountpoint: asking it to hand its connection over');
  // Only a takeover needs the client and the FFI module under it (koffi): loaded here, not at start.
  const { requestTakeover } = await import('./takeover-client.js');
  const attempt = await requestTakeover(socket, version, args.takeoverTimeoutMs, log);
  if (attempt.kind === 'no-handover') {
    throw new StartupError(alreadyServedMessage(mountpoint, live, `does not hand over (${attempt.reason})`));
  }
  if (attempt.kind === 'unanswered') {
    log.warn(
      { mountpoint, reason: attempt.reason, timeoutS: args.takeoverTimeoutMs / 1000 },
      'takeover failed: the live agent did not hand over; mounting a new view over its mountpoint instead. ' +
      'Containers keep reading the old one while it serves, and are repaired onto this one once it stops',
    );
    return freshMount();
  }
  const { offer, fuseFd, inflightFd, listeners } = attempt.session.connection;
  if (offer.session.requestTimeoutSec !== args.requestTimeoutSec) {
    log.warn(
      { connection: offer.session.requestTimeoutSec, asked: args.requestTimeoutSec },
      '--request-timeout is part of the connection (negotiated at mount): the taken-over connection keeps its own',
    );
  }
  return {
    fd: fuseFd,
    session: offer.session,
    mountedAtMs: offer.mountedAtMs,
    generation: offer.generation + 1,
    inflightFd,
    listeners,
    takeover: attempt.session,
    takeoverStartedAt: started,
  };
}
