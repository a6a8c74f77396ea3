import {
  createCertificateAuthority,
  issueServingCertificate,
  type KeyPairPem,
} from '../../src/webhook/certificates.js';

/** A CA and a serving certificate for 127.0.0.1, valid for a day. */
export async function loopbackCertificates(): Promise<{ ca: KeyPairPem; serving: KeyPairPem }> {
  const now = new Date();
  const ca = await createCertificateAuthority('lxcfs-ts-test-ca', now, 86_400_000);
  const serving = await issueServingCertificate(ca, ['127.0.0.1', 'localhost'], now, 86_400_000);
  return { ca, serving };
}
