/**
 * CRL scopes, RFC 5280 §5.2.5 (issuingDistributionPoint) and §5.2.3 (CRL number): what each CRL a CA
 * publishes covers, where it goes, and the issuingDistributionPoint that says so.
 *
 * - full (scope ""): every revoked end-entity certificate of the CA, no IDP, at `crl/<ca>.crl`;
 * - municipality partition (scope = the 6-digit local government code): exactly the revoked certificates
 *   whose cRLDistributionPoints names that partition (shared/spec/JPKI.md: CRLs are partitioned by
 *   municipality), at `crl/<ca>/<municipality>.crl`, the path the certificates' URI names. Its IDP is critical
 *   and its distributionPoint is DER-equal to the certificates' (the directoryName
 *   C=JP, O=JPKI, OU=<purpose>, OU=CRL Distribution Points, OU=<prefecture>, CN=<municipality>, then the URI,
 *   both as ca/authority.ts puts them in certificates, from the same functions), with onlyContainsUserCerts;
 * - ARL (scope "arl"): revoked CA and cross-certificates (none exist yet: it is empty, but numbered and
 *   refreshed like the others), at `arl/<ca>.crl`, where the CA certificate's cRLDistributionPoints points;
 *   its critical IDP carries that distribution point as the CA certificate has it, with onlyContainsCACerts;
 * - delta (scope "delta"): the delta CRL of the full CRL (crl/delta.ts), at `crl/<ca>-delta.crl`, no IDP (its
 *   base has none), a critical deltaCRLIndicator naming its base. With deltas on, the full CRL carries
 *   freshestCRL naming it (but a done retired generation's, which no delta follows: crl/delta.ts).
 *
 * Numbering: one CRL number sequence per CA, shared by all its scopes (the store reserves numbers under the
 * CA's crl_state lock). RFC 5280 §5.2.3 asks for numbers that increase monotonically for a given scope and
 * issuer; a shared sequence gives that to every scope at once (a scope's numbers skip those the others
 * took, which the RFC allows), can never hand one number to two CRLs of a CA, and is the single sequence a
 * complete CRL and its deltas must share (§5.2.4) whatever scope a delta comes to cover. A number is burned
 * by a crash (never reused), and a scope's file only ever moves to a higher number (publishCrl compares
 * within the scope).
 *
 * A partition's distributionPoint is rebuilt from the workspace's current baseUrl: certificates issued under
 * another baseUrl name another URI, and a verifier matching IDPs (OpenSSL) then finds no CRL for them
 * ("unable to get certificate CRL"), never a wrong "good".
 */
import { join } from "node:path";
import { caUrls } from "../ca/ids.js";
import { prefecture } from "../ca/prefectures.js";
import { JpkiError } from "../errors.js";
import { children, extension, headerLengthAt, oid, seq } from "../pki/der.js";
import { crlDistributionPoints } from "../profile/extensions.js";
import { crlPartitionName, encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import type { CertificateType } from "../profile/types.js";
import { municipality } from "../registry/municipality.js";
import { ARL_SCOPE, DELTA_SCOPE, FULL_SCOPE, type CrlScope } from "../store/types.js";
import { deltaCrlIndicator, freshestCrl } from "./delta.js";

export type ScopeKind = "full" | "partition" | "arl" | "delta";

export function scopeKind(scope: CrlScope): ScopeKind {
  if (scope === FULL_SCOPE) return "full";
  if (scope === ARL_SCOPE) return "arl";
  if (scope === DELTA_SCOPE) return "delta";
  if (/^\d{6}$/.test(scope)) return "partition";
  throw new JpkiError("ERR_INTERNAL", `unknown CRL scope ${JSON.stringify(scope)}`);
}

/** What a CA's CRLs need to know of the CA for their scopes. */
export interface ScopeIssuer {
  readonly id: string;
  readonly prefectureCode: string;
  readonly purpose: CertificateType;
  readonly certificateDer: Buffer;
}

/** The file a scope's current CRL is published as, under the workspace root. */
export function scopePath(root: string, caId: string, scope: CrlScope): string {
  switch (scopeKind(scope)) {
    case "full":
      return join(root, "crl", `${caId}.crl`);
    case "partition":
      return join(root, "crl", caId, `${scope}.crl`);
    case "arl":
      return join(root, "arl", `${caId}.crl`);
    case "delta":
      return join(root, "crl", `${caId}-delta.crl`);
  }
}

/** Workspace-relative URL path of a scope's CRL (as the certificates name it, after the baseUrl). */
export function scopeUrlPath(caId: string, scope: CrlScope): string {
  switch (scopeKind(scope)) {
    case "full":
      return `/crl/${caId}.crl`;
    case "partition":
      return `/crl/${caId}/${scope}.crl`;
    case "arl":
      return `/arl/${caId}.crl`;
    case "delta":
      return `/crl/${caId}-delta.crl`;
  }
}

const TRUE_1 = Buffer.from([0x81, 0x01, 0xff]); // onlyContainsUserCerts [1] IMPLICIT BOOLEAN TRUE
const TRUE_2 = Buffer.from([0x82, 0x01, 0xff]); // onlyContainsCACerts [2] IMPLICIT BOOLEAN TRUE

/** The distributionPoint [0] element of the first DistributionPoint of a cRLDistributionPoints value. */
function firstDistributionPointName(cdpValue: Buffer): Buffer {
  const [dp] = children(cdpValue);
  const name = dp ? children(dp).find((c) => c[0] === 0xa0) : undefined;
  if (!name) throw new JpkiError("ERR_CA_INVALID", "the CA certificate's cRLDistributionPoints has no distributionPoint name");
  return name;
}

/**
 * The extensions of a scope's CRLs beyond number and AKI: the critical issuingDistributionPoint
 * (IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0], onlyContainsUserCerts [1], onlyContainsCACerts [2], … })
 * of a partition or the ARL; for the full CRL, freshestCRL when `deltas` (the delta CRLs are published); for a
 * delta, the critical deltaCRLIndicator naming `baseNumber`.
 */
export function scopeExtensions(ca: ScopeIssuer, scope: CrlScope, baseUrl: string, opts: { readonly deltas?: boolean; readonly baseNumber?: bigint } = {}): Buffer[] {
  switch (scopeKind(scope)) {
    case "full":
      return opts.deltas ? [freshestCrl(caUrls(baseUrl, ca.id).delta)] : [];
    case "delta":
      if (opts.baseNumber === undefined) throw new JpkiError("ERR_INTERNAL", "a delta CRL needs its base CRL number");
      return [deltaCrlIndicator(opts.baseNumber)];
    case "partition": {
      const pref = prefecture(ca.prefectureCode);
      const cdp = crlDistributionPoints(encodeName(crlPartitionName(pref.romaji, municipality(scope).romaji, ca.purpose)), [caUrls(baseUrl, ca.id).partition(scope)]);
      return [extension(EXT_OID.issuingDistributionPoint, true, seq(firstDistributionPointName(cdp), TRUE_1))];
    }
    case "arl":
      return [arlIssuingDistributionPoint(ca.id, ca.certificateDer)];
  }
}

/**
 * An ARL's critical issuingDistributionPoint: the distribution point the CA's own certificate names (where the
 * ARL lives; the certificates it issues to CAs name the same one), onlyContainsCACerts. Prefecture CAs and the
 * Bridge CA (ca/bridge.ts) alike.
 */
export function arlIssuingDistributionPoint(caId: string, certificateDer: Buffer): Buffer {
  const cdp = certificateExtension(certificateDer, EXT_OID.cRLDistributionPoints);
  if (!cdp) throw new JpkiError("ERR_CA_INVALID", `the certificate of CA ${caId} has no cRLDistributionPoints: its ARL has nowhere to go`);
  return extension(EXT_OID.issuingDistributionPoint, true, seq(firstDistributionPointName(cdp), TRUE_2));
}

/** The extnValue contents of a certificate's extension, or undefined. */
export function certificateExtension(certDer: Buffer, extOid: string): Buffer | undefined {
  const [tbs] = children(certDer);
  const exts = children(tbs!).find((c) => c[0] === 0xa3);
  if (!exts) return undefined;
  const want = oid(extOid);
  for (const e of children(children(exts)[0]!)) {
    const parts = children(e);
    if (!parts[0]!.equals(want)) continue;
    const value = parts[parts.length - 1]!;
    return contentOf(value); // extnValue OCTET STRING: its contents are the extension's DER value
  }
  return undefined;
}

/** The contents of a primitive or constructed TLV (after its header). */
function contentOf(tlv: Buffer): Buffer {
  return tlv.subarray(headerLengthAt(tlv));
}
