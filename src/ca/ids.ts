/**
 * CA ids: a prefecture code and a purpose, "13-sig" / "13-auth", and for a CA key generation after a key
 * rollover (ca/rollover.ts) a generation suffix: "13-sig-g2", "13-sig-g3". Light: no key or certificate code.
 *
 * Key rollover design (issue 13 point 5): each key generation is a CA record of its own, with its own id,
 * certificate, key, CRL sequence, CRL/ARL URLs and OCSP responder; the first generation keeps the plain id, so
 * existing workspaces and certificates are unchanged. Everything keyed by the CA id — a certificate's caId,
 * revocation, CRL entries and numbering, OCSP — therefore follows the generation that issued the certificate
 * with no change, and only the places that pick "the CA of prefecture P for purpose X" to issue pick the
 * active (highest) generation ({@link activeGeneration}). The alternative, generations inside one CA record,
 * would have touched every CRL, OCSP and store method keyed by CA id.
 */
import { JpkiError } from "../errors.js";
import type { CertificateType } from "../profile/types.js";
import { prefecture } from "./prefectures.js";

export const PURPOSE_SUFFIX: Record<CertificateType, string> = { signature: "sig", authentication: "auth" };

/** The CA id of a prefecture, purpose and key generation (1, the default: the CA as `jpki ca init` made it). */
export function caId(prefectureCode: string, purpose: CertificateType, generation = 1): string {
  if (!Number.isInteger(generation) || generation < 1) throw new JpkiError("ERR_USAGE", `a CA key generation is a whole number from 1, not ${generation}`);
  return `${prefecture(prefectureCode).code}-${PURPOSE_SUFFIX[purpose]}${generation > 1 ? `-g${generation}` : ""}`;
}

/** Parses "13-sig" / "13-auth" / "13" (signature) / "13-sig-g2" into its parts. */
export function parseCaId(id: string): { prefectureCode: string; purpose: CertificateType; generation: number } {
  const m = /^(\d{1,2})(?:-(sig|auth|signature|authentication))?(?:-g([2-9]|[1-9]\d{1,3}))?$/.exec(id.trim());
  if (!m || (m[3] !== undefined && m[2] === undefined)) throw new JpkiError("ERR_CA_UNKNOWN", `${JSON.stringify(id)} is not a CA id: use e.g. 13-sig, 13-auth or 13-sig-g2`);
  const purpose: CertificateType = m[2] === "auth" || m[2] === "authentication" ? "authentication" : "signature";
  return { prefectureCode: prefecture(m[1]!).code, purpose, generation: m[3] === undefined ? 1 : Number(m[3]) };
}

/** The key generation of a CA id (1 for "13-sig", 2 for "13-sig-g2"). */
export function caGeneration(id: string): number {
  return parseCaId(id).generation;
}

/**
 * The active generation among CA records: for each prefecture and purpose, the highest generation issues new
 * certificates; the lower ones are retired (they still sign CRLs and OCSP answers for what they issued).
 */
export function activeGeneration<T extends { readonly id: string; readonly prefectureCode: string; readonly purpose: CertificateType }>(
  records: readonly T[],
  prefectureCode: string,
  purpose: CertificateType,
): T | undefined {
  let best: T | undefined;
  for (const r of records) {
    if (r.prefectureCode !== prefectureCode || r.purpose !== purpose) continue;
    if (!best || caGeneration(r.id) > caGeneration(best.id)) best = r;
  }
  return best;
}

/** Whether a CA record has been succeeded by a later key generation. */
export function isRetired(records: ReadonlyArray<{ readonly id: string; readonly prefectureCode: string; readonly purpose: CertificateType }>, id: string): boolean {
  const { prefectureCode, purpose, generation } = parseCaId(id);
  return records.some((r) => r.prefectureCode === prefectureCode && r.purpose === purpose && caGeneration(r.id) > generation);
}

/**
 * The first generation from `from` on whose id `taken` does not claim, with the ids passed over and why: the one
 * rule by which a new CA id is chosen (ca/free-ids.ts says what claims an id).
 */
export function nextFreeGeneration(
  prefectureCode: string,
  purpose: CertificateType,
  from: number,
  taken: (id: string) => string | undefined,
): { readonly generation: number; readonly id: string; readonly passedOver: ReadonlyArray<{ readonly id: string; readonly reason: string }> } {
  const passedOver: Array<{ id: string; reason: string }> = [];
  for (let generation = from; ; generation++) {
    const id = caId(prefectureCode, purpose, generation);
    const reason = taken(id);
    if (reason === undefined) return { generation, id, passedOver };
    passedOver.push({ id, reason });
  }
}

/** The URLs a CA's certificates name (CA certificate, CRLs, ARL), under the workspace's baseUrl. */
export interface CaUrls {
  readonly caCertificate: string;
  readonly crl: string;
  /** the delta CRL of the full CRL (crl/delta.ts), named by freshestCRL in certificates and full CRLs */
  readonly delta: string;
  readonly arl: string;
  /** the OCSP responder (RFC 6960), named in end-entity certificates' authorityInfoAccess */
  readonly ocsp: string;
  partition(municipalityCode: string): string;
}

export function caUrls(baseUrl: string, id: string): CaUrls {
  return {
    caCertificate: `${baseUrl}/ca/${id}.crt`,
    crl: `${baseUrl}/crl/${id}.crl`,
    delta: `${baseUrl}/crl/${id}-delta.crl`,
    arl: `${baseUrl}/arl/${id}.crl`,
    ocsp: `${baseUrl}/ocsp/${id}`,
    partition: (m) => `${baseUrl}/crl/${id}/${m}.crl`,
  };
}

/**
 * The CA id a URL of {@link caUrls} names, whatever the base URL, or undefined: its inverse. A CA's generations
 * share one subject name, so what says which generation a certificate belongs to is the URLs it names: a CA
 * certificate its ARL (cRLDistributionPoints, ca/authority.ts createCaRecord). Only the id as caId spells it.
 */
export function caIdOfUrl(url: string, which: "caCertificate" | "crl" | "arl" | "ocsp"): string | undefined {
  // Each of these URLs ends in the id, with or without an extension; caUrls then decides whether it is the one named.
  const file = url.slice(url.lastIndexOf("/") + 1);
  const stem = file.includes(".") ? file.slice(0, file.lastIndexOf(".")) : file;
  let id: string;
  try {
    const p = parseCaId(stem);
    id = caId(p.prefectureCode, p.purpose, p.generation);
  } catch {
    return undefined;
  }
  return id === stem && url.endsWith(caUrls("", id)[which]) ? id : undefined;
}
