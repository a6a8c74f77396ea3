/**
 * `kubectl debug` against a real kube-apiserver (1.20, EphemeralContainers feature gate on): the
 * API server sends the pods/ephemeralcontainers update in its EphemeralContainers shape (no pod in
 * it), the webhook reads the pod and mounts the pod's view volumes into the new container. A pod
 * without the view volumes gets its debug container unchanged, never a refused update.
 *
 * The containers are added the way `kubectl debug` does on these API servers: a PUT of the
 * EphemeralContainers object (kubectl 1.32 no longer speaks that shape itself).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireKubeEnv, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import { fixturePath, repoRoot } from '../../helpers/paths.js';
import { eventually, freePort, startWebhook, type WebhookProcess, waitReady } from '../../helpers/webhook-process.js';

const run = randomBytes(3).toString('hex');
const ns = {
  webhook: `lxcfs-ts-e2e-eph-${run}`,
  enabled: `e2e-eph-enabled-${run}`,
  plain: `e2e-eph-plain-${run}`,
  /** A second webhook, with the least-privilege RBAC of the install (no pods). */
  rbac: `lxcfs-ts-e2e-eph-rbac-${run}`,
};
const saKubeconfig = join(tmpdir(), `lxcfs-ts-e2e-eph-${run}.kubeconfig`);
const readPodsRole = `lxcfs-ts-webhook-read-pods-${run}`;

interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: string;
}
interface Container {
  name: string;
  volumeMounts?: Mount[];
}
interface Pod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    volumes?: { name: string; hostPath?: { path: string } }[];
    containers: Container[];
    ephemeralContainers?: Container[];
  };
}

const viewMounts = (c: Container | undefined): Mount[] =>
  (c?.volumeMounts ?? []).filter((m) => m.name.startsWith('lxcfs-ts-'));

describe('ephemeral containers (kubectl debug) against a real kube-apiserver', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  let webhook: WebhookProcess;
  let restricted: WebhookProcess | undefined;

  const getPod = (namespace: string, name: string): Pod => kubectl.json<Pod>(['-n', namespace, 'get', 'pod', name]);

  /** Adds a debug container to the pod's list, as `kubectl debug` does; returns the stored pod. */
  const debug = (namespace: string, pod: string, container: string): Pod => {
    const current = getPod(namespace, pod).spec.ephemeralContainers ?? [];
    const body = {
      apiVersion: 'v1',
      kind: 'EphemeralContainers',
      metadata: { name: pod, namespace },
      ephemeralContainers: [
        ...current,
        { name: container, image: 'busybox', stdin: true, tty: true, terminationMessagePolicy: 'File' },
      ],
    };
    kubectl(
      ['replace', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}/ephemeralcontainers`, '-f', '-'],
      JSON.stringify(body),
    );
    return getPod(namespace, pod);
  };

  const createPod = (namespace: string, name: string, annotations: Record<string, string> = {}): Pod =>
    kubectl.json<Pod>(
      ['-n', namespace, 'create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, annotations },
        spec: { containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }] },
      }),
    );

  /** The API server picks configuration changes up through an informer: wait until a dry run is mutated. */
  const configurationInEffect = () =>
    eventually('the configuration to take effect', () => {
      const r = kubectl.try(['-n', ns.enabled, 'run', 'probe', '--image=busybox', '--dry-run=server', '-o', 'json']);
      return r.status === 0 && JSON.parse(r.stdout).metadata.annotations?.['lxcfs-ts.io/status'] === 'mutated'
        ? true
        : undefined;
    });

  before(async () => {
    env = acquireKubeEnv({ featureGates: ['EphemeralContainers=true'] });
    kubectl = kubectlFor(env.kubeconfig);
    for (const name of Object.values(ns)) {
      kubectl(['create', 'namespace', name]);
      kubectl(['-n', name, 'create', 'serviceaccount', 'default']);
    }
    kubectl(['label', 'namespace', ns.enabled, 'lxcfs-ts.io/inject=enabled']);
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
        // Offers the syscall view (no agent needed to set the profile on pods that ask).
        '--sysinfo',
      ],
      port,
    );
    await waitReady(webhook);
    await configurationInEffect();
  });

  after(async () => {
    await webhook?.stop();
    await restricted?.stop();
    kubectl?.try(['delete', 'mutatingwebhookconfiguration', 'lxcfs-ts']);
    kubectl?.try(['delete', 'clusterrolebinding,clusterrole', `lxcfs-ts-webhook-${ns.rbac}`, readPodsRole]);
    rmSync(saKubeconfig, { force: true });
    for (const name of Object.values(ns)) kubectl?.try(['delete', 'namespace', name, '--wait=false']);
    env?.release();
  });

  it('a debug container of an injected pod mounts exactly the pod\'s view volumes, as the app does', () => {
    createPod(ns.enabled, 'injected');
    const pod = debug(ns.enabled, 'injected', 'debugger');
    assert.equal(pod.metadata.annotations?.['lxcfs-ts.io/status'], 'mutated');
    const app = viewMounts(pod.spec.containers[0]);
    assert.equal(app.length, 10);
    assert.deepEqual(viewMounts(pod.spec.ephemeralContainers?.[0]), app);
    // Every mount names a volume the pod has (a hostPath under the view's directory).
    const volumes = new Map((pod.spec.volumes ?? []).map((v) => [v.name, v.hostPath?.path]));
    for (const m of app) assert.match(volumes.get(m.name) ?? '', /^\/var\/lib\/lxcfs-ts/, m.name);
  });

  it('a second debug container gets them too, and the first one is left as it was', () => {
    const first = viewMounts(getPod(ns.enabled, 'injected').spec.ephemeralContainers?.[0]);
    const pod = debug(ns.enabled, 'injected', 'debugger-2');
    assert.deepEqual(
      pod.spec.ephemeralContainers?.map((c) => c.name),
      ['debugger', 'debugger-2'],
    );
    assert.deepEqual(viewMounts(pod.spec.ephemeralContainers?.[0]), first);
    assert.deepEqual(viewMounts(pod.spec.ephemeralContainers?.[1]), first);
  });

  it('a pod without the view volumes gets its debug container, without mounts', async () => {
    // Opted out at creation, then opted in: selected now, but it has no view volumes to mount.
    createPod(ns.enabled, 'no-volumes', { 'lxcfs-ts.io/inject': 'false' });
    const optedOut = debug(ns.enabled, 'no-volumes', 'debugger');
    assert.deepEqual(viewMounts(optedOut.spec.ephemeralContainers?.[0]), []);
    kubectl(['-n', ns.enabled, 'annotate', '--overwrite', 'pod', 'no-volumes', 'lxcfs-ts.io/inject=true']);
    const optedIn = debug(ns.enabled, 'no-volumes', 'debugger-2');
    assert.equal(optedIn.spec.ephemeralContainers?.length, 2);
    assert.deepEqual(viewMounts(optedIn.spec.ephemeralContainers?.[1]), []);
    assert.ok(!(optedIn.spec.volumes ?? []).some((v) => v.name.startsWith('lxcfs-ts-')));
    // The test process was blocked in kubectl; give the webhook's log pipe a moment to be read.
    await eventually('the admission log line', () =>
      /"name":"no-volumes".*"reason":"no-view-volumes"/.test(webhook.output()) ? true : undefined,
    );
  });

  it('a pod with the syscall view: the debug container gets the files, and no securityContext this API server would refuse', () => {
    const pod = createPod(ns.enabled, 'with-sysinfo', { 'lxcfs-ts.io/sysinfo': 'enabled' });
    const app = pod.spec.containers[0] as Container & { securityContext?: { seccompProfile?: unknown } };
    assert.deepEqual(app.securityContext?.seccompProfile, { type: 'Localhost', localhostProfile: 'lxcfs-ts/sysinfo.json' });
    const debugged = debug(ns.enabled, 'with-sysinfo', 'debugger');
    const container = debugged.spec.ephemeralContainers![0] as Container & { securityContext?: unknown };
    assert.deepEqual(viewMounts(container), viewMounts(app));
    assert.equal(container.securityContext, undefined);
  });

  it('a pod of a namespace without injection gets its debug container untouched', () => {
    createPod(ns.plain, 'plain');
    const pod = debug(ns.plain, 'plain', 'debugger');
    assert.equal(pod.spec.ephemeralContainers?.length, 1);
    assert.deepEqual(pod.spec.ephemeralContainers?.[0]?.volumeMounts ?? [], []);
  });

  it('with the install\'s RBAC (no pods) the debug container is admitted without the view and the webhook says which component to add; with it, the view is mounted', async () => {
    await webhook.stop();
    kubectl(['apply', '-f', '-'], readFileSync(fixturePath('webhook', 'rbac.yaml'), 'utf8').replaceAll('NAMESPACE', ns.rbac));
    const token = kubectl(['-n', ns.rbac, 'create', 'token', 'lxcfs-ts-webhook', '--duration=1h']).trim();
    writeFileSync(saKubeconfig, readFileSync(env.kubeconfig, 'utf8').replace(/token: .*/, `token: ${token}`));
    const port = await freePort();
    restricted = await startWebhook(
      ['--kubeconfig', saKubeconfig, '--namespace', ns.rbac, '--external-url', `https://127.0.0.1:${port}`],
      port,
    );
    await waitReady(restricted);
    await configurationInEffect();
    assert.equal(createPod(ns.enabled, 'restricted').metadata.annotations?.['lxcfs-ts.io/status'], 'mutated');
    const first = debug(ns.enabled, 'restricted', 'debugger');
    await eventually('the warning', () =>
      restricted!.output().includes('"reason":"pod-unreadable"') ? true : undefined,
    );
    assert.ok(first.spec.ephemeralContainers!.every((c) => viewMounts(c).length === 0));
    assert.match(restricted.output(), /"level":40.*grant it \(deploy\/components\/ephemeral-containers-before-1\.22\)/);

    // The component as shipped, bound to this test's service account.
    const component = readFileSync(`${repoRoot}deploy/components/ephemeral-containers-before-1.22/read-pods.yaml`, 'utf8')
      .replaceAll('lxcfs-ts-webhook-read-pods', readPodsRole)
      .replace('namespace: lxcfs-ts', `namespace: ${ns.rbac}`);
    kubectl(['apply', '-f', '-'], component);
    const mounted = await eventually('the view in a debug container', () => {
      const pod = debug(ns.enabled, 'restricted', `d${randomBytes(2).toString('hex')}`);
      const mounts = viewMounts(pod.spec.ephemeralContainers!.at(-1));
      return mounts.length > 0 ? mounts : undefined;
    });
    assert.deepEqual(mounted, viewMounts(getPod(ns.enabled, 'restricted').spec.containers[0]));
  });
});
