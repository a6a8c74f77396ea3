/**
 * `lxcfs-ts webhook` as a process, without any API server: flags, and certificates from files that
 * are re-read when they change (the cert-manager and plain-files modes).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { createCertificateAuthority, issueServingCertificate } from '../../../src/webhook/certificates.js';
import { repoRoot } from '../../helpers/paths.js';
import { eventually, probe, startWebhook, waitReady } from '../../helpers/webhook-process.js';

const cli = `${repoRoot}dist/src/cli.js`;

function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.end();
    });
    socket.on('error', reject);
  });
}

describe('lxcfs-ts webhook command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-webhook-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints usage and exits 2 on bad flags, 0 on --help', () => {
    const cases: [string[], number, RegExp][] = [
      [['--help'], 0, /Usage: lxcfs-ts webhook/],
      [['--bogus'], 2, /Unknown option '--bogus'/],
      [['--listen', 'nowhere'], 2, /--listen: "nowhere" is not HOST:PORT/],
      [['--cert-validity', '3 weeks'], 2, /is not a duration/],
      [['--tls', 'magic'], 2, /--tls must be one of self, files, cert-manager/],
      [['--view-dir', '/var/lib/lxcfs'], 2, /parent of the view directory \/var\/lib\/lxcfs is \/var\/lib/],
      [['--external-url', 'http://127.0.0.1:1'], 2, /must be an https:\/\/ URL/],
      [['--external-url', 'https://127.0.0.1:1/mutate'], 2, /has a path \(\/mutate\); give the webhook's base URL/],
      [['--external-url', 'https://127.0.0.1:1/?a=b'], 2, /has a query, fragment or user name/],
      [['--tls', 'files', '--manage-config', 'none'], 2, /needs --tls-cert-file and --tls-key-file/],
    ];
    for (const [args, status, message] of cases) {
      const r = spawnSync(process.execPath, [cli, 'webhook', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(status === 0 ? r.stdout : r.stderr, message, args.join(' '));
    }
  });

  it('prints the configuration it would register', () => {
    const r = spawnSync(
      process.execPath,
      [cli, 'webhook', '--print-config', '--namespace', 'infra', '--failure-policy', 'Fail'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(r.stdout);
    assert.equal(config.metadata.name, 'lxcfs-ts');
    assert.deepEqual(config.webhooks[0].clientConfig, {
      service: { namespace: 'infra', name: 'lxcfs-ts-webhook', port: 443, path: '/mutate' },
    });
    assert.equal(config.webhooks[0].failurePolicy, 'Fail');
  });

  it('serves certificates from files and picks up new ones without a restart', async () => {
    const now = new Date();
    const ca = await createCertificateAuthority('files-ca', now, 86_400_000);
    const first = await issueServingCertificate(ca, ['127.0.0.1'], now, 86_400_000);
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    writeFileSync(certFile, first.cert);
    writeFileSync(keyFile, first.key);
    const proc = await startWebhook([
      '--tls',
      'files',
      '--tls-cert-file',
      certFile,
      '--tls-key-file',
      keyFile,
      '--manage-config',
      'none',
      '--resync',
      '1s',
    ]);
    try {
      await waitReady(proc);
      const before = await servedSerial(proc.port, ca.cert);
      const second = await issueServingCertificate(ca, ['127.0.0.1'], now, 86_400_000);
      // Replace both files the way a Secret volume does: atomically, one after the other.
      writeFileSync(`${keyFile}.new`, second.key);
      renameSync(`${keyFile}.new`, keyFile);
      writeFileSync(`${certFile}.new`, second.cert);
      renameSync(`${certFile}.new`, certFile);
      const after = await eventually(
        'the new certificate',
        async () => {
          const s = await servedSerial(proc.port, ca.cert);
          return s !== before ? s : undefined;
        },
        15_000,
      );
      assert.equal(after, new (await import('node:crypto')).X509Certificate(second.cert).serialNumber);
      const metrics = await probe(proc.port, '/metrics');
      assert.match(metrics.body, /lxcfs_ts_webhook_certificate_reloads_total 1/);
      assert.equal((await probe(proc.port, '/healthz')).status, 200);
    } finally {
      assert.equal(await proc.stop('SIGTERM'), 0);
    }
  });
});
