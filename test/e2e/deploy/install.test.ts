/**
 * The rendered installs against the real API server (scripts/kube-env): every object of the
 * default install and of each overlay passes a server-side dry-run, and the server keeps every
 * field we set (an API server silently drops fields it does not know); then the default install's
 * namespace, RBAC and webhook configuration are applied for real and the webhook, running with
 * exactly that service account, creates its Secret and Lease and writes the caBundle, while the
 * account is refused everything else.
 *
 * Two things this API server (Kubernetes 1.20, the only version Debian packages) cannot take are
 * handled openly: PodDisruptionBudget is served there only as policy/v1beta1, so a policy/v1 one
 * is dry-run as v1beta1 (same fields); and cert-manager's kinds exist only where cert-manager is
 * installed, so they are dry-run only if the server serves cert-manager.io.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireKubeEnv, hasDaemonSetSurge, type Kubectl, type KubeEnv, kubectlFor, rolloutWithoutSurge } from '../../helpers/kube-env.js';
import { assertKept, removeNamespace } from '../../helpers/kube-objects.js';
import { find, installs, type KubeObject, podSpecOf, render } from '../../helpers/kustomize.js';
import { eventually, startWebhook, type WebhookProcess, waitReady } from '../../helpers/webhook-process.js';

const namespace = 'lxcfs-ts';
const configurationName = 'lxcfs-ts';
const webhookAccount = `system:serviceaccount:${namespace}:lxcfs-ts-webhook`;
const agentAccount = `system:serviceaccount:${namespace}:lxcfs-ts-agent`;
const saKubeconfig = join(tmpdir(), `lxcfs-ts-e2e-deploy-${process.pid}.kubeconfig`);

/** The agent's DaemonSet with the strategy of components/rollout-without-surge, where its own has surge. */
function withoutSurge(daemonSet: KubeObject): KubeObject {
  type Strategy = { rollingUpdate?: { maxSurge?: number } } | object;
  const copy = structuredClone(daemonSet) as KubeObject & { spec: { updateStrategy?: Strategy } };
  const strategy = copy.spec.updateStrategy as { rollingUpdate?: { maxSurge?: number } } | undefined;
  if (strategy?.rollingUpdate?.maxSurge) copy.spec.updateStrategy = rolloutWithoutSurge;
  return copy;
}

describe('the install on a real API server', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  let servedVersions: Set<string>;
  let createdNamespace = false;
  let webhook: WebhookProcess | undefined;
  const base = render('deploy');
  /** Whether the server knows DaemonSet surge; if not, the install's agent is sent as components/rollout-without-surge makes it. */
  let surge = true;

  before(() => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    // Never touch an install that is not ours (e.g. a node test's): this test creates and removes
    // the lxcfs-ts namespace and configuration.
    assert.notEqual(kubectl.try(['get', 'namespace', namespace]).status, 0, `namespace ${namespace} already exists on this API server`);
    assert.notEqual(
      kubectl.try(['get', 'mutatingwebhookconfiguration', configurationName]).status,
      0,
      `MutatingWebhookConfiguration ${configurationName} already exists on this API server`,
    );
    servedVersions = new Set(kubectl(['api-versions']).split('\n').filter(Boolean));
    surge = hasDaemonSetSurge(kubectl);
    const ns = find(base, 'Namespace', namespace);
    assert.match(kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(ns)), /created \(server dry run\)/);
    kubectl(['create', '-f', '-'], JSON.stringify(ns));
    createdNamespace = true;
  });

  after(async () => {
    await webhook?.stop();
    rmSync(saKubeconfig, { force: true });
    if (kubectl) {
      kubectl.try(['delete', 'mutatingwebhookconfiguration', configurationName]);
      kubectl.try(['delete', 'clusterrolebinding,clusterrole', 'lxcfs-ts-webhook']);
      if (createdNamespace) removeNamespace(kubectl, namespace);
    }
    env?.release();
  });

  for (const install of installs) {
    it(`${install}: every object passes a server-side dry-run and keeps every field`, () => {
      const objects = render(install);
      assert.deepEqual(find(objects, 'Namespace', namespace), find(base, 'Namespace', namespace), 'one namespace for all installs');
      const sent: KubeObject[] = [];
      const skipped: string[] = [];
      for (const o of objects) {
        if (o.kind === 'Namespace') continue; // created above, after its own dry-run
        let object = o;
        if (o.apiVersion === 'policy/v1' && o.kind === 'PodDisruptionBudget' && !servedVersions.has('policy/v1')) {
          assert.ok(servedVersions.has('policy/v1beta1'));
          object = { ...o, apiVersion: 'policy/v1beta1' };
        }
        if (o.kind === 'DaemonSet' && !surge) object = withoutSurge(object);
        if (!servedVersions.has(object.apiVersion)) {
          assert.match(object.apiVersion, /^cert-manager\.io\//, `${o.kind} ${o.metadata.name}: ${object.apiVersion} must be served`);
          skipped.push(`${o.kind}/${o.metadata.name}`);
          continue;
        }
        sent.push(object);
      }
      if (install.endsWith('cert-manager')) assert.equal(skipped.length + sent.length, objects.length - 1);
      else assert.deepEqual(skipped, []);
      for (const o of sent) {
        const r = kubectl.try(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(o));
        assert.equal(r.status, 0, `${o.kind}/${o.metadata.name} refused: ${r.stderr}`);
        const { metadata, ...rest } = o;
        const returned = JSON.parse(r.stdout) as KubeObject;
        assertKept(returned, { metadata: { name: metadata.name, labels: metadata.labels }, ...rest }, `${o.kind}/${metadata.name}`);
      }
    });
  }

  it('the webhook sets itself up with exactly the install\'s service account and permissions', async () => {
    const rbacKinds = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
    const items = base.filter((o) => rbacKinds.has(o.kind));
    kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    const token = kubectl(['-n', namespace, 'create', 'token', 'lxcfs-ts-webhook', '--duration=1h']).trim();
    writeFileSync(saKubeconfig, readFileSync(env.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`));

    // The Deployment's own flags, except where it listens (here: a free loopback port).
    const deployment = podSpecOf(find(base, 'Deployment', 'lxcfs-ts-webhook')).containers[0]!;
    const flags = deployment.args!.slice(1).filter((a) => !a.startsWith('--listen') && !a.startsWith('--health-listen'));
    webhook = await startWebhook([...flags, '--kubeconfig', saKubeconfig, '--namespace', namespace]);
    await waitReady(webhook);

    type Configuration = { webhooks: { clientConfig: { caBundle?: string } }[] };
    const secret = await eventually('the Secret with the CA', () => {
      const r = kubectl.try(['-n', namespace, 'get', 'secret', 'lxcfs-ts-webhook-tls', '-o', 'json']);
      return r.status === 0 ? (JSON.parse(r.stdout) as { data: Record<string, string> }) : undefined;
    });
    const bundle = secret.data['ca-bundle.crt'];
    assert.ok(bundle, 'the Secret holds the bundle');
    await eventually('the caBundle in every entry of the installed configuration', () => {
      const c = kubectl.json<Configuration>(['get', 'mutatingwebhookconfiguration', configurationName]);
      return c.webhooks.every((w) => w.clientConfig.caBundle === bundle) ? true : undefined;
    });
    const lease = kubectl.json<{ spec: { holderIdentity?: string } }>(['-n', namespace, 'get', 'lease', 'lxcfs-ts-webhook']);
    assert.ok(lease.spec.holderIdentity, 'the webhook holds its Lease');
    assert.doesNotMatch(webhook.output(), /forbidden/i);

    // Nothing more than that.
    const can = (as: string, ...args: string[]) => kubectl.try(['auth', 'can-i', '--as', as, ...args]).stdout.trim();
    assert.equal(can(webhookAccount, '-n', namespace, 'get', 'secret/lxcfs-ts-webhook-tls'), 'yes');
    assert.equal(can(webhookAccount, '-n', namespace, 'list', 'secrets'), 'no');
    assert.equal(can(webhookAccount, '-n', namespace, 'get', 'secret/other'), 'no');
    assert.equal(can(webhookAccount, '-n', 'default', 'create', 'secrets'), 'no');
    assert.equal(can(webhookAccount, 'update', `mutatingwebhookconfiguration/${configurationName}`), 'yes');
    assert.equal(can(webhookAccount, 'update', 'mutatingwebhookconfiguration/someone-else'), 'no');
    assert.equal(can(webhookAccount, 'create', 'mutatingwebhookconfigurations'), 'no');
    assert.equal(can(webhookAccount, 'delete', `mutatingwebhookconfiguration/${configurationName}`), 'no');
    assert.equal(can(webhookAccount, '-n', namespace, 'get', 'pods'), 'no');
    assert.equal(can(webhookAccount, 'list', 'namespaces'), 'no');
    assert.equal(can(agentAccount, '-n', namespace, 'get', 'pods'), 'no');
    assert.equal(can(agentAccount, '-n', namespace, 'get', 'secrets'), 'no');
  });
});
