/**
 * The default install (`kubectl kustomize deploy`): the checks every install passes, plus what
 * is particular to it: the conventions of the project (namespace, paths, flags), the webhook's
 * RBAC against the list the webhook's own e2e test proves sufficient, and the image.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  allContainers,
  find,
  type KubeObject,
  ofKind,
  parseObjects,
  podSpecOf,
  render,
  renderWithComponents,
} from '../../helpers/kustomize.js';
import { fixturePath, repoRoot } from '../../helpers/paths.js';
import { agentOf, checkInstall, namespace, webhookOf } from './install-checks.js';

const objects = render('deploy');

interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

const rulesOf = (o: KubeObject) => (o as unknown as { rules: Rule[] }).rules;

describe('the default install', () => {
  test('passes every install check', () => {
    checkInstall(objects);
  });

  test('has the namespace, the agent, the webhook and nothing else', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(kinds, [
      'ClusterRole/lxcfs-ts-webhook',
      'ClusterRoleBinding/lxcfs-ts-webhook',
      'DaemonSet/lxcfs-ts-agent',
      'Deployment/lxcfs-ts-webhook',
      'MutatingWebhookConfiguration/lxcfs-ts',
      'Namespace/lxcfs-ts',
      'PodDisruptionBudget/lxcfs-ts-webhook',
      'Role/lxcfs-ts-webhook',
      'RoleBinding/lxcfs-ts-webhook',
      'Service/lxcfs-ts-webhook',
      'ServiceAccount/lxcfs-ts-agent',
      'ServiceAccount/lxcfs-ts-webhook',
    ]);
    assert.equal(find(objects, 'PodDisruptionBudget', 'lxcfs-ts-webhook').apiVersion, 'policy/v1');
  });

  test('the agent serves /var/lib/lxcfs-ts/lxcfs with -l --enable-cfs --unbind-on-stop --after-handover wait; its parent is the Bidirectional volume', () => {
    const agent = agentOf(objects);
    assert.deepEqual(agent.container.args, ['-l', '--enable-cfs', '--unbind-on-stop', '--after-handover', 'wait', '/var/lib/lxcfs-ts/lxcfs']);
    const volume = agent.spec.volumes!.find((v) => v.name === 'view-parent');
    assert.deepEqual(volume?.hostPath, { path: '/var/lib/lxcfs-ts', type: 'DirectoryOrCreate' });
    const strategy = (agent.daemonSet as unknown as { spec: { updateStrategy: unknown } }).spec.updateStrategy;
    // Rollouts are takeovers: the new pod starts beside the old one.
    assert.deepEqual(strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
  });

  test('components/rollout-without-surge (before Kubernetes 1.25): one node at a time, the old pod stopping first', () => {
    const ds = find(renderWithComponents('rollout-without-surge'), 'DaemonSet', 'lxcfs-ts-agent') as unknown as { spec: { updateStrategy: unknown } };
    assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  });

  test('the webhook runs with the defaults the agent matches (no --view-dir, self-managed TLS)', () => {
    const { flags } = webhookOf(objects);
    assert.deepEqual(flags, ['--listen=0.0.0.0:8443', '--health-listen=0.0.0.0:8080']);
  });

  test('RBAC: the rules of the proven fixture, less `create` on the configuration (only --manage-config full creates it)', () => {
    const fixture = parseObjects(readFileSync(fixturePath('webhook', 'rbac.yaml'), 'utf8').replaceAll('NAMESPACE', namespace));
    const fixtureRole = fixture.find((o) => o.kind === 'Role')!;
    const fixtureClusterRole = fixture.find((o) => o.kind === 'ClusterRole')!;
    assert.deepEqual(rulesOf(find(objects, 'Role', 'lxcfs-ts-webhook')), rulesOf(fixtureRole));
    assert.deepEqual(
      rulesOf(find(objects, 'ClusterRole', 'lxcfs-ts-webhook')),
      rulesOf(fixtureClusterRole).filter((r) => !r.verbs.includes('create')),
    );
    assert.deepEqual(rulesOf(find(objects, 'ClusterRole', 'lxcfs-ts-webhook')), [
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['mutatingwebhookconfigurations'],
        resourceNames: ['lxcfs-ts'],
        verbs: ['get', 'update'],
      },
    ]);
  });

  test('every container runs the image of this version', () => {
    const { version } = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { version: string };
    const images = ['DaemonSet', 'Deployment'].flatMap((kind) =>
      ofKind(objects, kind).flatMap((o) => allContainers(podSpecOf(o)).map((c) => c.image)));
    assert.equal(images.length, 3);
    for (const image of images) assert.equal(image, `lxcfs-ts:${version}`);
  });
});
