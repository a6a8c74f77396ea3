import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildInjectionPlan, defaultInjectionOptions, InjectionConfigError } from '../../../src/webhook/injection-plan.js';
import type { JsonObject } from '../../../src/webhook/json-patch.js';
import { mutatePod } from '../../../src/webhook/mutate.js';
import { buildWebhookConfiguration } from '../../../src/webhook/webhook-configuration.js';

const profile = 'lxcfs-ts/sysinfo.json';
const plan = buildInjectionPlan({ ...defaultInjectionOptions, sysinfoProfile: profile });
const ctx = { mode: 'enabled' as const, namespace: 'apps', excludedNamespaces: ['kube-system'] };
const ours = { type: 'Localhost', localhostProfile: profile };

function pod(containers: JsonObject[], annotations: JsonObject = {}, podContext?: JsonObject): JsonObject {
  return {
    metadata: { name: 'p', annotations },
    spec: { containers, ...(podContext && { securityContext: podContext }) },
  };
}

function profiles(result: ReturnType<typeof mutatePod>): unknown[] {
  const spec = result.pod.spec as { containers: { securityContext?: { seccompProfile?: unknown } }[] };
  return spec.containers.map((c) => c.securityContext?.seccompProfile);
}

function sysinfoStatus(result: ReturnType<typeof mutatePod>): unknown {
  return (result.pod.metadata as { annotations: JsonObject }).annotations['lxcfs-ts.io/sysinfo-status'];
}

describe('the syscall view in the webhook (opt-in)', () => {
  it('sets the Localhost profile on containers without one or with RuntimeDefault, when the pod asks', () => {
    const result = mutatePod(pod([
      { name: 'app' },
      { name: 'side', securityContext: { runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } } },
    ], { 'lxcfs-ts.io/sysinfo': 'enabled' }), plan, ctx);
    assert.deepEqual(profiles(result), [ours, ours]);
    const side = (result.pod.spec as { containers: { securityContext: JsonObject }[] }).containers[1]!;
    assert.equal(side.securityContext.runAsUser, 1000, 'the rest of the securityContext is kept');
    assert.equal(sysinfoStatus(result), 'enabled: app, side');
    assert.equal(result.outcome, 'mutated');
  });

  it('follows the namespace label, and a pod\'s "disabled" wins over it', () => {
    const labelled = { ...ctx, namespaceSysinfo: true };
    assert.deepEqual(profiles(mutatePod(pod([{ name: 'app' }]), plan, labelled)), [ours]);
    const refused = mutatePod(pod([{ name: 'app' }], { 'lxcfs-ts.io/sysinfo': 'disabled' }), plan, labelled);
    assert.deepEqual(profiles(refused), [undefined]);
    assert.equal(sysinfoStatus(refused), undefined);
  });

  it('leaves pods alone when not asked, when the webhook does not offer it, or when the pod is not injected', () => {
    assert.deepEqual(profiles(mutatePod(pod([{ name: 'app' }]), plan, ctx)), [undefined]);
    const off = buildInjectionPlan(defaultInjectionOptions);
    const asked = pod([{ name: 'app' }], { 'lxcfs-ts.io/sysinfo': 'enabled' });
    assert.deepEqual(profiles(mutatePod(asked, off, ctx)), [undefined]);
    const optedOut = pod([{ name: 'app' }], { 'lxcfs-ts.io/sysinfo': 'enabled', 'lxcfs-ts.io/inject': 'false' });
    assert.deepEqual(profiles(mutatePod(optedOut, plan, ctx)), [undefined]);
  });

  it('never replaces Unconfined, another Localhost profile or an annotation\'s, and says why per container', () => {
    const result = mutatePod(pod([
      { name: 'loose', securityContext: { seccompProfile: { type: 'Unconfined' } } },
      { name: 'own', securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'mine.json' } } },
      { name: 'legacy' },
      { name: 'priv', securityContext: { privileged: true } },
      { name: 'admin', securityContext: { capabilities: { add: ['NET_ADMIN', 'SYS_ADMIN'] } } },
      { name: 'plain', securityContext: { capabilities: { add: ['NET_ADMIN'] } } },
    ], {
      'lxcfs-ts.io/sysinfo': 'enabled',
      'container.seccomp.security.alpha.kubernetes.io/legacy': 'runtime/default',
    }), plan, ctx);
    assert.deepEqual(profiles(result), [
      { type: 'Unconfined' }, { type: 'Localhost', localhostProfile: 'mine.json' }, undefined, undefined, undefined, ours,
    ]);
    assert.equal(sysinfoStatus(result),
      'enabled: plain; skipped: loose (has its own seccomp profile Unconfined), ' +
      'own (has its own seccomp profile Localhost mine.json), ' +
      'legacy (has a seccomp profile set by annotation (RuntimeDefault)), ' +
      'priv (privileged, so it runs without seccomp), ' +
      'admin (adds SYS_ADMIN, for which RuntimeDefault allows more system calls)');
  });

  it('follows a pod-level profile: Unconfined blocks it, RuntimeDefault does not', () => {
    const asked = { 'lxcfs-ts.io/sysinfo': 'enabled' };
    const unconfined = mutatePod(pod([{ name: 'app' }], asked, { seccompProfile: { type: 'Unconfined' } }), plan, ctx);
    assert.deepEqual(profiles(unconfined), [undefined]);
    assert.match(String(sysinfoStatus(unconfined)), /app \(runs with the pod's seccomp profile Unconfined\)/);
    const legacyPod = mutatePod(pod([{ name: 'app' }], { ...asked, 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' }), plan, ctx);
    assert.deepEqual(profiles(legacyPod), [undefined]);
    const runtimeDefault = mutatePod(pod([{ name: 'app' }], asked, { seccompProfile: { type: 'RuntimeDefault' } }), plan, ctx);
    assert.deepEqual(profiles(runtimeDefault), [ours]);
  });

  it('skips a container whose view mounts conflict (sysinfo and /proc/meminfo must agree)', () => {
    const result = mutatePod(pod([
      { name: 'app', volumeMounts: [{ name: 'own', mountPath: '/proc/meminfo' }] },
      { name: 'ok' },
    ], { 'lxcfs-ts.io/sysinfo': 'enabled' }), plan, ctx);
    assert.equal(result.outcome, 'conflict');
    assert.deepEqual(profiles(result), [undefined, ours]);
    assert.match(String(sysinfoStatus(result)), /^enabled: ok; skipped: app \(its view mounts conflict/);
  });

  it('is idempotent, and an unknown annotation value is reported, not guessed', () => {
    const first = mutatePod(pod([{ name: 'app' }], { 'lxcfs-ts.io/sysinfo': 'enabled' }), plan, ctx);
    const again = mutatePod(first.pod, plan, ctx);
    assert.deepEqual(again.pod, first.pod);
    const odd = mutatePod(pod([{ name: 'app' }], { 'lxcfs-ts.io/sysinfo': 'maybe' }), plan, ctx);
    assert.deepEqual(profiles(odd), [undefined]);
    assert.equal(sysinfoStatus(odd), 'skipped: annotation lxcfs-ts.io/sysinfo must be "enabled" or "disabled"');
  });

  it('refuses a configuration without the files sysinfo(2) is read with, or an absolute profile path', () => {
    assert.throws(() => buildInjectionPlan({ ...defaultInjectionOptions, files: ['proc/cpuinfo'], sysinfoProfile: profile }),
      (err: unknown) => err instanceof InjectionConfigError && /missing: \/proc\/meminfo/.test(err.message));
    assert.throws(() => buildInjectionPlan({ ...defaultInjectionOptions, sysinfoProfile: '/etc/x.json' }), InjectionConfigError);
  });

  it('gives namespaces labelled for it webhook entries of their own, only when offered', () => {
    const options = { endpoint: { url: 'https://127.0.0.1:9443' }, failurePolicy: 'Ignore' as const, timeoutSeconds: 5, excludedNamespaces: ['kube-system'] };
    type Hooks = { webhooks: { name: string; clientConfig: { url: string } }[] };
    const off = buildWebhookConfiguration(options, '') as unknown as Hooks;
    assert.ok(off.webhooks.every((w) => !w.name.includes('sysinfo')));
    const on = buildWebhookConfiguration({ ...options, sysinfo: true }, '') as unknown as Hooks;
    const urls = Object.fromEntries(on.webhooks.map((w) => [w.name, w.clientConfig.url]));
    assert.equal(urls['enabled-sysinfo.lxcfs-ts.io'], 'https://127.0.0.1:9443/mutate/sysinfo');
    assert.equal(urls['optin-sysinfo.lxcfs-ts.io'], 'https://127.0.0.1:9443/mutate/optin/sysinfo');
    assert.equal(on.webhooks.length, off.webhooks.length + 2);
  });
});
