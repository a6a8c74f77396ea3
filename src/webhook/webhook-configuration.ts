/**
 * The MutatingWebhookConfiguration `lxcfs-ts`: how it is built, and how the webhook keeps it
 * current (the whole object in local mode, only the caBundle when the manifests own it).
 *
 * Namespace selection is done by the API server: one webhook entry per way a namespace can ask for
 * injection, each calling the path that tells the handler which mode applies (the review does not
 * carry namespace labels). Namespaces that enforce the baseline or restricted Pod Security level are
 * left out: those levels forbid hostPath volumes, so a mutated pod would be rejected there.
 */
import type { Logger } from '../common/log.js';
import { isConflict, isNotFound, type KubeApi } from './kube-client.js';
import type { WebhookMetrics } from './metrics.js';
import { sysinfoKey, sysinfoPathSuffix } from './seccomp-injection.js';
import { legacyNamespaceLabels, namespaceLabel } from './selection.js';

export const configurationName = 'lxcfs-ts';
const apiPath = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

export type Endpoint = { url: string } | { service: { namespace: string; name: string; port: number } };

export interface ConfigurationOptions {
  endpoint: Endpoint;
  failurePolicy: 'Ignore' | 'Fail';
  timeoutSeconds: number;
  excludedNamespaces: readonly string[];
  /** The syscall view is offered: namespaces labelled for it get entries (and paths) of their own. */
  sysinfo?: boolean;
}

type Json = Record<string, unknown>;

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

function clientConfig(endpoint: Endpoint, path: string, caBundle: string): Json {
  const ca = caBundle ? { caBundle: Buffer.from(caBundle).toString('base64') } : {};
  if ('url' in endpoint) return { url: `${endpoint.url.replace(/\/+$/, '')}${path}`, ...ca };
  return { service: { ...endpoint.service, path }, ...ca };
}

export function buildWebhookConfiguration(options: ConfigurationOptions, caBundlePem: string): Json {
  const common: Requirement[] = [
    { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...options.excludedNamespaces] },
    { key: 'pod-security.kubernetes.io/enforce', operator: 'NotIn', values: ['baseline', 'restricted'] },
  ];
  const [aliyun, mountLxcfs] = legacyNamespaceLabels;
  const modes = [
    { name: 'enabled', path: '/mutate' },
    { name: 'optin', path: '/mutate/optin' },
  ];
  const modeEntries = modes.flatMap((m) => {
    const label: Requirement = { key: namespaceLabel, operator: 'In', values: [m.name] };
    if (!options.sysinfo) return [{ name: `${m.name}.lxcfs-ts.io`, path: m.path, match: [label] }];
    return [
      {
        name: `${m.name}.lxcfs-ts.io`,
        path: m.path,
        match: [label, { key: sysinfoKey, operator: 'NotIn', values: ['enabled'] } as Requirement],
      },
      {
        name: `${m.name}-sysinfo.lxcfs-ts.io`,
        path: `${m.path}${sysinfoPathSuffix}`,
        match: [label, { key: sysinfoKey, operator: 'In', values: ['enabled'] } as Requirement],
      },
    ];
  });
  const entries: { name: string; path: string; match: Requirement[] }[] = [
    ...modeEntries,
    {
      name: `legacy-${aliyun}.lxcfs-ts.io`,
      path: '/mutate',
      match: [
        { key: aliyun, operator: 'In', values: ['enabled'] },
        { key: namespaceLabel, operator: 'DoesNotExist' },
      ],
    },
    {
      name: `legacy-${mountLxcfs}.lxcfs-ts.io`,
      path: '/mutate',
      match: [
        { key: mountLxcfs, operator: 'In', values: ['enabled'] },
        { key: aliyun, operator: 'NotIn', values: ['enabled'] },
        { key: namespaceLabel, operator: 'DoesNotExist' },
      ],
    },
  ];
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: configurationName, labels: { 'app.kubernetes.io/name': 'lxcfs-ts' } },
    webhooks: entries.map((e) => ({
      name: e.name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: options.failurePolicy,
      timeoutSeconds: options.timeoutSeconds,
      matchPolicy: 'Equivalent',
      reinvocationPolicy: 'IfNeeded',
      clientConfig: clientConfig(options.endpoint, e.path, caBundlePem),
      namespaceSelector: { matchExpressions: [...e.match, ...common] },
      rules: [
        {
          operations: ['CREATE'],
          apiGroups: [''],
          apiVersions: ['v1'],
          resources: ['pods'],
          scope: 'Namespaced',
        },
        // `kubectl debug`: a new ephemeral container mounts the pod's view volumes.
        {
          operations: ['UPDATE'],
          apiGroups: [''],
          apiVersions: ['v1'],
          resources: ['pods/ephemeralcontainers'],
          scope: 'Namespaced',
        },
      ],
    })),
  };
}

/** True when every field of `want` is present in `have` with the same value (the server adds defaults). */
export function containsSubset(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) {
    return (
      Array.isArray(have) && have.length === want.length && want.every((w, i) => containsSubset(have[i], w))
    );
  }
  if (typeof want === 'object' && want !== null) {
    if (typeof have !== 'object' || have === null || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, v]) => containsSubset((have as Json)[k], v));
  }
  return have === want;
}

export type ReconcileResult = 'created' | 'updated' | 'unchanged' | 'missing';

interface Configuration extends Json {
  metadata: { name: string; resourceVersion?: string } & Json;
  webhooks?: ({ clientConfig?: Json } & Json)[];
}

export class ConfigurationReconciler {
  constructor(
    private readonly api: KubeApi,
    /** full: own the whole object (local mode); ca-bundle: only write caBundle into what the manifests created. */
    private readonly mode: 'full' | 'ca-bundle',
    private readonly options: ConfigurationOptions,
    private readonly logger: Logger,
    private readonly metrics: WebhookMetrics,
  ) {}

  async reconcile(caBundlePem: string): Promise<ReconcileResult> {
    let current: Configuration | null = null;
    try {
      current = await this.api.get<Configuration>(`${apiPath}/${configurationName}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const result =
      this.mode === 'full' ? await this.full(current, caBundlePem) : await this.caOnly(current, caBundlePem);
    if (result === 'created' || result === 'updated') {
      this.metrics.caBundleUpdates.inc();
      this.logger.info({ configuration: configurationName, result }, 'MutatingWebhookConfiguration written');
    }
    return result;
  }

  private async full(current: Configuration | null, caBundlePem: string): Promise<ReconcileResult> {
    const desired = buildWebhookConfiguration(this.options, caBundlePem) as Configuration;
    if (current === null) {
      await this.write(() => this.api.create(apiPath, desired));
      return 'created';
    }
    if (containsSubset(current.webhooks, desired.webhooks)) return 'unchanged';
    const next = { ...current, webhooks: desired.webhooks };
    await this.write(() => this.api.replace(`${apiPath}/${configurationName}`, next));
    return 'updated';
  }

  private async caOnly(current: Configuration | null, caBundlePem: string): Promise<ReconcileResult> {
    if (current === null) {
      this.logger.warn(
        { configuration: configurationName },
        'MutatingWebhookConfiguration not found; install it',
      );
      return 'missing';
    }
    const encoded = Buffer.from(caBundlePem).toString('base64');
    const webhooks = current.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig?.caBundle === encoded)) return 'unchanged';
    const next = {
      ...current,
      webhooks: webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: encoded } })),
    };
    await this.write(() => this.api.replace(`${apiPath}/${configurationName}`, next));
    return 'updated';
  }

  private async write(call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      if (isConflict(err))
        throw new Error('MutatingWebhookConfiguration changed meanwhile; retrying on the next pass');
      throw err;
    }
  }
}
