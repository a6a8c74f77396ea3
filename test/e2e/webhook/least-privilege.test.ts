/**
 * The webhook running as a service account with only the permissions in
 * test/fixtures/webhook/rbac.yaml: it still creates its certificates, takes its Lease, registers
 * its configuration and mutates pods. A permission the code needs but the list lacks fails here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireKubeEnv, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import { fixturePath } from '../../helpers/paths.js';
import {
  eventually,
  freePort,
  startWebhook,
  type WebhookProcess,
  waitReady,
} from '../../helpers/webhook-process.js';

const run = randomBytes(3).toString('hex');
const ns = `lxcfs-ts-e2e-rbac-${run}`;
const podNs = `e2e-rbac-pods-${run}`;
const rbac = readFileSync(fixturePath('webhook', 'rbac.yaml'), 'utf8').replaceAll('NAMESPACE', ns);
const saKubeconfig = join(tmpdir(), `lxcfs-ts-e2e-rbac-${run}.kubeconfig`);

describe('least privilege', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  let webhook: WebhookProcess | undefined;

  before(() => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    kubectl(['create', 'namespace', ns]);
    kubectl(['create', 'namespace', podNs]);
    kubectl(['label', 'namespace', podNs, 'lxcfs-ts.io/inject=enabled']);
    kubectl(['-n', podNs, 'create', 'serviceaccount', 'default']);
    kubectl(['apply', '-f', '-'], rbac);
    const token = kubectl(['-n', ns, 'create', 'token', 'lxcfs-ts-webhook', '--duration=1h']).trim();
    const admin = readFileSync(env.kubeconfig, 'utf8');
    writeFileSync(saKubeconfig, admin.replace(/token: .*/, `token: ${token}`));
  });

  after(async () => {
    await webhook?.stop();
    kubectl?.try(['delete', 'mutatingwebhookconfiguration', 'lxcfs-ts']);
    kubectl?.try(['delete', 'clusterrolebinding,clusterrole', `lxcfs-ts-webhook-${ns}`]);
    kubectl?.try(['delete', 'namespace', ns, podNs, '--wait=false']);
    rmSync(saKubeconfig, { force: true });
    env?.release();
  });

  it('the service account cannot read other Secrets', () => {
    const r = kubectl.try(['--kubeconfig', saKubeconfig, '-n', ns, 'get', 'secrets']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /forbidden/);
  });

  it('with only those permissions the webhook sets itself up and mutates pods', async () => {
    const port = await freePort();
    webhook = await startWebhook(
      ['--kubeconfig', saKubeconfig, '--namespace', ns, '--external-url', `https://127.0.0.1:${port}`],
      port,
    );
    await waitReady(webhook);
    await eventually('a mutated pod', () => {
      const r = kubectl.try([
        '-n',
        podNs,
        'run',
        `p${randomBytes(2).toString('hex')}`,
        '--image=busybox',
        '-o',
        'json',
      ]);
      return r.status === 0 && JSON.parse(r.stdout).metadata.annotations?.['lxcfs-ts.io/status'] === 'mutated'
        ? true
        : undefined;
    });
    assert.doesNotMatch(webhook.output(), /forbidden/i);
    assert.equal(
      kubectl.json<{ spec: { holderIdentity: string } }>(['-n', ns, 'get', 'lease', 'lxcfs-ts-webhook']).spec
        .holderIdentity.length > 0,
      true,
    );
  });
});
