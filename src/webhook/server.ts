/**
 * The HTTPS plumbing: routes, body limits, timeouts, certificate hot swap. Everything about pods is
 * in admission.ts; this file only moves bytes and counts them.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/log.js';
import { type AdmissionSettings, reviewAdmission } from './admission.js';
import { reviewEphemeralContainers } from './ephemeral-admission.js';
import type { WebhookMetrics } from './metrics.js';
import { sysinfoPathSuffix } from './seccomp-injection.js';
import type { SelectionMode } from './selection.js';

export const mutatePaths: Record<string, SelectionMode> = {
  '/mutate': 'enabled',
  '/mutate/optin': 'optin',
  // Namespaces labelled for the syscall view too (lxcfs-ts.io/sysinfo=enabled).
  [`/mutate${sysinfoPathSuffix}`]: 'enabled',
  [`/mutate/optin${sysinfoPathSuffix}`]: 'optin',
};

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface WebhookServerOptions {
  settings: AdmissionSettings;
  metrics: WebhookMetrics;
  logger: Logger;
  /** Larger bodies get 413 without being read into memory. */
  maxBodyBytes: number;
  /** Extra readiness condition (e.g. not draining); the server is never ready without a certificate. */
  isReady?: () => boolean;
}

export const defaultMaxBodyBytes = 4 * 1024 * 1024;

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string): void {
  send(res, status, `${JSON.stringify({ error: message })}\n`);
}

export class WebhookServer {
  private https: HttpsServer | null = null;
  private health: Server | null = null;
  private certificate: CertificatePair | null = null;

  constructor(private readonly options: WebhookServerOptions) {}

  get ready(): boolean {
    return this.certificate !== null && this.https?.listening === true && (this.options.isReady?.() ?? true);
  }

  /** Installs a serving certificate; connections opened from now on use it, open ones keep theirs. */
  setCertificate(pair: CertificatePair): void {
    const same = this.certificate && this.certificate.cert === pair.cert && this.certificate.key === pair.key;
    if (same) return;
    this.https?.setSecureContext({ cert: pair.cert, key: pair.key });
    if (this.certificate) this.options.metrics.certificateReloads.inc();
    this.certificate = pair;
  }

  /** Starts HTTPS; needs a certificate first. */
  async listen(host: string, port: number): Promise<AddressInfo> {
    if (!this.certificate) throw new Error('no serving certificate yet');
    const server = createHttpsServer({ cert: this.certificate.cert, key: this.certificate.key }, (req, res) =>
      this.route(req, res, true),
    );
    // The API server keeps connections to webhooks open; closing them first would race its next request.
    server.keepAliveTimeout = 120_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    this.https = server;
    return listenOn(server, host, port);
  }

  /** Plain HTTP for probes and scraping: /healthz, /readyz, /metrics only (never /mutate). */
  async listenHealth(host: string, port: number): Promise<AddressInfo> {
    const server = createHttpServer((req, res) => this.route(req, res, false));
    server.requestTimeout = 10_000;
    this.health = server;
    return listenOn(server, host, port);
  }

  async close(): Promise<void> {
    await Promise.all([this.https, this.health].map((s) => (s ? closeServer(s) : Promise.resolve())));
  }

  private route(req: IncomingMessage, res: ServerResponse, secure: boolean): void {
    const path = (req.url ?? '/').split('?')[0]!;
    const mode = mutatePaths[path];
    if (secure && mode !== undefined) {
      this.mutate(req, res, mode, path.endsWith(sysinfoPathSuffix)).catch((err: unknown) => {
        this.options.logger.error({ err: String(err) }, 'admission handler failed');
        if (!res.headersSent) sendError(res, 500, 'internal error');
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.refuse(res, 405, 'method not allowed');
    } else if (path === '/healthz') {
      send(res, 200, 'ok\n', 'text/plain');
    } else if (path === '/readyz') {
      if (this.ready) send(res, 200, 'ok\n', 'text/plain');
      else send(res, 503, 'not ready\n', 'text/plain');
    } else if (path === '/metrics') {
      this.options.metrics.registry.metrics().then(
        (text) => send(res, 200, text, this.options.metrics.registry.contentType),
        () => sendError(res, 500, 'metrics unavailable'),
      );
    } else {
      this.refuse(res, 404, 'not found');
    }
  }

  private refuse(res: ServerResponse, status: number, message: string): void {
    this.options.metrics.rejected.inc({ code: String(status) });
    sendError(res, status, message);
  }

  private async mutate(
    req: IncomingMessage,
    res: ServerResponse,
    mode: SelectionMode,
    namespaceSysinfo: boolean,
  ): Promise<void> {
    if (req.method !== 'POST') return this.refuse(res, 405, 'use POST');
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return this.refuse(res, 415, 'content-type must be application/json');
    let body: Buffer;
    try {
      body = await readBody(req, this.options.maxBodyBytes);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        res.setHeader('connection', 'close');
        this.refuse(res, 413, `body larger than ${this.options.maxBodyBytes} bytes`);
        req.destroy();
        return;
      }
      throw err;
    }
    const started = process.hrtime.bigint();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return this.refuse(res, 400, 'body is not valid JSON');
    }
    const { settings } = this.options;
    const result =
      (await reviewEphemeralContainers(parsed, mode, settings)) ??
      reviewAdmission(parsed, mode, settings, namespaceSysinfo);
    if (!result.ok) return this.refuse(res, result.httpStatus, result.error);
    send(res, 200, JSON.stringify(result.response));
    const { summary } = result;
    const { metrics, logger } = this.options;
    metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    metrics.admissions.inc({
      outcome: summary.outcome,
      reason: summary.reason ?? '',
      dry_run: String(summary.dryRun),
    });
    // Conflicts and pods that could not be read deserve a line; routine outcomes are in the pod's
    // status annotation, the audit log and the counters (a log line each would cost more than the
    // mutation itself).
    if (summary.reason === 'pod-unreadable') logger.warn({ ...summary, mode }, 'admission');
    else if (summary.outcome === 'conflict' || summary.outcome === 'invalid')
      logger.info({ ...summary, mode }, 'admission');
    else logger.debug({ ...summary, mode }, 'admission');
  }
}

function listenOn(server: Server | HttpsServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
