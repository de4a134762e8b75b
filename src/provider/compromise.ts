/**
 * Telling, from the public side's own publications, that a trusted public CA generation's key was declared
 * compromised (鍵危殆化), so that `follow` stops trusting it without waiting for the operator's `untrust`.
 *
 * Why the link certificate, and nothing simpler: certificates a stolen key signs are on no CRL, and cACompromise
 * entries on a full CRL prove nothing (the successor's CRL lists the revoked links too, crl/arl.ts). What the public
 * side does when it declares generation g compromised after a rollover (`jpki ca compromised`, ca/compromised.ts)
 * is revoke g's NewWithOld link — g's key certified by g+1's, served at `<endpoint>/ca/<g>.by-<g+1>.crt`
 * (server/published.ts) — on g+1's full CRL and ARL. So, for trusted g and g+1: fetch that link, check it is signed
 * by g+1's trusted key and certifies g's trusted key (else it says nothing of g), and look its serial up on g+1's
 * full CRL, which the provider verified with g+1's key. Listed: g's key is no longer vouched for by its successor.
 *
 * What this cannot see: a rollover made because of a compromise (`ca rollover --compromised`) publishes no links at
 * all; the link's absence is then reported as a failure of the check, which names `untrust` as the way out. The
 * active (newest trusted) generation has no trusted successor to speak for it.
 */
import { caId, parseCaId } from "../ca/ids.js";
import { JpkiError } from "../errors.js";
import { certificateParts } from "../pki/der.js";
import { parseCertificate } from "../validation/certificate.js";
import { nameEquals } from "../validation/name.js";
import { verifySignature, workingKeyOf } from "../validation/signature.js";
import type { TrustedCa } from "./workspace.js";

/** A trusted generation and its trusted successor, whose CRL can say whether the first's key is compromised. */
export interface GenerationPair {
  readonly ca: TrustedCa;
  readonly successor: TrustedCa;
}

/** Every trusted generation g whose successor g+1 is trusted too, by g's id. */
export function generationPairs(trusted: ReadonlyMap<string, TrustedCa>): GenerationPair[] {
  const out: GenerationPair[] = [];
  for (const [id, ca] of [...trusted].sort(([a], [b]) => a.localeCompare(b))) {
    const p = parseCaId(id);
    const successor = trusted.get(caId(p.prefectureCode, p.purpose, p.generation + 1));
    if (successor) out.push({ ca, successor });
  }
  return out;
}

/** The trusted successor (g+1) of a trusted generation, if any. */
export function trustedSuccessor(trusted: readonly TrustedCa[], ca: TrustedCa): TrustedCa | undefined {
  const p = parseCaId(ca.caId);
  const id = caId(p.prefectureCode, p.purpose, p.generation + 1);
  return trusted.find((t) => t.caId === id);
}

/**
 * Each trusted generation no trusted generation succeeds (the newest of its CA, or the only one): the ones a newer
 * generation of the public side's would be news to.
 */
export function newestTrusted(trusted: ReadonlyMap<string, TrustedCa>): TrustedCa[] {
  return [...trusted.values()]
    .filter((t) => {
      const p = parseCaId(t.caId);
      return !trusted.has(caId(p.prefectureCode, p.purpose, p.generation + 1));
    })
    .sort((a, b) => a.caId.localeCompare(b.caId));
}

/** The id of the generation after `id` (ca/ids.ts: 13-sig → 13-sig-g2). */
export function nextGenerationId(id: string): string {
  const p = parseCaId(id);
  return caId(p.prefectureCode, p.purpose, p.generation + 1);
}

/**
 * Whether `der` is an OldWithNew link from `older`'s trusted key to `newer`'s key (ca/rollover.ts): a certificate under
 * older's name, signed by older's trusted key, certifying newer's key. What makes a newer generation the public side
 * publishes one this provider could verify; anything else (not a certificate, another key) is no link.
 */
export function isOldWithNew(der: Buffer, older: TrustedCa, newerSpki: Buffer): { readonly serial: string } | undefined {
  try {
    const cert = parseCertificate(der);
    if (cert.der.length !== der.length) return undefined;
    const o = parseCertificate(older.der);
    if (!nameEquals(cert.issuer, o.subject) || !verifySignature(cert.tbs, cert.signatureAlgorithm, cert.signature, workingKeyOf(o.publicKey))) return undefined;
    return Buffer.from(certificateParts(der).spki).equals(newerSpki) ? { serial: cert.serialHex } : undefined;
  } catch {
    return undefined;
  }
}

/** Where the endpoint serves g's NewWithOld link certificate (ca/rollover.ts names it `<subject>.by-<issuer>`). */
export function linkCertificateUrl(endpoint: string, pair: GenerationPair): string {
  return `${endpoint}/ca/${pair.ca.caId}.by-${pair.successor.caId}.crt`;
}

/**
 * Checks the link certificate the endpoint served for `pair` and returns its serial (hex, as CRL entries key it).
 * ERR_PUBLIC_CRL_INVALID when it is not a certificate, not signed by the successor's trusted key under its name, or
 * does not certify g's trusted key: a link that does not bind the two trusted keys says nothing of g either way.
 */
export function checkLinkCertificate(der: Buffer, pair: GenerationPair, url: string): string {
  const bad = (m: string, cause?: unknown) =>
    new JpkiError("ERR_PUBLIC_CRL_INVALID", `the link certificate ${pair.ca.caId}.by-${pair.successor.caId} from ${url} ${m}: whether ${pair.ca.caId}'s key was declared compromised is not known; check the endpoint`, cause ? { cause, details: { url } } : { details: { url } });
  let cert: ReturnType<typeof parseCertificate>;
  try {
    cert = parseCertificate(der);
  } catch (e) {
    throw bad("is not a DER certificate", e);
  }
  if (cert.der.length !== der.length) throw bad(`has ${der.length - cert.der.length} bytes after the certificate`);
  const successor = parseCertificate(pair.successor.der);
  if (!nameEquals(cert.issuer, successor.subject)) throw bad(`is not issued under ${pair.successor.caId}'s name`);
  if (!verifySignature(cert.tbs, cert.signatureAlgorithm, cert.signature, workingKeyOf(successor.publicKey))) throw bad(`does not verify with ${pair.successor.caId}'s trusted key`);
  if (!Buffer.from(certificateParts(der).spki).equals(pair.ca.spki)) throw bad(`does not certify ${pair.ca.caId}'s trusted key`);
  return cert.serialHex;
}
