/**
 * The overlays and components: each renders, passes every install check, and changes exactly
 * what it is for.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import {
  allContainers,
  find,
  type KubeObject,
  ofKind,
  podSpecOf,
  render,
  renderWithComponents as withComponents,
} from '../../helpers/kustomize.js';
import { agentOf, checkInstall, injectedPod, namespace, webhookOf } from './install-checks.js';

const base = render('deploy');

describe('overlays/legacy-lxcfs: LXCFS\'s paths and flags', () => {
  const objects = render('deploy/overlays/legacy-lxcfs');

  test('passes every install check', () => checkInstall(objects));

  test('the agent serves /var/lib/lxcfs with the same flags, from a Bidirectional /var/lib', () => {
    const agent = agentOf(objects);
    assert.deepEqual(agent.container.args, ['-l', '--enable-cfs', '--unbind-on-stop', '--after-handover', 'wait', '/var/lib/lxcfs']);
    assert.deepEqual(agent.spec.volumes!.find((v) => v.name === 'view-parent')?.hostPath, { path: '/var/lib', type: 'Directory' });
  });

  test('pods get /var/lib/lxcfs/proc/... and no parent directory (it would be /var/lib)', () => {
    const webhook = webhookOf(objects);
    assert.deepEqual(webhook.flags.slice(-2), ['--view-dir=/var/lib/lxcfs', '--no-parent-mount']);
    const pod = injectedPod(webhook);
    const paths = pod.spec.volumes.flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));
    assert.ok(paths.includes('/var/lib/lxcfs/proc/meminfo'));
    assert.ok(paths.includes('/var/lib/lxcfs/sys/devices/system/cpu/online'));
    assert.ok(paths.every((p) => p.startsWith('/var/lib/lxcfs/')), paths.join(' '));
  });

  test('everything else is the default install', () => {
    const changed = new Set(['DaemonSet/lxcfs-ts-agent', 'Deployment/lxcfs-ts-webhook']);
    for (const o of objects.filter((x) => !changed.has(`${x.kind}/${x.metadata.name}`))) {
      assert.deepEqual(o, find(base, o.kind, o.metadata.name));
    }
  });
});

describe('overlays/cert-manager: TLS from cert-manager, no API access for the webhook', () => {
  const objects = render('deploy/overlays/cert-manager');

  test('passes every install check', () => checkInstall(objects));

  test('the webhook reads cert-manager\'s Secret and leaves the configuration to cainjector', () => {
    const webhook = webhookOf(objects);
    assert.deepEqual(webhook.flags.slice(-2), ['--tls=cert-manager', '--manage-config=none']);
    assert.equal(webhook.spec.automountServiceAccountToken, false);
    const mount = webhook.container.volumeMounts?.find((m) => m.mountPath === '/etc/lxcfs-ts/tls');
    assert.ok(mount?.readOnly, 'the Secret at the directory --tls cert-manager reads');
    const volume = webhook.spec.volumes!.find((v) => v.name === mount.name);
    const serving = find(objects, 'Certificate', 'lxcfs-ts-webhook') as unknown as {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { kind: string; name: string }; isCA?: boolean };
    };
    assert.equal(volume?.secret?.secretName, serving.spec.secretName);
    assert.ok(serving.spec.dnsNames.includes(`lxcfs-ts-webhook.${namespace}.svc`), 'the name the API server calls');
    const configuration = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-ts');
    assert.equal(configuration.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${namespace}/lxcfs-ts-webhook`);
  });

  test('a CA issued by a self-signed root signs the serving certificate; the CA keeps its key', () => {
    type Certificate = {
      spec: {
        isCA?: boolean;
        secretName: string;
        issuerRef: { kind: string; name: string };
        privateKey: { rotationPolicy: string };
      };
    };
    type Issuer = { spec: { selfSigned?: object; ca?: { secretName: string } } };
    const serving = find(objects, 'Certificate', 'lxcfs-ts-webhook') as unknown as Certificate;
    const caIssuer = find(objects, serving.spec.issuerRef.kind, serving.spec.issuerRef.name) as unknown as Issuer;
    const caCert = ofKind(objects, 'Certificate').find(
      (c) => (c as unknown as Certificate).spec.secretName === caIssuer.spec.ca?.secretName,
    ) as unknown as Certificate;
    assert.equal(caCert.spec.isCA, true);
    assert.equal(caCert.spec.privateKey.rotationPolicy, 'Never', 'a renewed CA keeps its key: the caBundle does not churn');
    const root = find(objects, caCert.spec.issuerRef.kind, caCert.spec.issuerRef.name) as unknown as Issuer;
    assert.deepEqual(root.spec.selfSigned, {});
  });

  test('the webhook has no RBAC at all', () => {
    for (const kind of ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']) assert.deepEqual(ofKind(objects, kind), []);
  });
});

describe('overlays/local-node: the image built on the machine, on Kubernetes 1.20', () => {
  const objects = render('deploy/overlays/local-node');

  test('passes every install check', () => checkInstall(objects));

  test('every container runs lxcfs-ts:dev and never pulls it', () => {
    for (const kind of ['DaemonSet', 'Deployment']) {
      for (const workload of ofKind(objects, kind)) {
        for (const c of allContainers(podSpecOf(workload))) {
          assert.equal(c.image, 'lxcfs-ts:dev', `${workload.metadata.name}/${c.name}`);
          assert.equal(c.imagePullPolicy, 'Never', `${workload.metadata.name}/${c.name}`);
        }
      }
    }
  });

  test('otherwise the default install with the syscall view offered, rollouts without surge, the PodDisruptionBudget as policy/v1beta1', () => {
    const normalize = (list: KubeObject[]) =>
      list.map((o) => {
        const copy = structuredClone(o);
        if (copy.kind === 'PodDisruptionBudget') copy.apiVersion = 'policy/*';
        if (copy.kind === 'DaemonSet' || copy.kind === 'Deployment') {
          for (const c of allContainers(podSpecOf(copy))) {
            c.image = 'IMAGE';
            delete c.imagePullPolicy;
          }
        }
        return copy;
      });
    const sorted = (list: KubeObject[]) => [...list].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    assert.equal(find(objects, 'PodDisruptionBudget', 'lxcfs-ts-webhook').apiVersion, 'policy/v1beta1');
    assert.deepEqual(sorted(normalize(objects)), sorted(normalize(withComponents('sysinfo', 'rollout-without-surge'))));
  });
});

describe('components', () => {
  test('update-on-delete: agent pods are replaced only when deleted', () => {
    const objects = withComponents('update-on-delete');
    checkInstall(objects);
    const spec = (find(objects, 'DaemonSet', 'lxcfs-ts-agent') as unknown as { spec: { updateStrategy: unknown } }).spec;
    assert.deepEqual(spec.updateStrategy, { type: 'OnDelete' });
  });

  test('ephemeral-containers-before-1.22: the webhook may get pods, nothing more', () => {
    const objects = withComponents('ephemeral-containers-before-1.22');
    checkInstall(objects);
    const role = find(objects, 'ClusterRole', 'lxcfs-ts-webhook-read-pods') as unknown as { rules: unknown[] };
    assert.deepEqual(role.rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
    const added = objects.filter((o) => !base.some((b) => b.kind === o.kind && b.metadata.name === o.metadata.name));
    assert.deepEqual(added.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      'ClusterRole/lxcfs-ts-webhook-read-pods',
      'ClusterRoleBinding/lxcfs-ts-webhook-read-pods',
    ]);
  });

  test('sysinfo: the agent listens and writes the profile where the node has them; the webhook offers it', () => {
    const objects = withComponents('sysinfo');
    checkInstall(objects);
    const agent = agentOf(objects);
    const flag = (name: string) => agent.container.args!.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
    const socketDir = dirname(flag('--sysinfo-socket')!);
    const seccompDir = flag('--seccomp-profile-dir')!;
    assert.equal(seccompDir, '/var/lib/kubelet/seccomp');
    for (const path of [socketDir, seccompDir]) {
      const mount = agent.container.volumeMounts!.find((m) => m.mountPath === path);
      const volume = agent.spec.volumes!.find((v) => v.name === mount?.name);
      // runc and the kubelet use these paths on the node: the agent must see them at the same place.
      assert.deepEqual(volume?.hostPath, { path, type: 'DirectoryOrCreate' }, path);
    }
    assert.ok(!socketDir.startsWith('/var/lib/lxcfs-ts'), 'the socket is not in the directory pods get mounted');
    assert.equal(agent.mountpoint, agentOf(base).mountpoint);
    assert.ok(webhookOf(objects).flags.includes('--sysinfo'));
    const changed = new Set(['DaemonSet/lxcfs-ts-agent', 'Deployment/lxcfs-ts-webhook', 'MutatingWebhookConfiguration/lxcfs-ts']);
    for (const o of objects.filter((x) => !changed.has(`${x.kind}/${x.metadata.name}`))) {
      assert.deepEqual(o, find(base, o.kind, o.metadata.name));
    }
  });

  test('they compose: legacy paths with cert-manager and update-on-delete', () => {
    const objects = withComponents('legacy-lxcfs-paths', 'cert-manager', 'update-on-delete');
    checkInstall(objects);
    assert.equal(agentOf(objects).mountpoint, '/var/lib/lxcfs');
    assert.ok(webhookOf(objects).flags.includes('--tls=cert-manager'));
  });
});
