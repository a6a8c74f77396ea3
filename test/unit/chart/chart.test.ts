/**
 * The Helm chart (charts/lxcfs-ts) rendered with a real helm: it lints strictly, every render
 * passes the checks every install passes (test/unit/deploy/install-checks.ts: hardening,
 * fail-open, least privilege, agent and webhook agreeing), its defaults and the value sets that
 * have a kustomize counterpart are deploy/ object for object except the differences listed in the
 * chart's README, and values.schema.json turns a typo into an error naming it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { chartDir, helm, template, templateResult, withValuesFile } from '../../helpers/helm.js';
import {
  allContainers,
  find,
  type KubeObject,
  ofKind,
  podLabelsOf,
  podSpecOf,
  render,
  renderWithComponents,
} from '../../helpers/kustomize.js';
import { type Difference, renderDifferences, sortDifferences } from '../../helpers/object-diff.js';
import { repoRoot } from '../../helpers/paths.js';
import { agentOf, checkInstall, flagValue, injectedPod, webhookOf } from '../deploy/install-checks.js';

const asChart = { namespaceFromInstaller: true };

/** The table of differences from deploy/ in the chart's README (between its two markers). */
function documentedDifferences(): Difference[] {
  const readme = readFileSync(`${chartDir}/README.md`, 'utf8');
  const start = readme.indexOf('<!-- differences:start -->');
  const end = readme.indexOf('<!-- differences:end -->');
  assert.ok(start >= 0 && end > start, 'the chart README has the differences table between its markers');
  const rows = readme.slice(start, end).split('\n').filter((l) => l.startsWith('|')).slice(2);
  assert.ok(rows.length > 0, 'the table has rows');
  return sortDifferences(rows.map((row) => {
    const [object, field, change] = row.split('|').slice(1, 4).map((c) => c.trim().replaceAll('`', ''));
    assert.ok(['only in the chart', 'only in deploy/', 'changed'].includes(change!), `row "${row}": difference "${change}"`);
    return { object: object!, field: field!, change: change as Difference['change'] };
  }));
}

const documented = documentedDifferences();

const withoutDocumented = (actual: Difference[]) =>
  actual.filter((d) => !documented.some((x) => JSON.stringify(x) === JSON.stringify(d)));

describe('the chart lints and follows the project', () => {
  test('helm lint --strict passes, with the defaults and with every option switched', () => {
    helm(['lint', '--strict', chartDir]);
    withValuesFile({
      agent: { legacyLxcfsLayout: true, disableSwap: true }, webhook: { tls: { mode: 'cert-manager' } }, syscallView: { enabled: true },
    }, (args) =>
      helm(['lint', '--strict', chartDir, ...args]));
  });

  test('its version and appVersion are the project\'s', () => {
    const { version } = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as { version: string };
    const chart = parse(readFileSync(`${chartDir}/Chart.yaml`, 'utf8')) as { version: string; appVersion: string };
    assert.equal(chart.version, version);
    assert.equal(chart.appVersion, version);
  });
});

describe('the default render', () => {
  const objects = template();

  test('passes every install check', () => checkInstall(objects, asChart));

  test('is `kubectl kustomize deploy` object for object, except each difference the chart README lists', () => {
    assert.deepEqual(renderDifferences(objects, render('deploy')), documented);
  });

  test('every container runs the chart\'s appVersion, pulled as Kubernetes decides', () => {
    const images = ['DaemonSet', 'Deployment'].flatMap((kind) => ofKind(objects, kind).flatMap((o) => allContainers(podSpecOf(o))));
    assert.equal(images.length, 3);
    for (const c of images) {
      assert.equal(c.image, 'lxcfs-ts:0.1.0');
      assert.equal(c.imagePullPolicy, undefined);
    }
  });
});

describe('value sets with a kustomize counterpart: the same objects, the same listed differences', () => {
  // Equal to a kustomize render that test/unit/deploy checks; the full install checks run once,
  // on the combination (each of them costs a few seconds of `lxcfs-ts` runs).
  const cases: { name: string; values: object; deploy: () => KubeObject[]; check?: boolean }[] = [
    { name: 'agent.legacyLxcfsLayout = overlays/legacy-lxcfs', values: { agent: { legacyLxcfsLayout: true } }, deploy: () => render('deploy/overlays/legacy-lxcfs') },
    { name: 'webhook.tls.mode cert-manager = overlays/cert-manager', values: { webhook: { tls: { mode: 'cert-manager' } } }, deploy: () => render('deploy/overlays/cert-manager') },
    { name: 'agent.updateStrategy OnDelete = components/update-on-delete', values: { agent: { updateStrategy: { type: 'OnDelete' } } }, deploy: () => renderWithComponents('update-on-delete') },
    {
      name: 'agent.updateStrategy without surge = components/rollout-without-surge',
      values: { agent: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } } } },
      deploy: () => renderWithComponents('rollout-without-surge'),
    },
    // The configuration is also checked against `lxcfs-ts webhook --print-config --sysinfo`.
    { name: 'syscallView.enabled = components/sysinfo', values: { syscallView: { enabled: true } }, deploy: () => renderWithComponents('sysinfo'), check: true },
    {
      name: 'all three = the three components together',
      values: { agent: { legacyLxcfsLayout: true, updateStrategy: { type: 'OnDelete' } }, webhook: { tls: { mode: 'cert-manager' } } },
      deploy: () => renderWithComponents('legacy-lxcfs-paths', 'cert-manager', 'update-on-delete'),
      check: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const objects = template(c.values);
      if (c.check) checkInstall(objects, asChart);
      assert.deepEqual(withoutDocumented(renderDifferences(objects, c.deploy())), []);
    });
  }

  test('OnDelete renders no rollingUpdate (the API server refuses one)', () => {
    const ds = find(template({ agent: { updateStrategy: { type: 'OnDelete' } } }), 'DaemonSet', 'lxcfs-ts-agent') as unknown as { spec: { updateStrategy: unknown } };
    assert.deepEqual(ds.spec.updateStrategy, { type: 'OnDelete' });
  });

  test('cert-manager: no RBAC and no API token for the webhook', () => {
    const objects = template({ webhook: { tls: { mode: 'cert-manager' } } });
    for (const kind of ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']) assert.deepEqual(ofKind(objects, kind), []);
    assert.equal(webhookOf(objects).spec.automountServiceAccountToken, false);
  });
});

describe('value sets of the chart alone', () => {
  test('another release namespace: every object, the configuration and the RBAC follow it', () => {
    checkInstall(template({}, 'node-views'), asChart);
    const objects = template({ webhook: { tls: { mode: 'cert-manager' } } }, 'node-views');
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
    for (const o of objects) assert.equal(o.metadata.namespace, clusterScoped.has(o.kind) ? undefined : 'node-views', `${o.kind}/${o.metadata.name}`);
    const cert = find(objects, 'Certificate', 'lxcfs-ts-webhook') as unknown as { spec: { dnsNames: string[] } };
    assert.ok(cert.spec.dnsNames.includes('lxcfs-ts-webhook.node-views.svc'));
    assert.equal(find(objects, 'MutatingWebhookConfiguration', 'lxcfs-ts').metadata.annotations?.['cert-manager.io/inject-ca-from'], 'node-views/lxcfs-ts-webhook');
  });

  test('the syscall view with another kubelet directory: the agent writes the profile and mounts it there', () => {
    const objects = template({ syscallView: { enabled: true, kubeletSeccompDir: '/var/lib/k0s/kubelet/seccomp' } });
    const agent = agentOf(objects);
    assert.ok(agent.container.args!.includes('--seccomp-profile-dir=/var/lib/k0s/kubelet/seccomp'));
    const mount = agent.container.volumeMounts!.find((m) => m.mountPath === '/var/lib/k0s/kubelet/seccomp');
    assert.deepEqual(agent.spec.volumes!.find((v) => v.name === mount?.name)?.hostPath, { path: '/var/lib/k0s/kubelet/seccomp', type: 'DirectoryOrCreate' });
  });

  test('agent flags: loadavg, cfs and unbind-on-stop off, swap hidden, extra flags before the mountpoint', () => {
    const objects = template({ agent: { loadavg: false, cfs: false, unbindOnStop: false, disableSwap: true, extraArgs: ['--threads=4'] } });
    assert.deepEqual(agentOf(objects).container.args, ['-u', '--after-handover', 'wait', '--threads=4', '/var/lib/lxcfs-ts/lxcfs']);
  });

  test('a view directory of its own: agent, probe, cleanup and webhook all move with it', () => {
    const objects = template({ agent: { viewDir: '/run/lxcfs-ts/view' } });
    checkInstall(objects, asChart);
    const agent = agentOf(objects);
    assert.equal(agent.mountpoint, '/run/lxcfs-ts/view');
    assert.deepEqual(agent.spec.volumes!.find((v) => v.name === 'view-parent')?.hostPath, { path: '/run/lxcfs-ts', type: 'DirectoryOrCreate' });
    assert.equal(flagValue(webhookOf(objects).flags, '--view-dir'), '/run/lxcfs-ts/view');
  });

  test('webhook options: replicas, excluded namespaces, timeout, files, init containers', () => {
    const objects = template({
      webhook: { replicas: 3, excludedNamespaces: ['batch', 'ci'], timeoutSeconds: 8, files: ['default', 'pressure'], initContainers: true },
    });
    checkInstall(objects, asChart);
    const webhook = webhookOf(objects);
    assert.equal((webhook.deployment as unknown as { spec: { replicas: number } }).spec.replicas, 3);
    type Entry = { timeoutSeconds: number; namespaceSelector: { matchExpressions: { key: string; values?: string[] }[] } };
    for (const entry of (find(objects, 'MutatingWebhookConfiguration', 'lxcfs-ts') as unknown as { webhooks: Entry[] }).webhooks) {
      assert.equal(entry.timeoutSeconds, 8);
      const names = entry.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
      assert.deepEqual(names?.values, ['kube-system', 'lxcfs-ts', 'batch', 'ci']);
    }
    const paths = injectedPod(webhook).spec.volumes.flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));
    assert.ok(paths.includes('/var/lib/lxcfs-ts/lxcfs/proc/pressure/cpu'), 'the pressure files are mounted');
  });

  test('image, pull secrets, scheduling, labels and annotations reach every object and pod; selectors stay put', () => {
    const objects = template({
      image: { repository: 'registry.example/lxcfs-ts', tag: '0.1.0-rc1', pullPolicy: 'Always', pullSecrets: ['registry'] },
      commonLabels: { team: 'platform' },
      commonAnnotations: { owner: 'platform@example' },
      agent: { podLabels: { tier: 'node' }, tolerations: [{ key: 'dedicated', operator: 'Exists' }], priorityClassName: 'system-cluster-critical' },
      webhook: { podAnnotations: { 'prometheus.io/scrape': 'true' }, priorityClassName: 'system-cluster-critical', nodeSelector: { pool: 'system' } },
    });
    const base = template();
    for (const o of objects) {
      assert.equal(o.metadata.labels?.team, 'platform', `${o.kind}/${o.metadata.name}`);
      assert.equal(o.metadata.annotations?.owner, 'platform@example', `${o.kind}/${o.metadata.name}`);
    }
    for (const kind of ['DaemonSet', 'Deployment']) {
      const workload = ofKind(objects, kind)[0]!;
      const spec = podSpecOf(workload) as ReturnType<typeof podSpecOf> & { imagePullSecrets?: unknown };
      assert.deepEqual(spec.imagePullSecrets, [{ name: 'registry' }]);
      for (const c of allContainers(spec)) {
        assert.equal(c.image, 'registry.example/lxcfs-ts:0.1.0-rc1');
        assert.equal(c.imagePullPolicy, 'Always');
      }
      assert.equal(podLabelsOf(workload).team, 'platform');
      const selector = (o: KubeObject) => (o as unknown as { spec: { selector: unknown } }).spec.selector;
      assert.deepEqual(selector(workload), selector(ofKind(base, kind)[0]!), 'selectors are immutable: values never change them');
    }
    const agent = agentOf(objects);
    assert.equal(podLabelsOf(agent.daemonSet).tier, 'node');
    assert.equal(agent.spec.priorityClassName, 'system-cluster-critical');
    assert.deepEqual(agent.spec.tolerations, [{ key: 'dedicated', operator: 'Exists' }]);
    const webhook = webhookOf(objects);
    type Template = { spec: { template: { metadata: { annotations: Record<string, string> } } } };
    const annotations = (webhook.deployment as unknown as Template).spec.template.metadata.annotations;
    assert.equal(annotations['prometheus.io/scrape'], 'true');
    assert.equal(annotations['lxcfs-ts.io/inject'], 'false', 'the webhook\'s own pods are never injected');
    assert.equal(webhook.spec.priorityClassName, 'system-cluster-critical');
    assert.deepEqual((webhook.spec as { nodeSelector?: unknown }).nodeSelector, { 'kubernetes.io/os': 'linux', pool: 'system' });
  });

  test('one webhook replica gets no PodDisruptionBudget (it would block every drain)', () => {
    const objects = template({ webhook: { replicas: 1 } });
    assert.deepEqual(ofKind(objects, 'PodDisruptionBudget'), []);
    assert.equal(ofKind(template(), 'PodDisruptionBudget').length, 1);
  });
});

describe('values the chart refuses, with a message naming them', () => {
  const refused: { values: object; message: RegExp }[] = [
    { values: { agent: { loadAvg: true } }, message: /agent: Additional property loadAvg is not allowed/ },
    { values: { webhok: { replicas: 3 } }, message: /Additional property webhok is not allowed/ },
    { values: { webhook: { tls: { mode: 'certmanager' } } }, message: /webhook\.tls\.mode must be one of the following: "self", "cert-manager"/ },
    { values: { webhook: { timeoutSeconds: 30 } }, message: /webhook\.timeoutSeconds: Must be less than or equal to 10/ },
    { values: { agent: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2 } } } }, message: /maxSurge must be one of the following: 0, 1/ },
    { values: { agent: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxPods: 1 } } } }, message: /Additional property maxPods is not allowed/ },
    { values: { agent: { viewDir: 'lxcfs' } }, message: /agent\.viewDir: Does not match pattern/ },
    { values: { image: { pullPolicy: 'always' } }, message: /image\.pullPolicy must be one of the following/ },
    { values: { agent: { extraArgs: ['threads=4'] } }, message: /agent\.extraArgs\.0: Does not match pattern/ },
    {
      values: { webhook: { replicas: 3, podDisruptionBudget: { minAvailable: 3 } } },
      message: /minAvailable \(3\) must be below webhook\.replicas \(3\)/,
    },
    { values: { agent: { viewDir: '/var/lib/lxcfs' } }, message: /its parent \/var\/lib would be shared with the host and mounted into every pod/ },
    { values: { agent: { legacyLxcfsLayout: true, viewDir: '/srv/lxcfs-ts/view' } }, message: /legacyLxcfsLayout puts the view at \/var\/lib\/lxcfs; leave agent\.viewDir unset/ },
  ];
  for (const { values, message } of refused) {
    test(JSON.stringify(values), () => {
      const r = templateResult(values);
      assert.notEqual(r.status, 0, 'helm template fails');
      assert.match(r.stderr, message);
    });
  }
});
