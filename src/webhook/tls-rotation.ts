/**
 * When to create a CA, when to issue a serving certificate, and which CAs clients should trust.
 * The decision is a pure function of the stored material and the clock, so every rotation step is
 * unit-tested with a fake clock; `rotate` then makes the keys the decision asks for.
 *
 * CA rotation without a failed call: a new CA is first added to the trust bundle next to the old
 * one (the caBundle the API server uses), and only after `propagationDelayMs` is the serving
 * certificate re-issued from it. Until then the serving certificate signed by the old CA, which is
 * still trusted, stays in use. Expired CAs leave the bundle.
 */
import {
  backdateMs,
  type CertificateInfo,
  createCertificateAuthority,
  describeCertificate,
  issueServingCertificate,
  keyMatches,
  signedBy,
  splitPemBundle,
} from './certificates.js';

/** What the certificate Secret holds (PEM strings; empty when absent). */
export interface TlsMaterial {
  /** The CA that signs new serving certificates. */
  caCert: string;
  caKey: string;
  /** Serving certificate and key. */
  cert: string;
  key: string;
  /** Every CA clients must trust right now (the caBundle): the signing CA and older ones still valid. */
  caBundle: string;
}

export interface RotationPolicy {
  caValidityMs: number;
  servingValidityMs: number;
  /** Renew when less than this fraction of a certificate's lifetime is left. */
  renewFraction: number;
  /** How long a new CA sits in the trust bundle before a serving certificate signed by it is used. */
  propagationDelayMs: number;
  caCommonName: string;
}

export interface RotationPlan {
  newCA: boolean;
  issueServing: boolean;
  /** The trust bundle to keep (existing CAs, unexpired, in order newest first), before any new CA. */
  keptTrust: string[];
  reasons: string[];
}

function parse(pem: string): CertificateInfo | null {
  try {
    return pem ? describeCertificate(pem) : null;
  } catch {
    return null;
  }
}

/** The lifetime asked for: certificates are backdated for clock skew, which is not part of it. */
function lifetime(info: CertificateInfo): number {
  return info.notAfter.getTime() - info.notBefore.getTime() - backdateMs;
}

function renewDue(info: CertificateInfo, now: Date, fraction: number): boolean {
  return info.notAfter.getTime() - now.getTime() < lifetime(info) * fraction;
}

function sameHosts(info: CertificateInfo, hosts: readonly string[]): boolean {
  const have = new Set([...info.dnsNames, ...info.ipAddresses]);
  return have.size === new Set(hosts).size && hosts.every((h) => have.has(h));
}

export function planRotation(
  material: TlsMaterial,
  hosts: readonly string[],
  now: Date,
  policy: RotationPolicy,
): RotationPlan {
  const reasons: string[] = [];
  const ca = parse(material.caCert);
  const caUsable = !!ca?.isCA && keyMatches(material.caCert, material.caKey) && ca.notAfter > now;
  let newCA = false;
  if (!caUsable) {
    newCA = true;
    reasons.push(material.caCert ? 'CA unusable (invalid, expired or key mismatch)' : 'no CA yet');
  } else if (renewDue(ca, now, policy.renewFraction)) {
    newCA = true;
    reasons.push(`CA expires ${ca.notAfter.toISOString()}`);
  }

  const keptTrust = splitPemBundle(material.caBundle).filter((pem) => {
    const info = parse(pem);
    return info !== null && info.notAfter > now;
  });
  const caPem = splitPemBundle(material.caCert)[0] ?? '';
  if (caUsable && !keptTrust.includes(caPem)) keptTrust.unshift(caPem);

  const serving = parse(material.cert);
  const servingValid =
    serving !== null && keyMatches(material.cert, material.key) && serving.notAfter.getTime() > now.getTime();
  const trusted = servingValid && keptTrust.some((c) => signedBy(material.cert, c));
  let issueServing = false;
  if (!servingValid || !trusted) {
    issueServing = true;
    reasons.push(
      material.cert
        ? 'serving certificate unusable (invalid, expired or untrusted)'
        : 'no serving certificate yet',
    );
  } else if (!sameHosts(serving, hosts)) {
    issueServing = true;
    reasons.push(
      `serving certificate names ${[...serving.dnsNames, ...serving.ipAddresses].join(',')} != ${hosts.join(',')}`,
    );
  } else {
    // Renewal or moving to the newest CA can wait until that CA has had time to reach every client.
    const signerAgeMs = newCA ? 0 : now.getTime() - (ca!.notBefore.getTime() + backdateMs);
    const signerSettled = signerAgeMs >= policy.propagationDelayMs;
    const fromOldCA = newCA || !signedBy(material.cert, material.caCert);
    const nearExpiry = serving.notAfter.getTime() - now.getTime() < policy.propagationDelayMs;
    if (renewDue(serving, now, policy.renewFraction) && (signerSettled || nearExpiry)) {
      issueServing = true;
      reasons.push(`serving certificate expires ${serving.notAfter.toISOString()}`);
    } else if (fromOldCA && signerSettled) {
      issueServing = true;
      reasons.push('serving certificate moves to the newest CA');
    }
  }
  return { newCA, issueServing, keptTrust, reasons };
}

/** Applies a plan: returns the new material, or null when nothing changes. */
export async function rotate(
  material: TlsMaterial,
  hosts: readonly string[],
  now: Date,
  policy: RotationPolicy,
): Promise<{ material: TlsMaterial; reasons: string[] } | null> {
  const plan = planRotation(material, hosts, now, policy);
  const bundleChanged = plan.keptTrust.join('') !== splitPemBundle(material.caBundle).join('');
  if (!plan.newCA && !plan.issueServing && !bundleChanged) return null;
  const next = { ...material };
  const trust = [...plan.keptTrust];
  if (plan.newCA) {
    const ca = await createCertificateAuthority(policy.caCommonName, now, policy.caValidityMs);
    next.caCert = ca.cert;
    next.caKey = ca.key;
    trust.unshift(ca.cert);
  }
  if (plan.issueServing) {
    const pair = await issueServingCertificate(
      { cert: next.caCert, key: next.caKey },
      hosts,
      now,
      policy.servingValidityMs,
    );
    next.cert = pair.cert;
    next.key = pair.key;
  }
  next.caBundle = trust.join('');
  return {
    material: next,
    reasons: bundleChanged && plan.reasons.length === 0 ? ['expired CA left the bundle'] : plan.reasons,
  };
}
