/**
 * `lxcfs-ts webhook`: the admission webhook process. Wires the HTTPS server, the certificate source,
 * the Lease and the MutatingWebhookConfiguration reconciler together, and runs one sync loop.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createLogger, type Logger, type LogLevel, logLevels } from '../common/log.js';
import { describeCertificate, keyMatches } from './certificates.js';
import {
  injectionFlags,
  injectionHelp,
  injectionOptionsFrom,
  parseDuration,
  parseFlags,
  parseListen,
  UsageError,
} from './cli-options.js';
import { buildInjectionPlan, InjectionConfigError } from './injection-plan.js';
import { KubeClient, loadKubeConfig } from './kube-client.js';
import { podReader } from './pod-reader.js';
import { LeaderElector } from './lease.js';
import { WebhookMetrics } from './metrics.js';
import { defaultMaxBodyBytes, WebhookServer } from './server.js';
import { missingNamespace, parseExternalUrl, type SetupError } from './setup-problems.js';
import { FileTlsSource, SecretTlsSource, type ServingMaterial, type TlsSource } from './tls-source.js';
import {
  buildWebhookConfiguration,
  type ConfigurationOptions,
  ConfigurationReconciler,
} from './webhook-configuration.js';

const usage = `Usage: lxcfs-ts webhook [options]

Mutating admission webhook (admission.k8s.io/v1) that mounts the lxcfs-ts view files into pods,
and into the ephemeral containers (kubectl debug) added to pods that have them.
Serves POST /mutate and /mutate/optin, and GET /healthz, /readyz, /metrics over HTTPS.

Server:
  --listen HOST:PORT        HTTPS address (default 0.0.0.0:8443)
  --health-listen HOST:PORT also serve /healthz, /readyz, /metrics over plain HTTP here
  --max-body-bytes N        larger requests get 413 (default ${defaultMaxBodyBytes})
  --shutdown-delay DUR      on SIGTERM, report not ready and keep serving this long (default 5s)
  --log-level LEVEL         ${logLevels.join('|')} (default info)

Kubernetes:
  --kubeconfig FILE         API credentials (default: the pod's service account)
  --namespace NS            the webhook's namespace: Secret, Lease, never injected
                            (default: $POD_NAMESPACE or the service account's namespace)
  --service-name NAME       Service in front of the webhook (default lxcfs-ts-webhook)
  --service-port PORT       its port (default 443)
  --external-url URL        local mode: the API server calls URL (e.g. https://127.0.0.1:8443)
                            instead of the Service
  --manage-config MODE      full: create and keep the whole MutatingWebhookConfiguration "lxcfs-ts"
                            (default with --external-url); ca-bundle: only write its caBundle (default
                            otherwise); none: leave it alone
  --failure-policy P        Ignore (default) or Fail, for --manage-config full
  --timeout-seconds N       webhook call timeout, for --manage-config full (default 5)
  --exclude-namespace NS    never inject pods of NS (repeatable; kube-system and --namespace always)
  --lease-name NAME         Lease that elects the replica writing certificates (default lxcfs-ts-webhook)
  --lease-duration DUR      (default 15s)
  --print-config            print the MutatingWebhookConfiguration as JSON and exit

TLS:
  --tls MODE                self (default): own CA and certificate in a Secret, rotated before expiry;
                            files: --tls-cert-file/--tls-key-file (re-read on change), caBundle from
                            --ca-file; cert-manager: files from a mounted cert-manager Secret
                            (default directory /etc/lxcfs-ts/tls: tls.crt, tls.key, ca.crt)
  --tls-secret NAME         Secret for --tls self (default lxcfs-ts-webhook-tls)
  --tls-san NAME            extra DNS name or IP in the serving certificate (repeatable)
  --cert-validity DUR       serving certificate lifetime (default 2160h); renewed with 1/3 left
  --ca-validity DUR         CA lifetime (default 87600h); a new CA is trusted before it is used
  --tls-cert-file FILE, --tls-key-file FILE, --ca-file FILE
  --resync DUR              how often certificates and the configuration are checked (default 30s)

${injectionHelp}
`;

const flags = {
  listen: { type: 'string' },
  'health-listen': { type: 'string' },
  'max-body-bytes': { type: 'string' },
  'shutdown-delay': { type: 'string' },
  'log-level': { type: 'string' },
  kubeconfig: { type: 'string' },
  namespace: { type: 'string' },
  'service-name': { type: 'string' },
  'service-port': { type: 'string' },
  'external-url': { type: 'string' },
  'manage-config': { type: 'string' },
  'failure-policy': { type: 'string' },
  'timeout-seconds': { type: 'string' },
  'exclude-namespace': { type: 'string', multiple: true },
  'lease-name': { type: 'string' },
  'lease-duration': { type: 'string' },
  'print-config': { type: 'boolean' },
  tls: { type: 'string' },
  'tls-secret': { type: 'string' },
  'tls-san': { type: 'string', multiple: true },
  'cert-validity': { type: 'string' },
  'ca-validity': { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'ca-file': { type: 'string' },
  resync: { type: 'string' },
  ...injectionFlags,
} as const;

function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
  flag: string,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}`);
  return value as T;
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer`);
  return n;
}

function ownNamespace(flag: string | undefined): string {
  if (flag) return flag;
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim();
  } catch {
    return 'lxcfs-ts';
  }
}

type Values = ReturnType<typeof parseFlags<typeof flags>>['values'];

function buildSettings(values: Values) {
  const namespace = ownNamespace(values.namespace);
  const serviceName = values['service-name'] ?? 'lxcfs-ts-webhook';
  // Normalized to the origin, so the registered paths are exactly origin + /mutate[/optin].
  const externalUrl =
    values['external-url'] === undefined ? undefined : parseExternalUrl(values['external-url']).origin;
  const tlsMode = oneOf(values.tls, ['self', 'files', 'cert-manager'] as const, 'self', '--tls');
  const manage = oneOf(
    values['manage-config'],
    ['full', 'ca-bundle', 'none'] as const,
    externalUrl ? 'full' : 'ca-bundle',
    '--manage-config',
  );
  const excluded = [...new Set(['kube-system', namespace, ...(values['exclude-namespace'] ?? [])])];
  const configuration: ConfigurationOptions = {
    endpoint: externalUrl
      ? { url: externalUrl }
      : {
          service: {
            namespace,
            name: serviceName,
            port: positiveInt(values['service-port'], 443, '--service-port'),
          },
        },
    failurePolicy: oneOf(values['failure-policy'], ['Ignore', 'Fail'] as const, 'Ignore', '--failure-policy'),
    timeoutSeconds: positiveInt(values['timeout-seconds'], 5, '--timeout-seconds'),
    excludedNamespaces: excluded,
    sysinfo: injectionOptionsFrom(values).sysinfoProfile !== null,
  };
  const hosts = externalUrl
    ? [new URL(externalUrl).hostname.replace(/^\[|\]$/g, '')]
    : [
        `${serviceName}.${namespace}.svc`,
        `${serviceName}.${namespace}.svc.cluster.local`,
        `${serviceName}.${namespace}`,
        serviceName,
      ];
  hosts.push(...(values['tls-san'] ?? []));
  const certValidityMs = parseDuration(values['cert-validity'] ?? '2160h', '--cert-validity');
  return {
    namespace,
    tlsMode,
    manage,
    configuration,
    hosts: [...new Set(hosts)],
    certValidityMs,
    caValidityMs: parseDuration(values['ca-validity'] ?? '87600h', '--ca-validity'),
    resyncMs: Math.min(
      parseDuration(values.resync ?? '30s', '--resync'),
      Math.max(1000, certValidityMs / 10),
    ),
    leaseDurationMs: parseDuration(values['lease-duration'] ?? '15s', '--lease-duration'),
    shutdownDelayMs: parseDuration(values['shutdown-delay'] ?? '5s', '--shutdown-delay'),
    listen: parseListen(values.listen ?? '0.0.0.0:8443', '--listen'),
    healthListen: values['health-listen'] ? parseListen(values['health-listen'], '--health-listen') : null,
    maxBodyBytes: positiveInt(values['max-body-bytes'], defaultMaxBodyBytes, '--max-body-bytes'),
    logLevel: oneOf(values['log-level'], logLevels, 'info', '--log-level') as LogLevel,
    plan: buildInjectionPlan(injectionOptionsFrom(values)),
  };
}

type Settings = ReturnType<typeof buildSettings>;

function tlsSource(
  values: Values,
  settings: Settings,
  client: KubeClient | null,
  elector: LeaderElector | null,
  logger: Logger,
): TlsSource {
  if (settings.tlsMode === 'self') {
    if (!client) throw new UsageError('--tls self keeps its certificates in a Secret and needs API access');
    return new SecretTlsSource(client, {
      namespace: settings.namespace,
      secretName: values['tls-secret'] ?? 'lxcfs-ts-webhook-tls',
      hosts: settings.hosts,
      policy: {
        caValidityMs: settings.caValidityMs,
        servingValidityMs: settings.certValidityMs,
        renewFraction: 1 / 3,
        propagationDelayMs: Math.min(5 * 60_000, settings.certValidityMs / 6),
        caCommonName: `lxcfs-ts-webhook-ca@${Math.floor(Date.now() / 1000)}`,
      },
      isLeader: () => elector?.isLeader ?? true,
      logger,
    });
  }
  const dir = '/etc/lxcfs-ts/tls';
  const certManager = settings.tlsMode === 'cert-manager';
  const certFile = values['tls-cert-file'] ?? (certManager ? `${dir}/tls.crt` : undefined);
  const keyFile = values['tls-key-file'] ?? (certManager ? `${dir}/tls.key` : undefined);
  const caFile = values['ca-file'] ?? (certManager ? `${dir}/ca.crt` : undefined);
  if (!certFile || !keyFile) throw new UsageError('--tls files needs --tls-cert-file and --tls-key-file');
  return new FileTlsSource({ certFile, keyFile, ...(caFile ? { caFile } : {}) });
}

export async function main(argv: string[]): Promise<number> {
  let values: Values;
  let settings: Settings;
  try {
    values = parseFlags(argv, flags).values;
    if (values.help) {
      process.stdout.write(usage);
      return 0;
    }
    settings = buildSettings(values);
  } catch (err) {
    if (err instanceof UsageError || err instanceof InjectionConfigError) {
      process.stderr.write(`lxcfs-ts webhook: ${err.message}\n\n${usage}`);
      return 2;
    }
    throw err;
  }
  if (values['print-config']) {
    process.stdout.write(
      `${JSON.stringify(buildWebhookConfiguration(settings.configuration, ''), null, 2)}\n`,
    );
    return 0;
  }
  const logger = createLogger(settings.logLevel, { component: 'webhook' });
  return run(values, settings, logger);
}

async function run(values: Values, settings: Settings, logger: Logger): Promise<number> {
  const metrics = new WebhookMetrics({ processMetrics: true });
  const needsApi = settings.tlsMode === 'self' || settings.manage !== 'none';
  let client: KubeClient | null = null;
  if (needsApi) {
    try {
      client = new KubeClient(await loadKubeConfig(values.kubeconfig));
    } catch (err) {
      process.stderr.write(
        `lxcfs-ts webhook: cannot load Kubernetes credentials (${(err as Error).message}); ` +
        'pass --kubeconfig FILE, or run in a pod with a service account\n',
      );
      return 1;
    }
  }
  const identity = `${hostname()}-${randomBytes(3).toString('hex')}`;
  // A set-up mistake stops the process with one message naming the fix (exit code 1): retrying
  // would only repeat the API server's complaint while nothing gets registered.
  let draining = false;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const reportSetupError = (problem: SetupError | null): boolean => {
    if (problem === null) return false;
    if (!draining) {
      draining = true;
      logger.error({ namespace: settings.namespace }, problem.message);
      void stopAll(1);
    }
    return true;
  };
  const elector = client
    ? new LeaderElector(client, {
        namespace: settings.namespace,
        name: values['lease-name'] ?? 'lxcfs-ts-webhook',
        identity,
        leaseDurationMs: settings.leaseDurationMs,
        retryMs: Math.max(500, settings.leaseDurationMs / 3),
        logger,
        isFatal: (err) => reportSetupError(missingNamespace(err, settings.namespace)),
        onChange: (leader) => {
          metrics.leader.set(leader ? 1 : 0);
          logger.info({ identity, leader }, leader ? 'leading' : 'not leading');
          if (leader) void sync(); // write certificates and caBundle without waiting for the next pass
        },
      })
    : null;
  let source: TlsSource;
  try {
    source = tlsSource(values, settings, client, elector, logger);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`lxcfs-ts webhook: ${err.message}\n\n${usage}`);
      return 2;
    }
    throw err;
  }
  const reconciler =
    client && settings.manage !== 'none'
      ? new ConfigurationReconciler(client, settings.manage, settings.configuration, logger, metrics)
      : null;

  const server = new WebhookServer({
    settings: {
      plan: settings.plan,
      excludedNamespaces: settings.configuration.excludedNamespaces,
      ...(client ? { readPod: podReader(client) } : {}),
    },
    metrics,
    logger,
    maxBodyBytes: settings.maxBodyBytes,
    isReady: () => !draining,
  });
  let listening = false;
  let syncing: Promise<void> | null = null;
  let lastError = '';

  const syncOnce = async (): Promise<void> => {
    let material: ServingMaterial | null = null;
    try {
      material = await source.load();
    } catch (err) {
      metrics.reconcileErrors.inc({ loop: 'certificates' });
      throw err;
    }
    if (!material) return;
    if (!keyMatches(material.cert, material.key)) throw new Error('serving certificate and key do not match');
    server.setCertificate({ cert: material.cert, key: material.key });
    metrics.certificateExpiry.set(describeCertificate(material.cert).notAfter.getTime() / 1000);
    if (!listening) {
      const address = await server.listen(settings.listen.host, settings.listen.port);
      listening = true;
      logger.info({ address: `${address.address}:${address.port}` }, 'serving HTTPS');
    }
    if (reconciler && material.caBundle && (elector?.isLeader ?? true)) {
      try {
        await reconciler.reconcile(material.caBundle);
      } catch (err) {
        metrics.reconcileErrors.inc({ loop: 'configuration' });
        throw err;
      }
    }
  };
  const sync = (): Promise<void> => {
    syncing ??= syncOnce()
      .then(() => {
        lastError = '';
      })
      .catch((err: unknown) => {
        if (reportSetupError(missingNamespace(err, settings.namespace))) return;
        const message = String(err instanceof Error ? err.message : err);
        if (message !== lastError) logger.warn({ err: message }, 'sync failed; retrying');
        lastError = message;
      })
      .finally(() => {
        syncing = null;
      });
    return syncing;
  };

  if (settings.healthListen) {
    const a = await server.listenHealth(settings.healthListen.host, settings.healthListen.port);
    logger.info({ address: `${a.address}:${a.port}` }, 'serving health and metrics over HTTP');
  }
  elector?.start();
  let timer: NodeJS.Timeout | null = null;
  const loop = async (): Promise<void> => {
    await sync();
    if (!draining) timer = setTimeout(loop, listening ? settings.resyncMs : 1000);
  };
  void loop();

  async function stopAll(code: number): Promise<void> {
    if (timer) clearTimeout(timer);
    await elector?.stop();
    await server.close();
    client?.close();
    finish(code);
  }
  const shutdown = (signal: string): void => {
    if (draining) return;
    draining = true;
    logger.info({ signal, delayMs: settings.shutdownDelayMs }, 'shutting down');
    setTimeout(() => void stopAll(0), settings.shutdownDelayMs);
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return finished;
}
