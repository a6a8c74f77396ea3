/**
 * The running agent's side of a takeover: a Unix socket (root only) where a new agent for the
 * same view asks for the live connection. One handover at a time; the socket is closed while
 * one runs, so a second newcomer finds no one to ask and waits for the winner's socket.
 *
 * What the supervisor does at each step is behind `HandoverHost`; this module only keeps the
 * order of the protocol and its deadlines, and refuses every peer that is not root, lies about
 * its pid, or sends anything malformed.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import { listenRootOnly, removeStaleSocket } from '../../common/unix-socket.js';
import { HandoverChannel } from './handover-channel.js';
import type { OfferMessage } from './handover-protocol.js';

/** A newcomer says hello right after connecting. */
const HELLO_TIMEOUT_MS = 5_000;
/**
 * Copying the descriptors and starting a serving process: a few seconds on a loaded node. The old
 * agent serves meanwhile, so a long wait costs nothing but a delayed takeover.
 */
const TAKEN_TIMEOUT_MS = 60_000;

export interface HandoverHost {
  /** What the newcomer copies; the host stops taking new seccomp listeners from here on. */
  offer(): Omit<OfferMessage, 'type' | 'protocol' | 'pid' | 'version'>;
  /** Stops the serving process; resolves once it is gone (nobody of ours reads the connection). */
  stopServing(): Promise<void>;
  /** The takeover failed: serve again as before (a new serving process if it was stopped). */
  resume(reason: string): void;
  /** The newcomer serves the connection now. */
  handedOver(newcomerPid: number): void;
}

export class HandoverServer {
  private server: Server | null = null;
  private busy = false;

  constructor(
    private readonly socketPath: string,
    private readonly version: string,
    private readonly host: HandoverHost,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    // The directory is shared with the planned-stop record: root only (containers see the parent).
    mkdirSync(dirname(this.socketPath), { recursive: true, mode: 0o700 });
    chmodSync(dirname(this.socketPath), 0o700);
    await removeStaleSocket(this.socketPath, 'another agent answers on this handover socket');
    const server = createServer((socket) => void this.serve(socket));
    await listenRootOnly(server, this.socketPath);
    server.on('error', (err) => this.log.error({ err, socket: this.socketPath }, 'handover socket failed'));
    // A handover socket alone never keeps the agent alive.
    server.unref();
    this.server = server;
    this.log.debug({ socket: this.socketPath }, 'handover socket ready');
  }

  /** Closes the socket (the file goes with it). */
  stop(): void {
    this.server?.close();
    this.server = null;
  }

  private async serve(socket: Socket): Promise<void> {
    const channel = new HandoverChannel(socket);
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let peer: { pid: number; uid: number } | null = null;
    try {
      // The FFI module is loaded by the first newcomer, not by every agent at start.
      const { peerCredentials } = await import('../../native/libc.js');
      if (fd !== undefined && fd >= 0) peer = peerCredentials(fd);
    } catch {
      peer = null;
    }
    if (!peer || peer.uid !== 0) {
      this.log.warn({ peer }, 'handover refused: the peer is not root');
      channel.refuse('only root may take over this view');
      return;
    }
    if (this.busy) {
      channel.refuse('a takeover is already in progress');
      return;
    }
    this.busy = true;
    try {
      await this.handOver(channel, peer.pid);
    } finally {
      this.busy = false;
    }
  }

  private async handOver(channel: HandoverChannel, peerPid: number): Promise<void> {
    let hello;
    try {
      hello = await channel.next(HELLO_TIMEOUT_MS, 'hello');
    } catch (err) {
      this.log.warn({ peerPid, reason: (err as Error).message }, 'handover refused');
      channel.close();
      return;
    }
    if (hello.type !== 'hello' || hello.pid !== peerPid) {
      const reason = hello.type !== 'hello' ? `expected hello, got ${hello.type}` : `hello names pid ${hello.pid}, the peer is ${peerPid}`;
      this.log.warn({ peerPid }, `handover refused: ${reason}`);
      channel.refuse(reason);
      return;
    }
    const started = Date.now();
    this.log.info({ newcomerPid: peerPid, newcomerVersion: hello.version }, 'takeover requested: offering the connection');
    // From the offer on, nothing new may arrive here that the newcomer would not know about.
    this.stop();
    let servingStopped = false;
    try {
      channel.send({ type: 'offer', protocol: hello.protocol, pid: process.pid, version: this.version, ...this.host.offer() });
      const taken = await channel.next(TAKEN_TIMEOUT_MS, 'taken');
      if (taken.type !== 'taken') throw new Error(`expected taken, got ${taken.type}`);
      servingStopped = true;
      await this.host.stopServing();
      channel.send({ type: 'released' });
      // The newcomer serves from here on; all it has left to do is say so. If it dies first,
      // we serve again: the connection must never be left to nobody.
      const done = await channel.next(Infinity, 'done');
      if (done.type !== 'done') throw new Error(`expected done, got ${done.type}`);
    } catch (err) {
      const reason = (err as Error).message;
      this.log.warn({ newcomerPid: peerPid, reason, servingStopped }, 'takeover failed: serving again');
      channel.close();
      this.host.resume(reason);
      await this.start().catch((e: unknown) => this.log.error({ err: e }, 'handover socket cannot be opened again'));
      return;
    }
    channel.close();
    this.log.info({ newcomerPid: peerPid, ms: Date.now() - started }, 'handed the connection over');
    this.host.handedOver(peerPid);
  }
}
