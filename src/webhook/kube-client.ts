/**
 * A small JSON client for the few Kubernetes API calls the webhook makes (Secrets, Leases, its
 * MutatingWebhookConfiguration). Credentials come from @kubernetes/client-node's KubeConfig
 * (kubeconfig file or in-cluster service account, with token refresh); requests are plain HTTPS
 * over one keep-alive agent, so the JSON that goes out is exactly what the API documents.
 */
import { Agent, request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** Status.details: which object a failure is about (for a missing namespace: kind "namespaces"). */
export interface StatusDetails {
  kind?: string;
  name?: string;
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details: StatusDetails = {},
  ) {
    super(message);
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 404;
}

/** 409: AlreadyExists on create, Conflict on a stale resourceVersion. */
export function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 409;
}

export interface KubeApi {
  get<T>(path: string): Promise<T>;
  create<T>(path: string, body: unknown): Promise<T>;
  replace<T>(path: string, body: unknown): Promise<T>;
}

/**
 * Loaded on first use: the library takes seconds to import on a busy machine, and a usage error
 * or --print-config should not wait for it.
 */
export async function loadKubeConfig(kubeconfigPath?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

export class KubeClient implements KubeApi {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly server: URL;

  constructor(
    private readonly kc: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  replace<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body);
  }

  close(): void {
    this.agent.destroy();
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const url = new URL(path, this.server);
    const options: Parameters<typeof request>[1] = {
      method,
      agent: this.agent,
      headers: {
        accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
      },
      timeout: this.timeoutMs,
    };
    await this.kc.applyToHTTPSOptions(options);
    options.agent = this.agent; // applyToHTTPSOptions may install its own; keep ours for keep-alive
    return new Promise<T>((resolve, reject) => {
      const req = request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          if (status >= 200 && status < 300) {
            resolve(parsed as T);
            return;
          }
          const st = (parsed ?? {}) as { reason?: string; message?: string; details?: StatusDetails };
          reject(
            new KubeApiError(
              status,
              st.reason ?? '',
              `${method} ${path}: ${status} ${st.message ?? text.slice(0, 200)}`,
              { kind: st.details?.kind, name: st.details?.name },
            ),
          );
        });
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${path}: timed out after ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(payload);
    });
  }
}
