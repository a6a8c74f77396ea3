/**
 * The webhook against a real kube-apiserver (scripts/kube-env): the API server calls it over TLS
 * with the caBundle the webhook wrote itself, selects namespaces by label, and stores what the
 * patch says. Pods stay Pending (there is no node); what is checked is the stored object.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { acquireKubeEnv, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import { repoRoot } from '../../helpers/paths.js';
import {
  eventually,
  freePort,
  probe,
  startWebhook,
  type WebhookProcess,
  waitReady,
} from '../../helpers/webhook-process.js';

const run = randomBytes(3).toString('hex');
const ns = {
  webhook: `lxcfs-ts-e2e-${run}`,
  enabled: `e2e-enabled-${run}`,
  optin: `e2e-optin-${run}`,
  legacyAliyun: `e2e-legacy-a-${run}`,
  legacyMount: `e2e-legacy-m-${run}`,
  plain: `e2e-plain-${run}`,
  disabled: `e2e-disabled-${run}`,
};

const viewFiles = [
  'proc/cpuinfo',
  'proc/meminfo',
  'proc/stat',
  'proc/uptime',
  'proc/diskstats',
  'proc/swaps',
  'proc/loadavg',
  'proc/slabinfo',
  'sys/devices/system/cpu/online',
];
const expectedMounts = [
  ...viewFiles.map((f) => ({
    name: `lxcfs-ts-${f.replace(/\//g, '-')}`,
    mountPath: `/${f}`,
    readOnly: true,
  })),
  {
    name: 'lxcfs-ts-view-parent',
    mountPath: '/var/lib/lxcfs-ts',
    readOnly: true,
    mountPropagation: 'HostToContainer',
  },
];
const expectedVolumes = [
  ...viewFiles.map((f) => ({
    name: `lxcfs-ts-${f.replace(/\//g, '-')}`,
    hostPath: { path: `/var/lib/lxcfs-ts/lxcfs/${f}`, type: 'File' },
  })),
  { name: 'lxcfs-ts-view-parent', hostPath: { path: '/var/lib/lxcfs-ts', type: 'Directory' } },
];

interface Pod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    volumes?: { name: string; hostPath?: unknown }[];
    containers: { name: string; volumeMounts?: Record<string, unknown>[] }[];
  };
}

function podManifest(
  name: string,
  annotations: Record<string, string> = {},
  extra: Record<string, unknown> = {},
) {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations },
    spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }], ...extra },
  });
}

/** Our mounts and volumes as stored, without the service account token the API server adds. */
function injected(pod: Pod) {
  return {
    volumes: (pod.spec.volumes ?? []).filter((v) => v.name.startsWith('lxcfs-ts-')),
    mounts: pod.spec.containers.map((c) =>
      (c.volumeMounts ?? []).filter((m) => String(m.name).startsWith('lxcfs-ts-')),
    ),
    status: pod.metadata.annotations?.['lxcfs-ts.io/status'],
  };
}

describe('admission webhook against a real kube-apiserver', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  let webhook: WebhookProcess;

  const create = (namespace: string, manifest: string): Pod =>
    kubectl.json<Pod>(['-n', namespace, 'create', '-f', '-'], manifest);

  before(async () => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    for (const name of Object.values(ns)) kubectl(['create', 'namespace', name]);
    kubectl(['label', 'namespace', ns.enabled, 'lxcfs-ts.io/inject=enabled']);
    kubectl(['label', 'namespace', ns.optin, 'lxcfs-ts.io/inject=optin']);
    kubectl(['label', 'namespace', ns.legacyAliyun, 'lxcfs-admission-webhook=enabled']);
    kubectl(['label', 'namespace', ns.legacyMount, 'mount-lxcfs=enabled']);
    kubectl(['label', 'namespace', ns.disabled, 'lxcfs-ts.io/inject=disabled', 'mount-lxcfs=enabled']);
    // No controller-manager here: create the service accounts the ServiceAccount admission plugin wants.
    for (const name of Object.values(ns)) kubectl(['-n', name, 'create', 'serviceaccount', 'default']);

    const port = await freePort();
    webhook = await startWebhook(
      [
        '--kubeconfig',
        env.kubeconfig,
        '--namespace',
        ns.webhook,
        '--external-url',
        `https://127.0.0.1:${port}`,
        '--log-level',
        'debug',
      ],
      port,
    );
    await waitReady(webhook);
    // The API server picks configuration changes up through an informer: wait until a dry run is mutated.
    await eventually('the configuration to take effect', () => {
      const pod = kubectl.json<Pod>(
        ['-n', ns.enabled, 'create', '--dry-run=server', '-f', '-'],
        podManifest('probe'),
      );
      return injected(pod).status === 'mutated' ? true : undefined;
    });
  });

  after(async () => {
    await webhook?.stop();
    kubectl?.try(['delete', 'mutatingwebhookconfiguration', 'lxcfs-ts']);
    for (const name of Object.values(ns)) kubectl?.try(['delete', 'namespace', name, '--wait=false']);
    env?.release();
  });

  it('writes the caBundle itself, and the certificate it serves chains to it', async () => {
    const mwc = kubectl.json<{ webhooks: { clientConfig: { caBundle: string; url: string } }[] }>([
      'get',
      'mutatingwebhookconfiguration',
      'lxcfs-ts',
    ]);
    const secret = kubectl.json<{ data: Record<string, string> }>([
      '-n',
      ns.webhook,
      'get',
      'secret',
      'lxcfs-ts-webhook-tls',
    ]);
    assert.equal(mwc.webhooks.length, 4);
    for (const w of mwc.webhooks) {
      assert.equal(w.clientConfig.caBundle, secret.data['ca-bundle.crt']);
      assert.ok(w.clientConfig.url.startsWith(webhook.url));
    }
    const ca = Buffer.from(mwc.webhooks[0]!.clientConfig.caBundle, 'base64').toString();
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: webhook.port, ca, servername: undefined }, () => {
        resolve(socket.authorized);
        socket.end();
      });
      socket.on('error', reject);
    });
    assert.equal(authorized, true);
  });

  it('injects every pod of a namespace labelled lxcfs-ts.io/inject=enabled, with exactly the expected mounts', () => {
    const pod = create(
      ns.enabled,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'two-containers' },
        spec: {
          containers: [
            { name: 'app', image: 'busybox' },
            { name: 'side', image: 'busybox' },
          ],
        },
      }),
    );
    const stored = kubectl.json<Pod>(['-n', ns.enabled, 'get', 'pod', pod.metadata.name]);
    const got = injected(stored);
    assert.equal(got.status, 'mutated');
    assert.deepEqual(got.volumes, expectedVolumes);
    assert.deepEqual(got.mounts, [expectedMounts, expectedMounts]);
    // The service account volume the API server added first is still first: our entries were appended.
    assert.match(stored.spec.volumes![0]!.name, /^kube-api-access-/);
  });

  it('in an opt-in namespace injects only pods annotated lxcfs-ts.io/inject: "true"', () => {
    const plain = injected(create(ns.optin, podManifest('not-asked')));
    assert.deepEqual(plain.volumes, []);
    assert.match(plain.status ?? '', /^skipped: namespace is opt-in/);
    const asked = injected(create(ns.optin, podManifest('asked', { 'lxcfs-ts.io/inject': 'true' })));
    assert.equal(asked.status, 'mutated');
    assert.deepEqual(asked.volumes, expectedVolumes);
  });

  it('honours the legacy namespace labels of earlier LXCFS webhooks', () => {
    for (const namespace of [ns.legacyAliyun, ns.legacyMount]) {
      const got = injected(create(namespace, podManifest('legacy')));
      assert.equal(got.status, 'mutated', namespace);
      assert.deepEqual(got.mounts, [expectedMounts]);
    }
  });

  it('leaves unlabelled namespaces alone, and lxcfs-ts.io/inject=disabled wins over a legacy label', () => {
    for (const namespace of [ns.plain, ns.disabled]) {
      const got = injected(create(namespace, podManifest('untouched')));
      assert.deepEqual(got, { volumes: [], mounts: [[]], status: undefined }, namespace);
    }
  });

  it('never injects the webhook\'s own namespace', () => {
    kubectl(['label', 'namespace', ns.webhook, 'lxcfs-ts.io/inject=enabled']);
    // kube-apiserver 1.20 does not label namespaces with their name yet, so the handler's own rule decides.
    const got = injected(create(ns.webhook, podManifest('own')));
    assert.deepEqual(got.volumes, []);
    assert.equal(got.status, `skipped: namespace ${ns.webhook} is never injected`);
  });

  it('respects the opt-out annotation', () => {
    const got = injected(create(ns.enabled, podManifest('opted-out', { 'lxcfs-ts.io/inject': 'false' })));
    assert.deepEqual(got.volumes, []);
    assert.equal(got.status, 'skipped: opted out by annotation lxcfs-ts.io/inject');
  });

  it('keeps a container\'s own mount at one of our paths and adds the rest (the pod is admitted)', () => {
    const pod = create(
      ns.enabled,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'own-meminfo' },
        spec: {
          volumes: [{ name: 'mine', emptyDir: {} }],
          containers: [
            { name: 'app', image: 'busybox', volumeMounts: [{ name: 'mine', mountPath: '/proc/meminfo' }] },
            { name: 'side', image: 'busybox' },
          ],
        },
      }),
    );
    const got = injected(pod);
    assert.equal(got.status, 'conflict: /proc/meminfo');
    assert.deepEqual(
      got.mounts[0],
      expectedMounts.filter((m) => m.mountPath !== '/proc/meminfo'),
    );
    assert.deepEqual(got.mounts[1], expectedMounts);
    const appMounts = pod.spec.containers[0]!.volumeMounts!;
    assert.deepEqual(appMounts[0], { name: 'mine', mountPath: '/proc/meminfo' });
  });

  it('answers --dry-run=server with the mutated pod and stores nothing', () => {
    const pod = kubectl.json<Pod>(
      ['-n', ns.enabled, 'create', '--dry-run=server', '-f', '-'],
      podManifest('dry'),
    );
    assert.equal(injected(pod).status, 'mutated');
    assert.deepEqual(injected(pod).volumes, expectedVolumes);
    assert.notEqual(kubectl.try(['-n', ns.enabled, 'get', 'pod', 'dry']).status, 0);
  });

  it('lxcfs-ts inject output is accepted by the API server and passes the webhook unchanged', async () => {
    const deployment = [
      '# a comment that must survive',
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: web',
      'spec:',
      '  selector: {matchLabels: {app: web}}',
      '  template:',
      '    metadata: {labels: {app: web}}',
      '    spec:',
      '      containers:',
      '      - name: web',
      '        image: nginx',
      '---',
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: from-inject',
      'spec:',
      '  containers:',
      '  - name: app',
      '    image: busybox',
      '',
    ].join('\n');
    const r = spawnSync(process.execPath, [`${repoRoot}dist/src/cli.js`, 'inject'], {
      input: deployment,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^# a comment that must survive/);
    const applied = kubectl(['-n', ns.plain, 'apply', '--dry-run=server', '-f', '-'], r.stdout);
    assert.match(applied, /deployment.apps\/web created \(server dry run\)/);
    // Created in an injecting namespace: the webhook finds everything in place and adds nothing.
    const created = kubectl(['-n', ns.enabled, 'create', '-f', '-'], r.stdout);
    assert.match(created, /pod\/from-inject created/);
    const pod = kubectl.json<Pod>(['-n', ns.enabled, 'get', 'pod', 'from-inject']);
    const got = injected(pod);
    assert.equal(got.status, 'mutated');
    assert.deepEqual(got.volumes, expectedVolumes);
    assert.deepEqual(got.mounts, [expectedMounts]);
    // The test process was blocked in kubectl; give the webhook's log pipe a moment to be read.
    await eventually('the admission log line', () =>
      /"patchOperations":0,"namespace":"[^"]+","name":"from-inject"/.test(webhook.output())
        ? true
        : undefined,
    );
  });

  it('counts outcomes in /metrics', async () => {
    const metrics = await probe(webhook.port, '/metrics');
    assert.equal(metrics.status, 200);
    // two-containers, asked, two legacy namespaces, from-inject (dry runs are counted apart)
    assert.match(
      metrics.body,
      /lxcfs_ts_webhook_admissions_total\{outcome="mutated",reason="",dry_run="false"\} 5/,
    );
    assert.match(
      metrics.body,
      /lxcfs_ts_webhook_admissions_total\{outcome="conflict",reason="",dry_run="false"\} 1/,
    );
    assert.match(
      metrics.body,
      /lxcfs_ts_webhook_admissions_total\{outcome="skipped",reason="opted-out",dry_run="false"\} 1/,
    );
    assert.match(metrics.body, /lxcfs_ts_webhook_leader 1/);
  });

  it('with the webhook stopped, pods are still admitted (failurePolicy Ignore)', async () => {
    await webhook.stop();
    const got = injected(create(ns.enabled, podManifest('webhook-down')));
    assert.deepEqual(got, { volumes: [], mounts: [[]], status: undefined });
  });
});
