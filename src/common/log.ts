/**
 * Logging: JSON lines on stderr ({"level":30,"time":...,"pid":...,"msg":...}, pino's layout,
 * so the usual tools read them), written synchronously: a daemon that is about to be killed, or
 * a worker thread, must not lose its last words in an async buffer. Deliberately tiny: every
 * request-loop thread is its own V8 isolate and loads this module again.
 */
import { writeSync } from 'node:fs';

/** The logging surface every module uses. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const levelNumber: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

/** Errors keep their name, message, code and stack; bigints become strings. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as NodeJS.ErrnoException).code;
    return { type: value.name, message: value.message, ...(code ? { code } : {}), stack: value.stack };
  }
  return typeof value === 'bigint' ? value.toString() : value;
}

class JsonLineLogger implements Logger {
  constructor(
    private readonly threshold: number,
    private readonly bindings: Record<string, unknown>,
    private readonly fd: number,
  ) {}

  debug(obj: object | string, msg?: string): void {
    this.write(20, obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    this.write(30, obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    this.write(40, obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    this.write(50, obj, msg);
  }

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLineLogger(this.threshold, { ...this.bindings, ...bindings }, this.fd);
  }

  private write(level: number, obj: object | string, msg?: string): void {
    if (level < this.threshold) return;
    const fields = typeof obj === 'string' ? {} : obj;
    const record = { level, time: Date.now(), ...this.bindings, ...fields, msg: typeof obj === 'string' ? obj : msg };
    let line: string;
    try {
      line = JSON.stringify(record, replacer);
    } catch {
      // A field that cannot be serialized (a cycle) must not cost the message.
      line = JSON.stringify({ level, time: record.time, ...this.bindings, msg: record.msg });
    }
    try {
      writeSync(this.fd, `${line}\n`);
    } catch {
      // stderr gone or full: logging must never take the daemon down.
    }
  }
}

export function createLogger(level: LogLevel = 'info', bindings: Record<string, unknown> = {}, fd = 2): Logger {
  return new JsonLineLogger(levelNumber[level], { pid: process.pid, ...bindings }, fd);
}

/** A logger that drops everything (unit tests, library use). */
export const silentLogger: Logger = createLogger('silent');
