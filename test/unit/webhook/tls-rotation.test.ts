import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeCertificate, signedBy, splitPemBundle } from '../../../src/webhook/certificates.js';
import {
  planRotation,
  type RotationPolicy,
  rotate,
  type TlsMaterial,
} from '../../../src/webhook/tls-rotation.js';

const hour = 3_600_000;
const day = 24 * hour;
const policy: RotationPolicy = {
  caValidityMs: 300 * day,
  servingValidityMs: 30 * day,
  renewFraction: 1 / 3,
  propagationDelayMs: 5 * 60_000,
  caCommonName: 'test-ca',
};
const hosts = ['lxcfs-ts-webhook.lxcfs-ts.svc', '127.0.0.1'];
const empty: TlsMaterial = { caCert: '', caKey: '', cert: '', key: '', caBundle: '' };
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

async function step(material: TlsMaterial, now: Date): Promise<TlsMaterial> {
  return (await rotate(material, hosts, now, policy))?.material ?? material;
}

describe('certificate rotation', () => {
  it('creates a CA and a serving certificate for the right names, and then leaves them alone', async () => {
    const first = await rotate(empty, hosts, at(0), policy);
    assert.ok(first);
    assert.deepEqual(first.reasons, ['no CA yet', 'no serving certificate yet']);
    const m = first.material;
    const info = describeCertificate(m.cert);
    assert.deepEqual(info.dnsNames, ['lxcfs-ts-webhook.lxcfs-ts.svc']);
    assert.deepEqual(info.ipAddresses, ['127.0.0.1']);
    assert.ok(signedBy(m.cert, m.caCert));
    assert.deepEqual(splitPemBundle(m.caBundle), [m.caCert]);
    assert.equal(await rotate(m, hosts, at(day), policy), null);
    assert.equal(await rotate(m, hosts, at(19 * day), policy), null);
  });

  it('renews the serving certificate once less than a third of its life is left, from the same CA', async () => {
    const m = await step(empty, at(0));
    const renewed = await rotate(m, hosts, at(21 * day), policy);
    assert.ok(renewed);
    assert.notEqual(renewed.material.cert, m.cert);
    assert.equal(renewed.material.caCert, m.caCert);
    assert.equal(renewed.material.caBundle, m.caBundle);
  });

  it('re-issues at once when the names change or the stored material is damaged', async () => {
    const m = await step(empty, at(0));
    const renamed = await rotate(m, [...hosts, 'extra.example'], at(hour), policy);
    assert.ok(renamed?.reasons[0]?.startsWith('serving certificate names'));
    assert.equal(renamed?.material.caCert, m.caCert);
    const badKey = await rotate({ ...m, key: m.caKey }, hosts, at(hour), policy);
    assert.ok(badKey?.reasons.includes('serving certificate unusable (invalid, expired or untrusted)'));
    const badCa = await rotate({ ...m, caCert: 'garbage' }, hosts, at(hour), policy);
    assert.ok(badCa?.reasons[0]?.startsWith('CA unusable'));
  });

  it('rotates the CA in two steps: trust first, use after the propagation delay, drop when expired', async () => {
    const m0 = await step(empty, at(0));
    // 201 days in: the CA (300 days) has less than a third left. The serving cert was renewed meanwhile.
    let m = m0;
    for (const d of [21, 42, 63, 84, 105, 126, 147, 168, 189]) m = await step(m, at(d * day));
    const caRenewal = planRotation(m, hosts, at(201 * day), policy);
    assert.equal(caRenewal.newCA, true);
    assert.equal(caRenewal.issueServing, false, 'the serving certificate waits for the new CA to propagate');
    const m1 = await step(m, at(201 * day));
    assert.notEqual(m1.caCert, m.caCert);
    assert.deepEqual(splitPemBundle(m1.caBundle), [m1.caCert, m0.caCert], 'both CAs trusted');
    assert.equal(m1.cert, m.cert, 'still serving the certificate from the old CA');
    // Before the delay nothing moves; after it the serving certificate comes from the new CA.
    assert.equal(await rotate(m1, hosts, at(201 * day + 60_000), policy), null);
    const m2 = await step(m1, at(201 * day + 6 * 60_000));
    assert.ok(signedBy(m2.cert, m1.caCert));
    assert.deepEqual(splitPemBundle(m2.caBundle), [m1.caCert, m0.caCert]);
    // Once the old CA has expired it leaves the bundle.
    let m3 = m2;
    for (let d = 210; d <= 301; d += 7) m3 = await step(m3, at(d * day));
    assert.deepEqual(splitPemBundle(m3.caBundle), [m1.caCert]);
    assert.ok(signedBy(m3.cert, m1.caCert));
  });

  it('never issues a serving certificate that outlives its CA', async () => {
    const shortCa = { ...policy, caValidityMs: 10 * day };
    const r = await rotate(empty, hosts, at(0), shortCa);
    assert.ok(r);
    const ca = describeCertificate(r.material.caCert);
    assert.ok(describeCertificate(r.material.cert).notAfter <= ca.notAfter);
  });
});
