/**
 * Self-managed TLS and replicas against a real kube-apiserver: two replicas elect one writer through
 * a Lease, both serve the certificate from the shared Secret, a short-lived serving certificate is
 * rotated and reloaded without a restart while pods keep being mutated, the CA survives restarts
 * (no caBundle churn), and when the leader dies the other replica takes over.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { acquireKubeEnv, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import {
  eventually,
  freePort,
  startWebhook,
  type WebhookProcess,
  waitReady,
} from '../../helpers/webhook-process.js';

const run = randomBytes(3).toString('hex');
const webhookNs = `lxcfs-ts-e2e-tls-${run}`;
const podNs = `e2e-tls-pods-${run}`;

/** Serial number of the certificate a replica presents right now (a fresh connection each time). */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('self-managed TLS, rotation and leader election', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  const replicas: WebhookProcess[] = [];

  const holder = (): string =>
    kubectl.json<{ spec: { holderIdentity?: string } }>(['-n', webhookNs, 'get', 'lease', 'lxcfs-ts-webhook'])
      .spec.holderIdentity ?? '';
  const caBundle = (): string =>
    kubectl.json<{ webhooks: { clientConfig: { caBundle?: string } }[] }>([
      'get',
      'mutatingwebhookconfiguration',
      'lxcfs-ts',
    ]).webhooks[0]!.clientConfig.caBundle ?? '';
  const mutatedDryRun = (): boolean => {
    const r = kubectl.try([
      '-n',
      podNs,
      'run',
      `p-${randomBytes(2).toString('hex')}`,
      '--image=busybox',
      '--dry-run=server',
      '-o',
      'json',
    ]);
    return r.status === 0 && JSON.parse(r.stdout).metadata.annotations?.['lxcfs-ts.io/status'] === 'mutated';
  };

  async function startReplica(port: number): Promise<WebhookProcess> {
    const p = await startWebhook(
      [
        '--kubeconfig',
        env.kubeconfig,
        '--namespace',
        webhookNs,
        '--external-url',
        `https://127.0.0.1:${port}`,
        '--cert-validity',
        '24s',
        '--lease-duration',
        '3s',
      ],
      port,
    );
    replicas.push(p);
    return p;
  }

  before(() => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    kubectl(['create', 'namespace', webhookNs]);
    kubectl(['create', 'namespace', podNs]);
    kubectl(['label', 'namespace', podNs, 'lxcfs-ts.io/inject=enabled']);
    kubectl(['-n', podNs, 'create', 'serviceaccount', 'default']);
  });

  after(async () => {
    for (const r of replicas) await r.stop('SIGKILL');
    kubectl?.try(['delete', 'mutatingwebhookconfiguration', 'lxcfs-ts']);
    kubectl?.try(['delete', 'namespace', webhookNs, podNs, '--wait=false']);
    env?.release();
  });

  let a: WebhookProcess;
  let b: WebhookProcess;

  it('two replicas: one holds the Lease, both serve the same certificate from the Secret', async () => {
    a = await startReplica(await freePort());
    await waitReady(a);
    b = await startReplica(await freePort());
    await waitReady(b);
    const leader = holder();
    assert.ok(leader !== '');
    assert.match(a.output(), /"leader":true/);
    assert.doesNotMatch(b.output(), /"leader":true/);
    assert.equal(await servedSerial(a.port), await servedSerial(b.port));
    await eventually('pods to be mutated', () => (mutatedDryRun() ? true : undefined));
  });

  it('rotates the short-lived serving certificate and reloads it without a restart', async () => {
    const before = await servedSerial(b.port);
    const ca = caBundle();
    const started = Date.now();
    const rotated = await eventually(
      'a new serving certificate on both replicas',
      async () => {
        const [sa, sb] = [await servedSerial(a.port), await servedSerial(b.port)];
        return sa !== before && sb !== before && sa === sb ? sa : undefined;
      },
      40_000,
    );
    assert.notEqual(rotated, before);
    // Issued for 24 s, renewed once less than a third is left: not before about 16 s of its life.
    assert.ok(Date.now() - started > 8_000, 'not renewed long before it was due');
    assert.equal(a.child.exitCode, null);
    assert.equal(b.child.exitCode, null);
    assert.equal(caBundle(), ca, 'the CA did not change, so the caBundle did not either');
    assert.ok(mutatedDryRun(), 'pods are mutated with the new certificate');
  });

  it('when the leader dies the other replica takes the Lease over and keeps the configuration pointing at it', async () => {
    const leaderIsA = /"leader":true/.test(a.output());
    const [dead, alive] = leaderIsA ? [a, b] : [b, a];
    await dead.stop('SIGKILL'); // no chance to hand the Lease back
    await eventually(
      'the other replica to lead',
      () => (/"leader":true/.test(alive.output()) ? true : undefined),
      20_000,
    );
    await eventually('the configuration to point at the new leader', () => {
      const mwc = kubectl.json<{ webhooks: { clientConfig: { url: string } }[] }>([
        'get',
        'mutatingwebhookconfiguration',
        'lxcfs-ts',
      ]);
      return mwc.webhooks.every((w) => w.clientConfig.url.startsWith(alive.url)) ? true : undefined;
    });
    await eventually('pods to be mutated through the new leader', () => (mutatedDryRun() ? true : undefined));
  });

  it('a restarted webhook keeps the stored CA (no caBundle churn)', async () => {
    const ca = caBundle();
    for (const r of replicas) await r.stop();
    const c = await startReplica(await freePort());
    await waitReady(c);
    await eventually(
      'the new replica to lead',
      () => (/"leader":true/.test(c.output()) ? true : undefined),
      20_000,
    );
    await eventually('pods to be mutated', () => (mutatedDryRun() ? true : undefined));
    assert.equal(caBundle(), ca);
  });
});
