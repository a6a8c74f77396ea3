/**
 * One handover connection as a sequence of messages: lines of JSON in, lines out. `next` waits
 * for the next message with a deadline and fails on a malformed line, a line past the size
 * limit, the peer closing, or the deadline: every way a peer can go wrong ends the exchange.
 */
import type { Socket } from 'node:net';
import { type HandoverMessage, MAX_MESSAGE_BYTES, parseHandoverMessage } from './handover-protocol.js';

export class HandoverError extends Error {}

export class HandoverChannel {
  private buffered = '';
  private readonly queue: HandoverMessage[] = [];
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.take(chunk));
    socket.on('end', () => this.fail(new HandoverError('the peer closed the connection')));
    socket.on('close', () => this.fail(new HandoverError('the connection closed')));
    socket.on('error', (err) => this.fail(new HandoverError(`connection failed: ${err.message}`)));
  }

  send(message: HandoverMessage): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends a refusal and closes; the reason is what the peer logs. */
  refuse(reason: string): void {
    this.send({ type: 'refused', reason });
    this.socket.end();
    this.fail(new HandoverError(reason));
  }

  close(): void {
    this.socket.destroy();
  }

  /** The next message (timeoutMs may be Infinity); a `refused` from the peer is thrown as its reason. */
  async next(timeoutMs: number, what: string): Promise<HandoverMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message) {
        if (message.type === 'refused') throw new HandoverError(`refused: ${message.reason}`);
        return message;
      }
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new HandoverError(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Resolves when the peer closes (or the connection fails): the old agent's watch after `released`. */
  closed(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.failure) resolve();
      else this.socket.once('close', () => resolve());
    });
  }

  private take(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      const parsed = parseHandoverMessage(line);
      if (!parsed.ok) {
        this.refuse(parsed.reason);
        return;
      }
      this.queue.push(parsed.message);
    }
    if (Buffer.byteLength(this.buffered) > MAX_MESSAGE_BYTES) this.refuse('message too long');
    this.wake?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake?.();
  }
}
