/**
 * Telling, from the public side's own publications, that a trusted public CA generation's key was declared
 * compromised (鍵危殆化), so that `follow` stops trusting it without waiting for the operator's `untrust`.
 *
 * Why the link certificate, and nothing simpler: certificates a stolen key signs are on no CRL, and cACompromise
 * entries on a full CRL prove nothing (the successor's CRL lists the revoked links too, crl/arl.ts). What the public
 * side does when it declares generation g compromised after a rollover (`jpki ca compromised`, ca/compromised.ts)
 * is revoke g's NewWithOld link — g's key certified by its successor s's, served at `<endpoint>/ca/<g>.by-<s>.crt`
 * (server/published.ts) — on s's full CRL and ARL. So, for trusted g and s: fetch that link, check it is signed
 * by s's trusted key and certifies g's trusted key (else it says nothing of g), and look its serial up on s's
 * full CRL, which the provider verified with s's key. Listed: g's key is no longer vouched for by its successor.
 *
 * Which generation succeeds g: usually g+1, but a rollover takes the first free id (ca/free-ids.ts), so after a restore
 * retired 13-sig-g2, 13-sig's successor is 13-sig-g3. The endpoint's `/ca/index.json` names it (SuccessorHints).
 *
 * What this cannot see: a rollover made because of a compromise (`ca rollover --compromised`) publishes no links at
 * all; the link's absence is then reported as a failure of the check, which names `untrust` as the way out. The
 * active (newest trusted) generation has no trusted successor to speak for it.
 */
import { createHash } from "node:crypto";
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

/**
 * Each trusted generation's successor as the endpoint's `/ca/index.json` names it (ca/generation-index.ts), by the
 * generation's id. A hint, never trust: it only adds a candidate beside g+1 (successorCandidates), every certificate
 * and link is verified as before, and an index that names a wrong successor fails the check that follows it (its link
 * is missing or binds other keys). Empty when the endpoint has no index (an older server).
 */
export type SuccessorHints = ReadonlyMap<string, string>;

export const NO_HINTS: SuccessorHints = new Map();

/**
 * The hints of an index the endpoint served: for each trusted generation the index lists with the SHA-256 of the very
 * certificate trusted here (an entry about another certificate says nothing of this one), a successor that is a later
 * generation of the same CA. Any other entry is passed over. undefined when the body is not an index at all (not JSON,
 * no `generations` list): the caller cannot tell it from an index that names no successor, so it is not taken for one.
 */
export function successorHints(body: Uint8Array, trusted: Iterable<TrustedCa>): SuccessorHints | undefined {
  const out = new Map<string, string>();
  let generations: unknown;
  try {
    generations = (JSON.parse(Buffer.from(body).toString("utf8")) as { generations?: unknown })?.generations;
  } catch {
    return undefined;
  }
  if (!Array.isArray(generations)) return undefined;
  const byId = new Map([...trusted].map((t) => [t.caId, t]));
  for (const g of generations as Array<{ id?: unknown; sha256?: unknown; successor?: unknown }>) {
    if (typeof g?.id !== "string" || typeof g.sha256 !== "string" || typeof g.successor !== "string") continue;
    const t = byId.get(g.id);
    if (!t || g.sha256.toLowerCase() !== createHash("sha256").update(t.der).digest("hex")) continue;
    try {
      const p = parseCaId(t.caId);
      const s = parseCaId(g.successor);
      const id = caId(s.prefectureCode, s.purpose, s.generation);
      if (id === g.successor && s.prefectureCode === p.prefectureCode && s.purpose === p.purpose && s.generation > p.generation) out.set(t.caId, id);
    } catch {
      // not a CA id: no hint
    }
  }
  return out;
}

/**
 * The ids that may succeed `id`: the index's successor first, when it names one, then g+1 (ca/ids.ts: 13-sig →
 * 13-sig-g2), what every rollover made until an id was passed over (ca/free-ids.ts) and what an endpoint without an
 * index leaves to assume. g+1 stays a candidate whatever the index says, so an index can add a check, never take one away.
 */
export function successorCandidates(id: string, hints: SuccessorHints = NO_HINTS): string[] {
  const p = parseCaId(id);
  const next = caId(p.prefectureCode, p.purpose, p.generation + 1);
  const hinted = hints.get(id);
  return hinted && hinted !== next ? [hinted, next] : [next];
}

/** Every trusted generation g with a trusted successor (successorCandidates), by g's id. */
export function generationPairs(trusted: ReadonlyMap<string, TrustedCa>, hints: SuccessorHints = NO_HINTS): GenerationPair[] {
  const out: GenerationPair[] = [];
  for (const [id, ca] of [...trusted].sort(([a], [b]) => a.localeCompare(b))) {
    for (const s of successorCandidates(id, hints)) {
      const successor = trusted.get(s);
      if (successor) out.push({ ca, successor });
    }
  }
  return out;
}

/** The trusted successors (successorCandidates) of a trusted generation: none, one, or two when the index names another than g+1. */
export function trustedSuccessors(trusted: readonly TrustedCa[], ca: TrustedCa, hints: SuccessorHints = NO_HINTS): TrustedCa[] {
  return successorCandidates(ca.caId, hints).flatMap((id) => trusted.filter((t) => t.caId === id));
}

/** Whether a generation later than `ca`'s of the same CA is trusted: only then can a successor be, and the index matter to it. */
export function laterTrusted(trusted: Iterable<TrustedCa>, ca: TrustedCa): boolean {
  const p = parseCaId(ca.caId);
  return [...trusted].some((t) => {
    const q = parseCaId(t.caId);
    return q.prefectureCode === p.prefectureCode && q.purpose === p.purpose && q.generation > p.generation;
  });
}

/**
 * Each trusted generation no trusted generation succeeds (the newest of its CA, or the only one): the ones a newer
 * generation of the public side's would be news to.
 */
export function newestTrusted(trusted: ReadonlyMap<string, TrustedCa>, hints: SuccessorHints = NO_HINTS): TrustedCa[] {
  return [...trusted.values()].filter((t) => !successorCandidates(t.caId, hints).some((s) => trusted.has(s))).sort((a, b) => a.caId.localeCompare(b.caId));
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
