/**
 * Certificate generation (CA and serving certificates) with ECDSA P-256 keys made by Node's own
 * WebCrypto, and certificate inspection with Node's X509Certificate.
 */
import 'reflect-metadata'; // @peculiar/x509 resolves its services through tsyringe, which needs it first
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Certificates start a little in the past so a peer whose clock lags does not see them as not yet valid. */
export const backdateMs = 5 * 60 * 1000;

export interface KeyPairPem {
  cert: string;
  key: string;
}

export interface CertificateInfo {
  notBefore: Date;
  notAfter: Date;
  serial: string;
  subject: string;
  issuer: string;
  dnsNames: string[];
  ipAddresses: string[];
  isCA: boolean;
  fingerprint256: string;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  return bytes.toString('hex');
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
}

export async function createCertificateAuthority(
  commonName: string,
  now: Date,
  validityMs: number,
): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now.getTime() - backdateMs),
    notAfter: new Date(now.getTime() + validityMs),
    keys: keys as never,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  return { cert: pemLine(cert.toString('pem')), key: await exportKey(keys.privateKey) };
}

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(body, 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
}

/** A serverAuth certificate for `hosts` (DNS names and IP addresses), signed by `ca`, never outliving it. */
export async function issueServingCertificate(
  ca: KeyPairPem,
  hosts: readonly string[],
  now: Date,
  validityMs: number,
): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const caCert = new x509.X509Certificate(ca.cert);
  const notAfter = new Date(Math.min(now.getTime() + validityMs, caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hosts[0] ?? 'lxcfs-ts-webhook'}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - backdateMs),
    notAfter,
    publicKey: keys.publicKey as never,
    signingKey: (await importKey(ca.key)) as never,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: pemLine(cert.toString('pem')), key: await exportKey(keys.privateKey) };
}

/** Splits a PEM bundle into its certificates. */
export function splitPemBundle(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(pemLine);
}

/** One PEM block ending with exactly one newline, so bundles concatenate cleanly. */
function pemLine(pem: string): string {
  return `${pem.trim()}\n`;
}

export function describeCertificate(pem: string): CertificateInfo {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName ?? '';
  const entries = san
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    serial: cert.serialNumber,
    subject: cert.subject,
    issuer: cert.issuer,
    dnsNames: entries.filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4)),
    ipAddresses: entries.filter((e) => e.startsWith('IP Address:')).map((e) => e.slice(11)),
    isCA: cert.ca,
    fingerprint256: cert.fingerprint256,
  };
}

/** True when `cert` was signed by `caCert`'s key. */
export function signedBy(cert: string, caCert: string): boolean {
  try {
    const leaf = new X509Certificate(cert);
    const ca = new X509Certificate(caCert);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/** True when the private key belongs to the certificate. */
export function keyMatches(cert: string, key: string): boolean {
  try {
    return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch {
    return false;
  }
}
