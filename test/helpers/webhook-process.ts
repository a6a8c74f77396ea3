/** Runs `lxcfs-ts webhook` as a child process for e2e tests and benchmarks. */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { repoRoot } from './paths.js';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** GET over HTTPS without verifying the certificate (probes only). */
export function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, rejectUnauthorized: false, timeout: 2000, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface WebhookProcess {
  child: ChildProcess;
  port: number;
  url: string;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Starts `lxcfs-ts webhook` on 127.0.0.1. Output is collected through a pipe, or written to
 * `logFile` (benchmarks: a file never blocks the webhook's synchronous log writes the way a pipe
 * that nobody drains fast enough would).
 */
export async function startWebhook(args: string[], port?: number, logFile?: string): Promise<WebhookProcess> {
  const p = port ?? (await freePort());
  const logFd = logFile ? openSync(logFile, 'a') : undefined;
  const url = `https://127.0.0.1:${p}`;
  const child = spawn(
    process.execPath,
    [
      `${repoRoot}dist/src/cli.js`,
      'webhook',
      '--listen',
      `127.0.0.1:${p}`,
      '--shutdown-delay',
      '0s',
      ...args,
    ],
    { stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'] },
  );
  if (logFd !== undefined) closeSync(logFd);
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const proc: WebhookProcess = {
    child,
    port: p,
    url,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return proc;
}

/** Polls /readyz until it answers 200. */
export async function waitReady(proc: WebhookProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`webhook exited:\n${proc.output()}`);
    const r = await probe(proc.port, '/readyz').catch(() => null);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`webhook not ready after ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}
