import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import {
  buildWebhookConfiguration,
  type ConfigurationOptions,
  ConfigurationReconciler,
  containsSubset,
} from '../../../src/webhook/webhook-configuration.js';
import { FakeKube } from '../../helpers/fake-kube.js';

const path = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/lxcfs-ts';
const options: ConfigurationOptions = {
  endpoint: { url: 'https://127.0.0.1:8443/' },
  failurePolicy: 'Ignore',
  timeoutSeconds: 5,
  excludedNamespaces: ['kube-system', 'lxcfs-ts'],
};
type Mwc = {
  webhooks: {
    name: string;
    clientConfig: { caBundle?: string; url?: string };
    extra?: string;
    failurePolicy?: string;
  }[];
};

describe('MutatingWebhookConfiguration reconciler', () => {
  it('full mode: creates it, leaves it alone when current, repairs drift and a new CA', async () => {
    const api = new FakeKube();
    const r = new ConfigurationReconciler(api, 'full', options, silentLogger, new WebhookMetrics());
    assert.equal(await r.reconcile('CA1'), 'created');
    const stored = await api.get<Mwc>(path);
    assert.equal(stored.webhooks[0]!.clientConfig.url, 'https://127.0.0.1:8443/mutate');
    assert.equal(stored.webhooks[1]!.clientConfig.url, 'https://127.0.0.1:8443/mutate/optin');
    assert.equal(await r.reconcile('CA1'), 'unchanged');
    // Defaults the API server adds do not count as drift.
    for (const w of stored.webhooks) Object.assign(w, { objectSelector: {} });
    await api.replace(path, stored);
    assert.equal(await r.reconcile('CA1'), 'unchanged');
    const drifted = await api.get<Mwc & Record<string, unknown>>(path);
    (drifted.webhooks[0] as Record<string, unknown>).failurePolicy = 'Fail';
    await api.replace(path, drifted);
    assert.equal(await r.reconcile('CA1'), 'updated');
    assert.equal(await r.reconcile('CA2'), 'updated');
    const after = await api.get<Mwc>(path);
    assert.ok(after.webhooks.every((w) => w.clientConfig.caBundle === Buffer.from('CA2').toString('base64')));
  });

  it('ca-bundle mode: only writes caBundle into the installed configuration, keeping everything else', async () => {
    const api = new FakeKube();
    const r = new ConfigurationReconciler(api, 'ca-bundle', options, silentLogger, new WebhookMetrics());
    assert.equal(await r.reconcile('CA1'), 'missing');
    const installed = buildWebhookConfiguration({ ...options, failurePolicy: 'Fail' }, '') as unknown as Mwc;
    installed.webhooks[0]!.extra = 'kept';
    await api.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', installed);
    assert.equal(await r.reconcile('CA1'), 'updated');
    assert.equal(await r.reconcile('CA1'), 'unchanged');
    const stored = await api.get<Mwc>(path);
    assert.equal(stored.webhooks[0]!.extra, 'kept');
    assert.ok(stored.webhooks.every((w) => w.failurePolicy === 'Fail'));
    assert.ok(
      stored.webhooks.every((w) => w.clientConfig.caBundle === Buffer.from('CA1').toString('base64')),
    );
  });

  it('compares subsets: extra fields on the server are fine, missing or different ones are not', () => {
    assert.ok(containsSubset({ a: 1, b: { c: [1, { d: 2, e: 3 }] } }, { b: { c: [1, { d: 2 }] } }));
    assert.ok(!containsSubset({ a: 1 }, { a: 2 }));
    assert.ok(!containsSubset({ a: [1, 2] }, { a: [1] }));
    assert.ok(!containsSubset({}, { a: 0 }));
  });
});
