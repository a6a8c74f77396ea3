/**
 * The Helm chart against the real API server (scripts/kube-env, Kubernetes 1.20): `helm install`
 * as the README says it, `helm upgrade`, `helm uninstall`, with a real helm.
 *
 * - A typo in the values fails the install with a message, and leaves nothing behind.
 * - The install creates every object of the release with every field kept by the server, picks the
 *   PodDisruptionBudget version the server serves (policy/v1beta1 on 1.20), and the webhook,
 *   running with exactly the release's service account, creates its Secret and Lease and writes
 *   the caBundle.
 * - A pod in a labelled namespace is admitted, unchanged, while no webhook replica is reachable
 *   (fail-open: this API server has no pod network to reach the Service).
 * - An upgrade with new values changes the workloads and keeps the caBundle the webhook wrote.
 * - The uninstall removes every object of the release, cluster-scoped ones included.
 *
 * The bare API server runs no pods; the node tier (test/e2e/node) is where pods get the view.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chartDir, helm, releaseName, runHelm, withValuesFile } from '../../helpers/helm.js';
import { acquireKubeEnv, hasDaemonSetSurge, helmArgsWithoutSurge, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import { assertKept, removeNamespace } from '../../helpers/kube-objects.js';
import { find, type KubeObject, parseObjects, podSpecOf } from '../../helpers/kustomize.js';
import { eventually, startWebhook, type WebhookProcess, waitReady } from '../../helpers/webhook-process.js';

const namespace = 'lxcfs-ts';
const appNamespace = 'lxcfs-ts-e2e-helm-apps';
const configurationName = 'lxcfs-ts';
const saKubeconfig = join(tmpdir(), `lxcfs-ts-e2e-helm-${process.pid}.kubeconfig`);

type Configuration = { webhooks: { name: string; clientConfig: { caBundle?: string } }[] };

const idOf = (o: KubeObject) => `${o.kind}/${o.metadata.name}`;

describe('the Helm chart on a real API server', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  let webhook: WebhookProcess | undefined;
  let manifest: KubeObject[] = [];
  let caBundle = '';
  const h = (args: string[]) => helm(args, env.kubeconfig);

  /** The objects of the installed release, as the server has them (`kubectl get` of each). */
  const onServer = (objects: KubeObject[]) =>
    objects.map((o) => kubectl.try(['get', o.kind, o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '-o', 'json']));

  before(() => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    // Never touch an install that is not ours: this test creates and removes the namespace lxcfs-ts
    // and the cluster-wide configuration lxcfs-ts.
    assert.notEqual(kubectl.try(['get', 'namespace', namespace]).status, 0, `namespace ${namespace} already exists on this API server`);
    assert.notEqual(
      kubectl.try(['get', 'mutatingwebhookconfiguration', configurationName]).status,
      0,
      `MutatingWebhookConfiguration ${configurationName} already exists on this API server`,
    );
  });

  after(async () => {
    await webhook?.stop();
    rmSync(saKubeconfig, { force: true });
    if (kubectl) {
      runHelm(['uninstall', releaseName, '-n', namespace, '--wait=false'], env.kubeconfig);
      kubectl.try(['delete', 'mutatingwebhookconfiguration', configurationName]);
      kubectl.try(['delete', 'clusterrolebinding,clusterrole', 'lxcfs-ts-webhook']);
      // What is left is this test's (checked in before): no need to wait for a namespace controller.
      removeNamespace(kubectl, appNamespace, 1_000);
      removeNamespace(kubectl, namespace, 1_000);
    }
    env?.release();
  });

  /** On a server without DaemonSet surge (the 1.20 built here), the values the chart's README gives for one. */
  const strategyArgs = () => (hasDaemonSetSurge(kubectl) ? [] : helmArgsWithoutSurge);

  it('a typo in the values fails the install with a message naming it, and creates nothing', () => {
    const r = withValuesFile({ agent: { loadAvg: false } }, (args) =>
      runHelm(['install', releaseName, chartDir, '-n', namespace, '--create-namespace', ...args], env.kubeconfig));
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /agent: Additional property loadAvg is not allowed/);
    assert.notEqual(kubectl.try(['get', 'mutatingwebhookconfiguration', configurationName]).status, 0);
    assert.notEqual(kubectl.try(['get', 'namespace', namespace]).status, 0, 'not even the namespace');
  });

  it('helm install -n lxcfs-ts --create-namespace: every object of the release, every field kept', () => {
    h(['install', releaseName, chartDir, '-n', namespace, '--create-namespace', ...strategyArgs()]);
    const status = JSON.parse(h(['status', releaseName, '-n', namespace, '-o', 'json'])) as { info: { status: string }; version: number };
    assert.equal(status.info.status, 'deployed');
    assert.equal(status.version, 1);

    manifest = parseObjects(h(['get', 'manifest', releaseName, '-n', namespace]));
    assert.deepEqual(manifest.map(idOf).sort(), [
      'ClusterRole/lxcfs-ts-webhook',
      'ClusterRoleBinding/lxcfs-ts-webhook',
      'DaemonSet/lxcfs-ts-agent',
      'Deployment/lxcfs-ts-webhook',
      'MutatingWebhookConfiguration/lxcfs-ts',
      'PodDisruptionBudget/lxcfs-ts-webhook',
      'Role/lxcfs-ts-webhook',
      'RoleBinding/lxcfs-ts-webhook',
      'Service/lxcfs-ts-webhook',
      'ServiceAccount/lxcfs-ts-agent',
      'ServiceAccount/lxcfs-ts-webhook',
    ]);
    const served = new Set(kubectl(['api-versions']).split('\n').filter(Boolean));
    const pdb = find(manifest, 'PodDisruptionBudget', 'lxcfs-ts-webhook');
    assert.equal(pdb.apiVersion, served.has('policy/v1') ? 'policy/v1' : 'policy/v1beta1', 'the version this server serves');

    onServer(manifest).forEach((r, i) => {
      const { metadata, ...rest } = manifest[i]!;
      assert.equal(r.status, 0, `${idOf(manifest[i]!)} exists: ${r.stderr}`);
      const live = JSON.parse(r.stdout) as KubeObject;
      assertKept(live, { metadata: { name: metadata.name, labels: metadata.labels }, ...rest }, idOf(manifest[i]!));
      assert.equal(live.metadata.annotations?.['meta.helm.sh/release-name'], releaseName, `${idOf(live)} belongs to the release`);
    });
  });

  it('the webhook sets itself up with exactly the release\'s service account and permissions', async () => {
    const token = kubectl(['-n', namespace, 'create', 'token', 'lxcfs-ts-webhook', '--duration=1h']).trim();
    writeFileSync(saKubeconfig, readFileSync(env.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`));
    // The Deployment's own flags, except where it listens (here: a free loopback port).
    const container = podSpecOf(find(manifest, 'Deployment', 'lxcfs-ts-webhook')).containers[0]!;
    const flags = container.args!.slice(1).filter((a) => !a.startsWith('--listen') && !a.startsWith('--health-listen'));
    webhook = await startWebhook([...flags, '--kubeconfig', saKubeconfig, '--namespace', namespace]);
    await waitReady(webhook);

    const secret = await eventually('the Secret with the CA', () => {
      const r = kubectl.try(['-n', namespace, 'get', 'secret', 'lxcfs-ts-webhook-tls', '-o', 'json']);
      return r.status === 0 ? (JSON.parse(r.stdout) as { data: Record<string, string> }) : undefined;
    });
    caBundle = secret.data['ca-bundle.crt']!;
    assert.ok(caBundle, 'the Secret holds the bundle');
    await eventually('the caBundle in every entry of the release\'s configuration', () => {
      const c = kubectl.json<Configuration>(['get', 'mutatingwebhookconfiguration', configurationName]);
      return c.webhooks.every((w) => w.clientConfig.caBundle === caBundle) ? true : undefined;
    });
    assert.ok(kubectl.json<{ spec: { holderIdentity?: string } }>(['-n', namespace, 'get', 'lease', 'lxcfs-ts-webhook']).spec.holderIdentity);
    assert.doesNotMatch(webhook.output(), /forbidden/i);
    await webhook.stop();
    webhook = undefined;
  });

  it('fail-open: a pod in a labelled namespace is admitted unchanged while the webhook cannot be reached', () => {
    kubectl(['create', 'namespace', appNamespace]);
    kubectl(['label', 'namespace', appNamespace, 'lxcfs-ts.io/inject=enabled']);
    // No controller-manager here to create the default service account the pod runs as.
    kubectl(['-n', appNamespace, 'create', 'serviceaccount', 'default']);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app' }, spec: { containers: [{ name: 'app', image: 'busybox' }] } };
    // scripts/kube-env keeps the API server's log next to the kubeconfig.
    const log = join(dirname(env.kubeconfig), 'kube-apiserver.log');
    const logStart = statSync(log).size;
    const started = Date.now();
    type Pod = { spec: { volumes?: { name: string; hostPath?: unknown }[] } };
    const created = kubectl.json<Pod>(['-n', appNamespace, 'create', '-f', '-'], JSON.stringify(pod));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(!(created.spec.volumes ?? []).some((v) => v.hostPath), 'no view volumes: the call failed and the pod was let through');
    assert.ok(seconds < 15, `admitted within the webhook timeout and a margin (${seconds.toFixed(1)} s)`);
    // It was the release's entry for this namespace's label that was called, and it failed open.
    const logged = readFileSync(log).subarray(logStart).toString();
    assert.match(logged, /Failed calling webhook, failing open enabled\.lxcfs-ts\.io/);
    assert.doesNotMatch(logged, /failing open (optin|legacy-[a-z-]+)\.lxcfs-ts\.io/, 'only the entry of its label');
  });

  it('helm upgrade with new values changes the workloads and keeps the caBundle the webhook wrote', () => {
    withValuesFile({ agent: { disableSwap: true }, webhook: { replicas: 3, excludedNamespaces: ['batch'] } }, (args) =>
      h(['upgrade', releaseName, chartDir, '-n', namespace, ...args, ...strategyArgs()]));
    const status = JSON.parse(h(['status', releaseName, '-n', namespace, '-o', 'json'])) as { info: { status: string }; version: number };
    assert.deepEqual([status.info.status, status.version], ['deployed', 2]);
    const deployment = kubectl.json<{ spec: { replicas: number; template: { spec: { containers: { args: string[] }[] } } } }>(
      ['-n', namespace, 'get', 'deployment', 'lxcfs-ts-webhook'],
    );
    assert.equal(deployment.spec.replicas, 3);
    assert.ok(deployment.spec.template.spec.containers[0]!.args.includes('--exclude-namespace=batch'));
    const agentArgs = kubectl.json<{ spec: { template: { spec: { containers: { args: string[] }[] } } } }>(
      ['-n', namespace, 'get', 'daemonset', 'lxcfs-ts-agent'],
    ).spec.template.spec.containers[0]!.args;
    assert.ok(agentArgs.includes('-u'), agentArgs.join(' '));

    type Entry = {
      clientConfig: { caBundle?: string };
      namespaceSelector: { matchExpressions: { key: string; values?: string[] }[] };
    };
    const configuration = kubectl.json<{ webhooks: Entry[] }>(['get', 'mutatingwebhookconfiguration', configurationName]);
    assert.equal(configuration.webhooks.length, 4);
    for (const w of configuration.webhooks) {
      assert.equal(w.clientConfig.caBundle, caBundle, 'the caBundle survived the upgrade');
      const names = w.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
      assert.ok(names?.values?.includes('batch'), 'and the new values are in');
    }
  });

  it('helm uninstall removes every object of the release; the webhook\'s own Secret and Lease stay', () => {
    h(['uninstall', releaseName, '-n', namespace]);
    onServer(manifest).forEach((r, i) => {
      assert.notEqual(r.status, 0, `${idOf(manifest[i]!)} is gone`);
      assert.match(r.stderr, /NotFound/, idOf(manifest[i]!));
    });
    assert.equal(JSON.parse(h(['list', '-n', namespace, '-o', 'json'])).length, 0, 'no release left');
    assert.equal(kubectl.try(['-n', namespace, 'get', 'secret', 'lxcfs-ts-webhook-tls']).status, 0, 'made by the webhook, not by Helm');
  });
});
