/**
 * An in-memory stand-in for the API server's object store with its concurrency rules (AlreadyExists
 * on create, Conflict on a stale resourceVersion), for unit tests of the Lease and reconcilers.
 * The e2e tier checks the same code against the real API server.
 */
import { type KubeApi, KubeApiError } from '../../src/webhook/kube-client.js';

export class FakeKube implements KubeApi {
  readonly objects = new Map<string, Record<string, unknown>>();
  private version = 1;
  writes = 0;
  /** Makes every call fail (API server unreachable). */
  down = false;

  private check(): void {
    if (this.down) throw new Error('connect ECONNREFUSED');
  }

  async get<T>(path: string): Promise<T> {
    this.check();
    const o = this.objects.get(path);
    if (!o) throw new KubeApiError(404, 'NotFound', `${path} not found`);
    return structuredClone(o) as T;
  }

  async create<T>(collection: string, body: unknown): Promise<T> {
    this.check();
    const o = structuredClone(body) as { metadata: { name: string; resourceVersion?: string } };
    const path = `${collection}/${o.metadata.name}`;
    if (this.objects.has(path)) throw new KubeApiError(409, 'AlreadyExists', `${path} exists`);
    o.metadata.resourceVersion = String(this.version++);
    this.objects.set(path, o as unknown as Record<string, unknown>);
    this.writes++;
    return structuredClone(o) as T;
  }

  async replace<T>(path: string, body: unknown): Promise<T> {
    this.check();
    const current = this.objects.get(path) as { metadata: { resourceVersion: string } } | undefined;
    if (!current) throw new KubeApiError(404, 'NotFound', `${path} not found`);
    const o = structuredClone(body) as { metadata: { resourceVersion?: string } };
    if (o.metadata.resourceVersion !== current.metadata.resourceVersion) {
      throw new KubeApiError(409, 'Conflict', `${path}: the object has been modified`);
    }
    o.metadata.resourceVersion = String(this.version++);
    this.objects.set(path, o as unknown as Record<string, unknown>);
    this.writes++;
    return structuredClone(o) as T;
  }
}
