/**
 * Where the serving certificate comes from:
 * - SecretTlsSource (`--tls self`): the webhook's own CA and certificate in a Secret, created and
 *   rotated by the replica holding the Lease, read by every replica.
 * - FileTlsSource (`--tls files` / `--tls cert-manager`): PEM files on disk (a mounted Secret written
 *   by cert-manager or anything else), re-read when they change.
 * Both are polled by the webhook's sync loop and hand back the material to serve and to publish.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../common/log.js';
import { isConflict, isNotFound, type KubeApi } from './kube-client.js';
import { type RotationPolicy, rotate, type TlsMaterial } from './tls-rotation.js';

export interface ServingMaterial {
  cert: string;
  key: string;
  /** PEM CAs to publish as caBundle ('' when unknown). */
  caBundle: string;
}

export interface TlsSource {
  load(): Promise<ServingMaterial | null>;
}

interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  type?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

const secretKeys: Record<keyof TlsMaterial, string> = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  cert: 'tls.crt',
  key: 'tls.key',
  caBundle: 'ca-bundle.crt',
};

export function materialFromSecret(secret: Secret | null): TlsMaterial {
  const decode = (k: string): string => Buffer.from(secret?.data?.[k] ?? '', 'base64').toString('utf8');
  return {
    caCert: decode(secretKeys.caCert),
    caKey: decode(secretKeys.caKey),
    cert: decode(secretKeys.cert),
    key: decode(secretKeys.key),
    caBundle: decode(secretKeys.caBundle),
  };
}

function secretData(material: TlsMaterial): Record<string, string> {
  const data: Record<string, string> = {};
  for (const [field, key] of Object.entries(secretKeys)) {
    data[key] = Buffer.from(material[field as keyof TlsMaterial]).toString('base64');
  }
  return data;
}

export interface SecretTlsSourceOptions {
  namespace: string;
  secretName: string;
  hosts: readonly string[];
  policy: RotationPolicy;
  /** Only the leader creates or rotates; the others read. */
  isLeader: () => boolean;
  logger: Logger;
  clock?: () => Date;
}

export class SecretTlsSource implements TlsSource {
  constructor(
    private readonly api: KubeApi,
    private readonly options: SecretTlsSourceOptions,
  ) {}

  private get path(): string {
    return `/api/v1/namespaces/${this.options.namespace}/secrets/${this.options.secretName}`;
  }

  async load(): Promise<ServingMaterial | null> {
    const { namespace, secretName, hosts, policy, logger } = this.options;
    let secret: Secret | null = null;
    try {
      secret = await this.api.get<Secret>(this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    let material = materialFromSecret(secret);
    if (this.options.isLeader()) {
      const rotated = await rotate(material, hosts, this.options.clock?.() ?? new Date(), policy);
      if (rotated) {
        const body: Secret = {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: {
            name: secretName,
            namespace,
            labels: { 'app.kubernetes.io/name': 'lxcfs-ts' },
            ...(secret?.metadata.resourceVersion ? { resourceVersion: secret.metadata.resourceVersion } : {}),
          },
          data: secretData(rotated.material),
        };
        try {
          if (secret === null) await this.api.create(`/api/v1/namespaces/${namespace}/secrets`, body);
          else await this.api.replace(this.path, body);
          material = rotated.material;
          logger.info({ secret: secretName, reasons: rotated.reasons }, 'certificates written');
        } catch (err) {
          // Another writer got there first: serve what is stored and look again next pass.
          if (!isConflict(err)) throw err;
        }
      }
    }
    if (!material.cert || !material.key) return null;
    return { cert: material.cert, key: material.key, caBundle: material.caBundle || material.caCert };
  }
}

export interface FileTlsSourceOptions {
  certFile: string;
  keyFile: string;
  /** Optional CA bundle to publish; without it nothing is published. */
  caFile?: string;
}

export class FileTlsSource implements TlsSource {
  constructor(private readonly options: FileTlsSourceOptions) {}

  async load(): Promise<ServingMaterial | null> {
    const { certFile, keyFile, caFile } = this.options;
    // Read all files in one go; a Secret volume swaps them atomically through a symlink.
    const [cert, key, caBundle] = await Promise.all([
      readFile(certFile, 'utf8'),
      readFile(keyFile, 'utf8'),
      caFile ? readFile(caFile, 'utf8') : Promise.resolve(''),
    ]);
    return { cert, key, caBundle };
  }
}
