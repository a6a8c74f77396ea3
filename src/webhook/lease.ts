/**
 * Leader election over a coordination.k8s.io/v1 Lease, so that only one replica writes the
 * certificate Secret and the caBundle. Expiry is judged by when this replica *observed* the lease
 * record last change, with its own clock, never by comparing another node's renewTime with ours.
 */
import type { Logger } from '../common/log.js';
import { isConflict, isNotFound, type KubeApi } from './kube-client.js';

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface Observation {
  /** The lease record as last seen (holder and renew time). */
  record: string;
  /** Local monotonic time at which that record was first seen. */
  atMs: number;
}

export type LeaseAction = 'create' | 'renew' | 'takeover' | 'wait';

function recordOf(lease: Lease): string {
  // resourceVersion changes on every write, even two renewals within one clock tick.
  const { spec } = lease;
  return `${lease.metadata.resourceVersion ?? ''}|${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
}

/**
 * What to do with the lease as read now. Returns the observation to remember: a record that changed
 * restarts the expiry clock.
 */
export function decideLease(
  lease: Lease | null,
  identity: string,
  nowMs: number,
  observed: Observation | null,
  defaultDurationMs: number,
): { action: LeaseAction; observed: Observation | null } {
  if (lease === null) return { action: 'create', observed: null };
  const record = recordOf(lease);
  const seen = observed !== null && observed.record === record ? observed : { record, atMs: nowMs };
  const holder = lease.spec.holderIdentity ?? '';
  if (holder === identity) return { action: 'renew', observed: seen };
  if (holder === '') return { action: 'takeover', observed: seen };
  const durationMs = (lease.spec.leaseDurationSeconds ?? 0) * 1000 || defaultDurationMs;
  if (nowMs - seen.atMs >= durationMs) return { action: 'takeover', observed: seen };
  return { action: 'wait', observed: seen };
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  /** How often to try to acquire or renew. */
  retryMs: number;
  logger: Logger;
  onChange?: (leader: boolean) => void;
  /** Called with each failed attempt's error; true when it is fatal (reported there): stop trying. */
  isFatal?: (err: unknown) => boolean;
  /** Monotonic clock (tests pass a fake one). */
  now?: () => number;
}

export class LeaderElector {
  private observed: Observation | null = null;
  private lastRenewMs = Number.NEGATIVE_INFINITY;
  private leading = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Last state passed to onChange. */
  private reported = false;
  private readonly now: () => number;

  constructor(
    private readonly api: KubeApi,
    private readonly options: LeaderElectorOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
  }

  private get path(): string {
    const { namespace, name } = this.options;
    return `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`;
  }

  /** Leader only while the last successful renewal is younger than the lease duration. */
  get isLeader(): boolean {
    return this.leading && this.now() - this.lastRenewMs < this.options.leaseDurationMs;
  }

  start(): void {
    const loop = async (): Promise<void> => {
      await this.tick();
      if (!this.stopped) this.timer = setTimeout(loop, this.options.retryMs);
    };
    void loop();
  }

  /** One attempt to acquire or renew; errors are logged and count as a failed renewal. */
  async tick(): Promise<void> {
    try {
      await this.attempt();
    } catch (err) {
      if (this.options.isFatal?.(err)) {
        this.stopped = true;
        return;
      }
      this.options.logger.warn({ err: String(err) }, 'lease update failed');
    }
    this.setLeading(this.isLeader);
  }

  private async attempt(): Promise<void> {
    const { identity, namespace, name, leaseDurationMs } = this.options;
    let lease: Lease | null = null;
    try {
      lease = await this.api.get<Lease>(this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const nowMs = this.now();
    const decision = decideLease(lease, identity, nowMs, this.observed, leaseDurationMs);
    this.observed = decision.observed;
    if (decision.action === 'wait') {
      this.leading = false;
      return;
    }
    const stamp = microTime(new Date());
    const spec: Lease['spec'] = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      renewTime: stamp,
      acquireTime: decision.action === 'renew' ? (lease?.spec.acquireTime ?? stamp) : stamp,
      leaseTransitions: (lease?.spec.leaseTransitions ?? 0) + (decision.action === 'takeover' ? 1 : 0),
    };
    const body: Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name,
        namespace,
        ...(lease?.metadata.resourceVersion ? { resourceVersion: lease.metadata.resourceVersion } : {}),
      },
      spec,
    };
    try {
      if (decision.action === 'create') {
        await this.api.create(`/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, body);
      } else {
        await this.api.replace(this.path, body);
      }
    } catch (err) {
      if (isConflict(err)) {
        // Someone else wrote first; their record is the one to watch.
        this.leading = false;
        return;
      }
      throw err;
    }
    if (decision.action !== 'renew')
      this.options.logger.info({ lease: name, identity }, 'acquired the lease');
    this.leading = true;
    this.lastRenewMs = nowMs;
  }

  private setLeading(leader: boolean): void {
    if (leader === this.reported) return;
    this.reported = leader;
    this.options.onChange?.(leader);
  }

  /** Stops renewing and, when leading, hands the lease back so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    this.setLeading(false);
    try {
      const lease = await this.api.get<Lease>(this.path);
      if (lease.spec.holderIdentity !== this.options.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        renewTime: microTime(new Date()),
      };
      await this.api.replace(this.path, lease);
    } catch (err) {
      this.options.logger.warn({ err: String(err) }, 'could not release the lease');
    }
  }
}
