/**
 * Distinguished names of the JPKI profile (shared/spec/JPKI.md "CA certificates", "Signature certificate").
 * Country is a PrintableString, every other attribute a UTF8String, as in J-LIS's real roots.
 */
import { encodeTree, explicit, oid, printable, TAG, tree } from "../pki/der.js";
import { ATTR_OID } from "./oids.js";
import type { CertificateType } from "./types.js";
import { asJst } from "../pki/jst.js";

export type Rdn = readonly [type: keyof typeof ATTR_OID, value: string];

/** Name ::= SEQUENCE OF RelativeDistinguishedName, one attribute per RDN. */
export function encodeName(rdns: readonly Rdn[]): Buffer {
  return encodeTree(
    tree(
      TAG.SEQUENCE,
      ...rdns.map(([type, value]) =>
        tree(TAG.SET, tree(TAG.SEQUENCE, oid(ATTR_OID[type]), type === "countryName" ? printable(value) : tree(TAG.UTF8_STRING, value))),
      ),
    ),
  );
}

/** GeneralName directoryName is [4] EXPLICIT (Name is a CHOICE). */
export function directoryName(name: Buffer): Buffer {
  return explicit(4, name);
}

export const PURPOSE_OU: Record<CertificateType, string> = {
  signature: "JPKI for digital signature",
  authentication: "JPKI for user authentication",
};

export const PURPOSE_OU_JA: Record<CertificateType, string> = {
  signature: "公的個人認証サービス署名用",
  authentication: "公的個人認証サービス利用者証明用",
};

/** The last OU of J-LIS's own roots (2016–): C=JP, O=JPKI, OU=<purpose>, OU=Japan Agency for Local Authority Information Systems. */
export const JLIS_OU = "Japan Agency for Local Authority Information Systems";

/** The first OU of the prefectures' shared Bridge CA: C=JP, O=JPKI, OU=Prefectural Association For JPKI, OU=BridgeCA. */
export const BRIDGE_OU = "Prefectural Association For JPKI";

/**
 * The prefectures' Bridge CA (ブリッジ認証局), run by their association (都道府県協議会), which cross-certifies every
 * prefecture CA: C=JP, O=JPKI, OU=Prefectural Association For JPKI, OU=BridgeCA (shared/spec/JPKI.md).
 */
export const BRIDGE_SUBJECT: Rdn[] = [["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", BRIDGE_OU], ["organizationalUnitName", "BridgeCA"]];

/** The Bridge CA's subjectAltName dirName: C=JP, O=公的個人認証サービス, OU=都道府県協議会, OU=ブリッジ認証局. */
export const BRIDGE_SUBJECT_JA: Rdn[] = [["countryName", "JP"], ["organizationName", "公的個人認証サービス"], ["organizationalUnitName", "都道府県協議会"], ["organizationalUnitName", "ブリッジ認証局"]];

/** The prefecture CA's subject, e.g. C=JP, O=JPKI, OU=JPKI for digital signature, OU=Tokyo-to. */
export function caSubject(prefectureRomaji: string, purpose: CertificateType): Rdn[] {
  return [["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", PURPOSE_OU[purpose]], ["organizationalUnitName", prefectureRomaji]];
}

/** A CA's delegated OCSP signer: the CA's name and CN=OCSP Responder. */
export function ocspResponderSubject(prefectureRomaji: string, purpose: CertificateType): Rdn[] {
  return [...caSubject(prefectureRomaji, purpose), ["commonName", "OCSP Responder"]];
}

/** The CA's subjectAltName dirName in Japanese, e.g. C=JP, O=公的個人認証サービス, OU=…署名用, OU=東京都. */
export function caSubjectJa(prefectureKanji: string, purpose: CertificateType): Rdn[] {
  return [["countryName", "JP"], ["organizationName", "公的個人認証サービス"], ["organizationalUnitName", PURPOSE_OU_JA[purpose]], ["organizationalUnitName", prefectureKanji]];
}

/** issuerAltName of end-entity certificates: C=JP, O=公的個人認証サービス. */
export const ISSUER_ALT_NAME: Rdn[] = [["countryName", "JP"], ["organizationName", "公的個人認証サービス"]];

/** Signature certificate subject: C=JP, L=<prefecture>, L=<municipality>, CN=<opaque id>. */
export function signatureSubject(prefectureRomaji: string, municipalityRomaji: string, cn: string): Rdn[] {
  return [["countryName", "JP"], ["localityName", prefectureRomaji], ["localityName", municipalityRomaji], ["commonName", cn]];
}

/** Authentication certificate subject: C=JP, CN=<opaque id>. */
export function authenticationSubject(cn: string): Rdn[] {
  return [["countryName", "JP"], ["commonName", cn]];
}

/**
 * The CRL distribution point's directoryName: CRLs are partitioned by municipality,
 * C=JP, O=JPKI, OU=<purpose>, OU=CRL Distribution Points, OU=<prefecture>, CN=<municipality>.
 */
export function crlPartitionName(prefectureRomaji: string, municipalityRomaji: string, purpose: CertificateType): Rdn[] {
  return [["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", PURPOSE_OU[purpose]], ["organizationalUnitName", "CRL Distribution Points"], ["organizationalUnitName", prefectureRomaji], ["commonName", municipalityRomaji]];
}

/**
 * The opaque subject CN: request time (JST, YYYYMMDDhhmmss), a 5-digit sequence and a 9-character
 * counter id. It identifies the issuance, never the person.
 */
export function opaqueId(requestedAt: Date, sequence: number, counterId: string): string {
  const second = Math.floor(requestedAt.getTime() / 1000);
  if (second !== stampSecond) {
    const jst = asJst(requestedAt);
    const p = (n: number) => String(n).padStart(2, "0");
    stamp = `${jst.getUTCFullYear()}${p(jst.getUTCMonth() + 1)}${p(jst.getUTCDate())}${p(jst.getUTCHours())}${p(jst.getUTCMinutes())}${p(jst.getUTCSeconds())}`;
    stampSecond = second;
  }
  return `${stamp}${String(sequence % 100000).padStart(5, "0")}${counterId.padEnd(9, "0").slice(0, 9)}`;
}

// The last second opaqueId wrote and its YYYYMMDDhhmmss: an issuing batch names hundreds of certificates a second,
// and the timestamp's Date and its dozen small strings were ≈ 0.3 KB of garbage each (heap sampling, issue bench).
// An invalid Date's second is NaN, never equal to itself: written each time, as before.
let stampSecond = NaN;
let stamp = "";
