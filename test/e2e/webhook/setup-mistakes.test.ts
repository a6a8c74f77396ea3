/**
 * The two set-up mistakes a new user makes in local mode, against a real kube-apiserver: a webhook
 * namespace that does not exist, and an --external-url that already ends in /mutate. Each must end
 * the process within 5 s with one message that names the fix, and register nothing wrong.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { acquireKubeEnv, type Kubectl, type KubeEnv, kubectlFor } from '../../helpers/kube-env.js';
import { freePort, startWebhook, type WebhookProcess, waitReady } from '../../helpers/webhook-process.js';

const run = randomBytes(3).toString('hex');
const missingNs = `lxcfs-ts-e2e-missing-${run}`;
const webhookNs = `lxcfs-ts-e2e-setup-${run}`;

interface Configuration {
  webhooks: { clientConfig: { url?: string } }[];
}

/** Waits for the process to end; fails (and kills it) if it is still running after `ms`. */
async function exitWithin(proc: WebhookProcess, ms: number): Promise<{ code: number | string; ms: number }> {
  const started = Date.now();
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), ms);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, ms: Date.now() - started };
}

describe('webhook set-up mistakes are explained', () => {
  let env: KubeEnv;
  let kubectl: Kubectl;
  const started: WebhookProcess[] = [];

  const registeredUrls = (): string[] => {
    const r = kubectl.try(['get', 'mutatingwebhookconfiguration', 'lxcfs-ts', '-o', 'json']);
    if (r.status !== 0) return [];
    return (JSON.parse(r.stdout) as Configuration).webhooks.map((w) => w.clientConfig.url ?? '');
  };

  before(() => {
    env = acquireKubeEnv();
    kubectl = kubectlFor(env.kubeconfig);
    kubectl(['create', 'namespace', webhookNs]);
  });

  after(async () => {
    for (const p of started) await p.stop('SIGKILL');
    kubectl?.try(['delete', 'mutatingwebhookconfiguration', 'lxcfs-ts']);
    kubectl?.try(['delete', 'namespace', webhookNs, '--wait=false']);
    env?.release();
  });

  it('a missing own namespace: one message with the fix, exit code 1, within 5 s', async () => {
    const port = await freePort();
    const proc = await startWebhook(
      ['--kubeconfig', env.kubeconfig, '--namespace', missingNs, '--external-url', `https://127.0.0.1:${port}`],
      port,
    );
    started.push(proc);
    const { code, ms } = await exitWithin(proc, 15_000);
    const output = proc.output();
    assert.equal(code, 1, output);
    assert.ok(ms < 5000, `took ${ms} ms:\n${output}`);
    const lines = output.split('\n').filter((l) => l.includes(missingNs));
    assert.equal(lines.length, 1, output);
    const record = JSON.parse(lines[0]!) as { level: number; msg: string };
    assert.equal(record.level, 50);
    assert.match(record.msg, new RegExp(`namespace "${missingNs}" does not exist`));
    assert.match(record.msg, new RegExp(`kubectl create namespace ${missingNs}`));
    assert.match(record.msg, /pass --namespace/);
    assert.doesNotMatch(output, /lease update failed|sync failed/);
    assert.ok(!registeredUrls().some((u) => u.includes(`:${port}`)), 'nothing registered for it');
  });

  it('an --external-url with a path is refused at once, naming the base URL to use', async () => {
    const port = await freePort();
    const proc = await startWebhook(
      [
        '--kubeconfig',
        env.kubeconfig,
        '--namespace',
        webhookNs,
        '--external-url',
        `https://127.0.0.1:${port}/mutate`,
      ],
      port,
    );
    started.push(proc);
    const { code, ms } = await exitWithin(proc, 15_000);
    const output = proc.output();
    assert.equal(code, 2, output);
    assert.ok(ms < 5000, `took ${ms} ms:\n${output}`);
    assert.match(
      output.split('\n')[0]!,
      new RegExp(
        `--external-url: "https://127.0.0.1:${port}/mutate" has a path \\(/mutate\\); ` +
        `give the webhook's base URL \\(https://127.0.0.1:${port}\\)`,
      ),
    );
    assert.ok(!registeredUrls().some((u) => u.includes(`:${port}`)), 'nothing registered for it');
  });

  it('the base URL (with or without a trailing slash) registers exactly /mutate and /mutate/optin', async () => {
    const port = await freePort();
    const proc = await startWebhook(
      ['--kubeconfig', env.kubeconfig, '--namespace', webhookNs, '--external-url', `https://127.0.0.1:${port}/`],
      port,
    );
    started.push(proc);
    await waitReady(proc);
    const base = `https://127.0.0.1:${port}`;
    let urls: string[] = [];
    for (let i = 0; i < 40 && urls.length === 0; i++) {
      urls = registeredUrls().filter((u) => u.startsWith(base));
      if (urls.length === 0) await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual([...new Set(urls)].sort(), [`${base}/mutate`, `${base}/mutate/optin`]);
    await proc.stop();
  });
});
