import pino from 'pino';

/** The logging surface every module uses; kept narrow so tests and the FUSE layer need no pino types. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * JSON lines on stderr, written synchronously: a daemon that is about to be killed or that runs
 * in a worker thread must not lose its last words in an async buffer.
 */
export function createLogger(level: LogLevel = 'info', bindings: Record<string, unknown> = {}): Logger {
  const destination = pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { pid: process.pid, ...bindings } }, destination) as unknown as Logger;
}

/** A logger that drops everything (unit tests, library use). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
