/**
 * The golden cases as AdmissionReviews POSTed to a running `lxcfs-ts webhook` over HTTPS, with the
 * injection options given as command-line flags. This is how fields the test API server (1.20)
 * drops, such as `restartPolicy` on init containers (native sidecars), reach the webhook as a
 * newer API server would send them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { InjectionOptions } from '../../../src/webhook/injection-plan.js';
import { type GoldenCase, goldenCases, goldenDir } from '../../helpers/golden-cases.js';
import { loopbackCertificates } from '../../helpers/test-certs.js';
import { startWebhook, type WebhookProcess, waitReady } from '../../helpers/webhook-process.js';

const dir = goldenDir;
const cases = goldenCases;

/** The command-line flags that give the webhook a case's injection options. */
function flagsFor(options: Partial<InjectionOptions> = {}): string[] {
  const flags: string[] = [];
  if (options.viewDir) flags.push('--view-dir', options.viewDir);
  if (options.files) flags.push('--files', options.files.join(','));
  if (options.initContainers) flags.push('--init-containers');
  if (options.parentMount === false) flags.push('--no-parent-mount');
  return flags;
}

function post(port: number, path: string, ca: string, body: unknown): Promise<{ status: number; body: string }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        ca,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('golden patches from a running webhook over HTTPS', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lxcfs-ts-golden-https-'));
  const processes = new Map<string, WebhookProcess>();
  let ca = '';
  let tlsFlags: string[] = [];

  before(async () => {
    const certs = await loopbackCertificates();
    ca = certs.ca.cert;
    writeFileSync(join(tmp, 'tls.crt'), certs.serving.cert);
    writeFileSync(join(tmp, 'tls.key'), certs.serving.key);
    tlsFlags = [
      '--tls',
      'files',
      '--tls-cert-file',
      join(tmp, 'tls.crt'),
      '--tls-key-file',
      join(tmp, 'tls.key'),
      '--manage-config',
      'none',
      // The golden cases treat lxcfs-ts (the webhook's namespace) and kube-system as excluded.
      '--namespace',
      'lxcfs-ts',
    ];
  });

  after(async () => {
    for (const p of processes.values()) await p.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** One webhook process per distinct set of flags, started on first use. */
  async function webhookFor(flags: string[]): Promise<WebhookProcess> {
    const key = flags.join(' ');
    let proc = processes.get(key);
    if (!proc) {
      proc = await startWebhook([...tlsFlags, ...flags]);
      processes.set(key, proc);
      await waitReady(proc);
    }
    return proc;
  }

  for (const file of cases) {
    const c = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as GoldenCase;
    it(`${file}: ${c.description}`, async () => {
      const proc = await webhookFor(flagsFor(c.options));
      const path = c.mode === 'optin' ? '/mutate/optin' : '/mutate';
      const res = await post(proc.port, path, ca, {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: `u-${file}`,
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          operation: 'CREATE',
          namespace: c.namespace,
          object: c.pod,
        },
      });
      assert.equal(res.status, 200, res.body);
      const review = JSON.parse(res.body) as { response: { uid: string; allowed: boolean; patch?: string } };
      assert.equal(review.response.uid, `u-${file}`);
      assert.equal(review.response.allowed, true);
      const patch = review.response.patch
        ? JSON.parse(Buffer.from(review.response.patch, 'base64').toString())
        : [];
      const golden = JSON.parse(readFileSync(`${dir}/${file.replace(/\.json$/, '.patch.json')}`, 'utf8'));
      assert.deepEqual(patch, golden);
    });
  }
});
