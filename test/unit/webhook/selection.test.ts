import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectPod } from '../../../src/webhook/selection.js';
import { buildWebhookConfiguration } from '../../../src/webhook/webhook-configuration.js';

const ctx = { namespace: 'apps', excludedNamespaces: ['kube-system', 'lxcfs-ts'] };

function pod(annotations?: Record<string, string>, spec: Record<string, unknown> = {}) {
  return {
    metadata: { name: 'p', ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: 'c' }], ...spec },
  };
}

describe('pod selection', () => {
  it('enabled namespaces inject every pod unless it opts out', () => {
    assert.deepEqual(selectPod(pod(), { ...ctx, mode: 'enabled' }), { inject: true });
    assert.deepEqual(selectPod(pod({ 'lxcfs-ts.io/inject': 'true' }), { ...ctx, mode: 'enabled' }), {
      inject: true,
    });
    for (const value of ['false', 'False', ' no ', 'off', 'disabled']) {
      const s = selectPod(pod({ 'lxcfs-ts.io/inject': value }), { ...ctx, mode: 'enabled' });
      assert.equal(s.inject, false, value);
      assert.equal(!s.inject && s.reason, 'opted-out');
    }
  });

  it('opt-in namespaces inject only pods annotated "true", and "false" still opts out', () => {
    const none = selectPod(pod(), { ...ctx, mode: 'optin' });
    assert.equal(!none.inject && none.reason, 'not-opted-in');
    const other = selectPod(pod({ 'other/annotation': 'true' }), { ...ctx, mode: 'optin' });
    assert.equal(!other.inject && other.reason, 'not-opted-in');
    for (const value of ['true', 'TRUE', 'yes', 'on', 'enabled']) {
      assert.deepEqual(
        selectPod(pod({ 'lxcfs-ts.io/inject': value }), { ...ctx, mode: 'optin' }),
        { inject: true },
        value,
      );
    }
    const out = selectPod(pod({ 'lxcfs-ts.io/inject': 'false' }), { ...ctx, mode: 'optin' });
    assert.equal(!out.inject && out.reason, 'opted-out');
  });

  it('an unrecognised annotation value injects nothing and says why', () => {
    for (const mode of ['enabled', 'optin'] as const) {
      const s = selectPod(pod({ 'lxcfs-ts.io/inject': 'ture' }), { ...ctx, mode });
      assert.equal(!s.inject && s.reason, 'invalid-annotation');
    }
  });

  it('never kube-system nor the webhook\'s own namespace, even when asked', () => {
    for (const namespace of ['kube-system', 'lxcfs-ts']) {
      const s = selectPod(pod({ 'lxcfs-ts.io/inject': 'true' }), { ...ctx, namespace, mode: 'enabled' });
      assert.equal(!s.inject && s.reason, 'excluded-namespace');
      assert.equal(!s.inject && s.message, `namespace ${namespace} is never injected`);
    }
  });

  it('skips mirror pods of static pods and Windows pods', () => {
    const mirror = selectPod(pod({ 'kubernetes.io/config.mirror': 'abc' }), { ...ctx, mode: 'enabled' });
    assert.equal(!mirror.inject && mirror.reason, 'mirror-pod');
    const windows = selectPod(pod(undefined, { os: { name: 'windows' } }), { ...ctx, mode: 'enabled' });
    assert.equal(!windows.inject && windows.reason, 'windows-pod');
    assert.deepEqual(selectPod(pod(undefined, { os: { name: 'linux' } }), { ...ctx, mode: 'enabled' }), {
      inject: true,
    });
  });
});

/** Label selector semantics of the API server (matchExpressions are ANDed). */
function matches(
  labels: Record<string, string>,
  expressions: { key: string; operator: string; values?: string[] }[],
) {
  return expressions.every((e) => {
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In':
        return has && e.values!.includes(labels[e.key]!);
      case 'NotIn':
        return !has || !e.values!.includes(labels[e.key]!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      default:
        throw new Error(e.operator);
    }
  });
}

describe('namespace selection in the MutatingWebhookConfiguration', () => {
  const config = buildWebhookConfiguration(
    {
      endpoint: { service: { namespace: 'lxcfs-ts', name: 'lxcfs-ts-webhook', port: 443 } },
      failurePolicy: 'Ignore',
      timeoutSeconds: 5,
      excludedNamespaces: ['kube-system', 'lxcfs-ts'],
    },
    'PEM',
  ) as {
    webhooks: {
      name: string;
      clientConfig: { service: { path: string } };
      namespaceSelector: { matchExpressions: never[] };
    }[];
  };

  /** The paths the API server would call for a namespace with these labels. */
  function calledPaths(labels: Record<string, string>): string[] {
    return config.webhooks
      .filter((w) => matches(labels, w.namespaceSelector.matchExpressions))
      .map((w) => w.clientConfig.service.path);
  }

  it('routes each way of asking to exactly one call with the right mode', () => {
    assert.deepEqual(calledPaths({ 'lxcfs-ts.io/inject': 'enabled' }), ['/mutate']);
    assert.deepEqual(calledPaths({ 'lxcfs-ts.io/inject': 'optin' }), ['/mutate/optin']);
    assert.deepEqual(calledPaths({ 'lxcfs-admission-webhook': 'enabled' }), ['/mutate']);
    assert.deepEqual(calledPaths({ 'mount-lxcfs': 'enabled' }), ['/mutate']);
    assert.deepEqual(calledPaths({ 'lxcfs-admission-webhook': 'enabled', 'mount-lxcfs': 'enabled' }), [
      '/mutate',
    ]);
  });

  it('the lxcfs-ts.io/inject label wins over legacy labels', () => {
    assert.deepEqual(calledPaths({ 'lxcfs-ts.io/inject': 'disabled', 'mount-lxcfs': 'enabled' }), []);
    assert.deepEqual(calledPaths({ 'lxcfs-ts.io/inject': 'optin', 'lxcfs-admission-webhook': 'enabled' }), [
      '/mutate/optin',
    ]);
  });

  it('unlabelled, system and hostPath-forbidding namespaces are never called', () => {
    assert.deepEqual(calledPaths({}), []);
    assert.deepEqual(
      calledPaths({ 'kubernetes.io/metadata.name': 'kube-system', 'lxcfs-ts.io/inject': 'enabled' }),
      [],
    );
    for (const level of ['baseline', 'restricted']) {
      assert.deepEqual(
        calledPaths({ 'lxcfs-ts.io/inject': 'enabled', 'pod-security.kubernetes.io/enforce': level }),
        [],
      );
    }
    assert.deepEqual(
      calledPaths({ 'lxcfs-ts.io/inject': 'enabled', 'pod-security.kubernetes.io/enforce': 'privileged' }),
      ['/mutate'],
    );
  });

  it('every entry is CREATE-only, v1-only, side-effect free, reinvoked when needed', () => {
    for (const w of config.webhooks as unknown as Record<string, unknown>[]) {
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.equal(w.sideEffects, 'None');
      assert.equal(w.failurePolicy, 'Ignore');
      assert.equal(w.reinvocationPolicy, 'IfNeeded');
      assert.deepEqual((w.rules as { operations: string[] }[])[0]!.operations, ['CREATE']);
      assert.equal((w.clientConfig as { caBundle: string }).caBundle, Buffer.from('PEM').toString('base64'));
    }
  });
});
