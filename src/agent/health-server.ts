/**
 * /healthz, /readyz and /metrics over plain HTTP, meant for loopback or a pod's own network:
 *   /healthz  200 while request loops are serving (not all stuck or dead)
 *   /readyz   200 when a view file can be read end to end through the mount
 *   /metrics  Prometheus text format
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import type { PoolStatus } from '../fuse/worker-pool.js';
import type { AgentMetrics } from './metrics.js';

export interface HealthSources {
  mountpoint: string;
  pool: () => PoolStatus;
  metrics: AgentMetrics;
}

const READY_TIMEOUT_MS = 2_000;

export function parseListenAddress(value: string): { host: string; port: number } | null {
  if (value === 'off' || value === '') return null;
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid address ${JSON.stringify(value)}: expected HOST:PORT, [IPv6]:PORT or off`);
  }
  return { host: match[1] ?? match[2]!, port };
}

let readyCheck: Promise<string | null> | null = null;

/**
 * One read of the view at a time, shared by concurrent probes: each read holds a libuv thread,
 * and a hung view must not be able to take them all.
 */
function viewReadable(mountpoint: string): Promise<string | null> {
  readyCheck ??= readView(mountpoint).finally(() => {
    readyCheck = null;
  });
  return readyCheck;
}

async function readView(mountpoint: string): Promise<string | null> {
  const signal = AbortSignal.timeout(READY_TIMEOUT_MS);
  try {
    const content = await readFile(join(mountpoint, 'proc/meminfo'), { signal });
    return content.length > 0 && content.subarray(0, 9).toString() === 'MemTotal:'
      ? null
      : 'unexpected content';
  } catch (err) {
    return (err as Error).message;
  }
}

const RELISTEN_MS = 2_000;

export function startHealthServer(
  address: { host: string; port: number },
  sources: HealthSources,
  log: Logger,
): Server {
  const server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/healthz') {
      const status = sources.pool();
      return status.serving > 0
        ? reply(200, 'ok\n')
        : reply(503, `no request loop is serving (${status.stuck} stuck)\n`);
    }
    if (path === '/readyz') {
      viewReadable(sources.mountpoint).then(
        (problem) => (problem === null ? reply(200, 'ok\n') : reply(503, `view not readable: ${problem}\n`)),
        (err: Error) => reply(503, `${err.message}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      try {
        return reply(200, sources.metrics.render(), sources.metrics.contentType);
      } catch (err) {
        return reply(500, `${(err as Error).message}\n`);
      }
    }
    reply(404, 'not found: try /healthz, /readyz or /metrics\n');
  });
  // During a takeover the old agent's serving process holds the port until it is stopped: a
  // taken port is tried again, so the endpoint comes back once the old agent is gone.
  let warned = false;
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') {
      log.warn({ err, ...address }, 'health and metrics endpoint unavailable');
      return;
    }
    if (!warned) log.warn(address, `health and metrics port taken (by the agent being taken over?); trying again every ${RELISTEN_MS / 1000} s`);
    warned = true;
    setTimeout(() => server.listen(address.port, address.host), RELISTEN_MS).unref();
  });
  server.on('listening', () => log.info(address, 'health and metrics endpoint listening'));
  server.listen(address.port, address.host);
  server.unref();
  return server;
}
