/**
 * Reviews of pods/ephemeralcontainers in both shapes: kind Pod (API servers 1.22+, which the 1.20
 * test API server cannot send: these are AdmissionReviews handed to the webhook directly) and kind
 * EphemeralContainers (before 1.22, where the pod is read from the API).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AdmissionSettings, PodReader } from '../../../src/webhook/admission.js';
import { reviewEphemeralContainers } from '../../../src/webhook/ephemeral-admission.js';
import { buildInjectionPlan, defaultInjectionOptions } from '../../../src/webhook/injection-plan.js';
import type { JsonObject } from '../../../src/webhook/json-patch.js';
import { mutatePod } from '../../../src/webhook/mutate.js';
import { applyPatch, type Operation } from '../../helpers/json-patch-apply.js';

const plan = buildInjectionPlan({ ...defaultInjectionOptions, files: ['proc/meminfo', 'proc/cpuinfo'] });
const excludedNamespaces = ['kube-system', 'lxcfs-ts'];
const ctx = { mode: 'enabled' as const, namespace: 'apps', excludedNamespaces };

/** A pod as stored after the webhook injected it at creation. */
function injectedPod(annotations: Record<string, string> = {}): JsonObject {
  const pod: JsonObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'apps', uid: 'pod-uid', annotations },
    spec: {
      volumes: [{ name: 'data', emptyDir: {} }],
      containers: [{ name: 'app', image: 'nginx', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
    },
  };
  return mutatePod(pod, plan, ctx).pod;
}

const debugContainer = (name: string, extra: JsonObject = {}): JsonObject => ({
  name,
  image: 'busybox',
  stdin: true,
  tty: true,
  ...extra,
});

function withEphemeral(pod: JsonObject, containers: JsonObject[]): JsonObject {
  return { ...pod, spec: { ...(pod.spec as JsonObject), ephemeralContainers: containers } };
}

function review(
  kind: 'Pod' | 'EphemeralContainers',
  object: JsonObject,
  oldObject: JsonObject,
  settings: Partial<AdmissionSettings> = {},
) {
  return reviewEphemeralContainers(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-1',
        kind: { group: '', version: 'v1', kind },
        resource: { group: '', version: 'v1', resource: 'pods' },
        subResource: 'ephemeralcontainers',
        operation: 'UPDATE',
        namespace: 'apps',
        name: 'web',
        object,
        oldObject,
      },
    },
    'enabled',
    { plan, excludedNamespaces, ...settings },
  );
}

async function patchOf(result: ReturnType<typeof review>) {
  const r = await result;
  assert.ok(r?.ok);
  const response = r.response.response as JsonObject;
  const patch = response.patch
    ? (JSON.parse(Buffer.from(String(response.patch), 'base64').toString()) as Operation[])
    : [];
  return { patch, summary: r.summary, audit: response.auditAnnotations as JsonObject | undefined };
}

const viewMounts = [
  { name: 'lxcfs-ts-proc-meminfo', mountPath: '/proc/meminfo', readOnly: true },
  { name: 'lxcfs-ts-proc-cpuinfo', mountPath: '/proc/cpuinfo', readOnly: true },
  {
    name: 'lxcfs-ts-view-parent',
    mountPath: '/var/lib/lxcfs-ts',
    readOnly: true,
    mountPropagation: 'HostToContainer',
  },
];

describe('ephemeral containers, Pod shape (API servers 1.22+)', () => {
  it('a new debug container of an injected pod gets the pod\'s view mounts, and nothing else changes', async () => {
    const pod = injectedPod();
    const object = withEphemeral(pod, [debugContainer('debugger')]);
    const { patch, summary, audit } = await patchOf(review('Pod', object, pod));
    assert.deepEqual(patch, [{ op: 'add', path: '/spec/ephemeralContainers/0/volumeMounts', value: viewMounts }]);
    assert.equal(summary.outcome, 'mutated');
    assert.equal(summary.subject, 'ephemeral-containers');
    assert.equal(audit?.status, 'mutated');
    // Applied, then reviewed again (reinvocation): nothing more to do.
    const mutated = applyPatch(object, patch) as JsonObject;
    assert.deepEqual((await patchOf(review('Pod', mutated, pod))).patch, []);
  });

  it('only the containers being added are touched; earlier ones stay as they are', async () => {
    const old = withEphemeral(injectedPod(), [debugContainer('first')]);
    const object = withEphemeral(injectedPod(), [debugContainer('first'), debugContainer('second')]);
    const { patch } = await patchOf(review('Pod', object, old));
    assert.deepEqual(patch, [{ op: 'add', path: '/spec/ephemeralContainers/1/volumeMounts', value: viewMounts }]);
  });

  it('uses the volume names the pod has (reused or suffixed volumes), found by node path', async () => {
    const pod = injectedPod();
    const spec = pod.spec as { volumes: JsonObject[] };
    spec.volumes = spec.volumes.map((v) =>
      v.name === 'lxcfs-ts-proc-meminfo' ? { ...v, name: 'lxcfs-proc-meminfo' } : v,
    );
    const { patch } = await patchOf(review('Pod', withEphemeral(pod, [debugContainer('d')]), pod));
    const mounts = (patch[0] as { value: JsonObject[] }).value;
    assert.deepEqual(
      mounts.map((m) => m.name),
      ['lxcfs-proc-meminfo', 'lxcfs-ts-proc-cpuinfo', 'lxcfs-ts-view-parent'],
    );
  });

  it('a pod without the view volumes is left alone (a mount would get the update refused)', async () => {
    const bare: JsonObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'apps' },
      spec: { containers: [{ name: 'app', image: 'nginx' }] },
    };
    const { patch, summary, audit } = await patchOf(review('Pod', withEphemeral(bare, [debugContainer('d')]), bare));
    assert.deepEqual(patch, []);
    assert.equal(summary.reason, 'no-view-volumes');
    assert.equal(audit?.status, 'skipped: the pod has no lxcfs-ts view volumes');
  });

  it('an opted-out pod is left alone even if it has such volumes', async () => {
    const pod = injectedPod();
    (pod.metadata as { annotations: JsonObject }).annotations['lxcfs-ts.io/inject'] = 'false';
    const { patch, summary } = await patchOf(review('Pod', withEphemeral(pod, [debugContainer('d')]), pod));
    assert.deepEqual(patch, []);
    assert.equal(summary.reason, 'opted-out');
  });

  it('a debug container with its own mount at a view path keeps it and gets the rest', async () => {
    const pod = injectedPod();
    const own = debugContainer('d', { volumeMounts: [{ name: 'data', mountPath: '/proc/meminfo' }] });
    const { patch, summary } = await patchOf(review('Pod', withEphemeral(pod, [own]), pod));
    assert.deepEqual(patch, [
      { op: 'add', path: '/spec/ephemeralContainers/0/volumeMounts/-', value: viewMounts[1] },
      { op: 'add', path: '/spec/ephemeralContainers/0/volumeMounts/-', value: viewMounts[2] },
    ]);
    assert.equal(summary.outcome, 'conflict');
    assert.equal(summary.status, 'conflict: /proc/meminfo');
  });

  it('is not the pod handler: a review of anything else is left to it', async () => {
    const r = await reviewEphemeralContainers(
      {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: 'u',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          operation: 'CREATE',
          object: injectedPod(),
        },
      },
      'enabled',
      { plan, excludedNamespaces },
    );
    assert.equal(r, null);
  });
});

describe('ephemeral containers, EphemeralContainers shape (API servers before 1.22)', () => {
  const shape = (containers: JsonObject[]): JsonObject => ({
    apiVersion: 'v1',
    kind: 'EphemeralContainers',
    metadata: { name: 'web', namespace: 'apps', uid: 'pod-uid' },
    ephemeralContainers: containers,
  });

  it('reads the pod and mounts its view volumes into the new container', async () => {
    const reads: string[] = [];
    const readPod: PodReader = async (namespace, name) => {
      reads.push(`${namespace}/${name}`);
      return injectedPod();
    };
    const { patch, summary } = await patchOf(
      review('EphemeralContainers', shape([debugContainer('d')]), shape([]), { readPod }),
    );
    assert.deepEqual(reads, ['apps/web']);
    assert.deepEqual(patch, [{ op: 'add', path: '/ephemeralContainers/0/volumeMounts', value: viewMounts }]);
    assert.equal(summary.outcome, 'mutated');
  });

  it('without a way to read the pod, or when reading fails, the container is admitted unchanged', async () => {
    const cases: [Partial<AdmissionSettings>, RegExp][] = [
      [{}, /does not carry the pod and the webhook has no API access/],
      [{ readPod: async () => null }, /the pod does not exist/],
      [{ readPod: () => Promise.reject(new Error('forbidden')) }, /cannot read the pod: forbidden/],
    ];
    for (const [settings, status] of cases) {
      const { patch, summary } = await patchOf(
        review('EphemeralContainers', shape([debugContainer('d')]), shape([]), settings),
      );
      assert.deepEqual(patch, []);
      assert.equal(summary.reason, 'pod-unreadable');
      assert.match(String(summary.status), status);
    }
  });
});

describe('ephemeral containers and the syscall view', () => {
  const profile = 'lxcfs-ts/sysinfo.json';
  const sysinfoPlan = buildInjectionPlan({ ...defaultInjectionOptions, sysinfoProfile: profile });
  const ours = { type: 'Localhost', localhostProfile: profile };
  const created = (annotations: Record<string, string>): JsonObject =>
    mutatePod(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web', namespace: 'apps', annotations },
        spec: { containers: [{ name: 'app', image: 'busybox' }] },
      },
      sysinfoPlan,
      ctx,
    ).pod;
  const reviewWith = (pod: JsonObject, debug: JsonObject) =>
    patchOf(review('Pod', withEphemeral(pod, [debug]), pod, { plan: sysinfoPlan }));
  const debugged = (pod: JsonObject, patch: Operation[]) =>
    (applyPatch(withEphemeral(pod, [debugContainer('d')]), patch) as { spec: { ephemeralContainers: JsonObject[] } })
      .spec.ephemeralContainers[0]!;

  it('a debug container of a pod that has the syscall view gets its profile too', async () => {
    const pod = created({ 'lxcfs-ts.io/sysinfo': 'enabled' });
    const { patch, audit } = await reviewWith(pod, debugContainer('d'));
    const debug = debugged(pod, patch);
    assert.deepEqual((debug.securityContext as JsonObject).seccompProfile, ours);
    assert.ok((debug.volumeMounts as JsonObject[]).length > 0, 'and the file view');
    assert.equal(audit?.status, 'mutated; sysinfo enabled: d');
  });

  it('one of a pod without it gets the files only; a privileged one is skipped, with the reason', async () => {
    const plain = created({});
    const { patch } = await reviewWith(plain, debugContainer('d'));
    assert.equal(debugged(plain, patch).securityContext, undefined);
    const withView = created({ 'lxcfs-ts.io/sysinfo': 'enabled' });
    const { audit } = await reviewWith(withView, debugContainer('d', { securityContext: { privileged: true } }));
    assert.equal(audit?.status, 'mutated; sysinfo skipped: d (privileged, so it runs without seccomp)');
  });

  it('from API servers before 1.22 (EphemeralContainers shape): the files only, never a securityContext', async () => {
    const pod = created({ 'lxcfs-ts.io/sysinfo': 'enabled' });
    const shape = (containers: JsonObject[]): JsonObject => ({
      apiVersion: 'v1',
      kind: 'EphemeralContainers',
      metadata: { name: 'web', namespace: 'apps' },
      ephemeralContainers: containers,
    });
    const { patch, audit } = await patchOf(
      review('EphemeralContainers', shape([debugContainer('d')]), shape([]), {
        plan: sysinfoPlan,
        readPod: async () => pod,
      }),
    );
    assert.deepEqual(patch.map((op) => op.path), ['/ephemeralContainers/0/volumeMounts']);
    assert.match(String(audit?.status), /^mutated; sysinfo skipped: d \(ephemeral containers take no securityContext/);
  });
});
