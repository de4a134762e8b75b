/** CA ids: a prefecture code and a purpose, "13-sig" / "13-auth". Light: no key or certificate code. */
import { JpkiError } from "../errors.js";
import type { CertificateType } from "../profile/types.js";
import { prefecture } from "./prefectures.js";

export const PURPOSE_SUFFIX: Record<CertificateType, string> = { signature: "sig", authentication: "auth" };

export function caId(prefectureCode: string, purpose: CertificateType): string {
  return `${prefecture(prefectureCode).code}-${PURPOSE_SUFFIX[purpose]}`;
}

/** Parses "13-sig" / "13-auth" / "13" (signature) into its parts. */
export function parseCaId(id: string): { prefectureCode: string; purpose: CertificateType } {
  const m = /^(\d{1,2})(?:-(sig|auth|signature|authentication))?$/.exec(id.trim());
  if (!m) throw new JpkiError("ERR_CA_UNKNOWN", `${JSON.stringify(id)} is not a CA id: use e.g. 13-sig or 13-auth`);
  const purpose: CertificateType = m[2] === "auth" || m[2] === "authentication" ? "authentication" : "signature";
  return { prefectureCode: prefecture(m[1]!).code, purpose };
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
