/**
 * Plain, JSON-serialisable descriptions of certificates and CRLs for `jpki inspect` (RFC 5280 §4, §5;
 * shared/spec/JPKI.md for the JPKI-specific extensions), each carrying its profile report from check.ts.
 * The four basic items are decoded into readable Japanese: inspect is the one place meant to show them
 * to the operator who holds the certificate, so they appear here and nowhere in errors or logs.
 */
import { createHash } from "node:crypto";
import {
  asn1x509,
  asnConvert,
  type DisplayText,
  type DistributionPointName,
  type Extension,
  type GeneralName,
} from "./asn1.js";
import { JpkiError } from "../errors.js";
import { readHeader, TAG } from "../pki/der.js";
import { looksLikePem, parsePemBlocks } from "../pki/pem.js";
import { checkCertificate, checkCrl, type CrlProfileReport, type ProfileReport } from "./check.js";
import { crlBytesSource, CrlReader, crlFileSource, type CrlEntryDescription, type CrlSource } from "./crl-reader.js";
import { KEY_USAGE_BIT } from "./extensions.js";
import { eraName, GENDER_LABEL_JA, type EraCode } from "./four-items.js";
import { AIA_OID, EXT_OID, FOUR_ITEMS_OID, POLICY_OID } from "./oids.js";
import { decodeFourItemsSan } from "./san.js";
import type { Gender } from "./types.js";
import {
  ALG_NAME,
  EXT_NAME,
  expectSingleSequence,
  extValue,
  extValueOf,
  integerHex,
  integerTlv,
  namedBitsOf,
  nameText,
  parseCertificate,
  parseCrl,
  parseExt,
  readName,
  rsaKey,
  timeInfo,
  userNoticeOf,
  type RdnValue,
} from "./x509-reader.js";

export interface AlgorithmDescription {
  readonly name: string;
  readonly oid: string;
}

export interface NameDescription {
  readonly rdns: ReadonlyArray<{ readonly type: string; readonly value: string }>;
  /** one line, DER order: "C=JP, O=JPKI, …" */
  readonly text: string;
}

export type GeneralNameDescription =
  | { readonly type: "directoryName"; readonly value: string; readonly rdns: NameDescription["rdns"] }
  | { readonly type: "otherName"; readonly oid: string; readonly label?: string; readonly value?: string }
  | { readonly type: "uri" | "dns" | "email" | "ip" | "registeredID"; readonly value: string }
  | { readonly type: "other"; readonly value: string };

/** The four basic items in readable form (基本4情報). */
export interface FourItemsDescription {
  /** 氏名 */
  readonly name?: string;
  readonly nameSubstituteFlags?: string;
  /** 性別 */
  readonly gender?: Gender;
  readonly genderLabel?: string;
  /** 生年月日 (ISO, Gregorian) */
  readonly birthDate?: string;
  readonly era?: EraCode;
  readonly eraName?: string;
  /** 住所 */
  readonly address?: string;
  readonly addressSubstituteFlags?: string;
  readonly flagsMatch: { readonly name: boolean; readonly address: boolean };
  readonly wellFormed: boolean;
}

export interface ExtensionDescription {
  readonly oid: string;
  readonly name: string;
  readonly critical: boolean;
  /** decoded value where we know the extension; absent otherwise */
  readonly value?: unknown;
  /** hex of extnValue when the extension is unknown or does not decode */
  readonly der?: string;
  readonly error?: string;
}

export interface CertificateDescription {
  readonly type: "certificate";
  readonly version: number;
  readonly serialNumber: string;
  readonly signatureAlgorithm: AlgorithmDescription;
  readonly issuer: NameDescription;
  readonly subject: NameDescription;
  readonly validity: { readonly notBefore: string; readonly notAfter: string };
  readonly publicKey: AlgorithmDescription & { readonly bits?: number; readonly exponent?: number | string };
  readonly extensions: readonly ExtensionDescription[];
  /** the four items when the subjectAltName carries them */
  readonly fourItems?: FourItemsDescription;
  readonly fingerprints: { readonly sha256: string };
  readonly profile: ProfileReport;
}

export type { CrlEntryDescription, CrlSource } from "./crl-reader.js";
export { crlBytesSource, crlFileSource } from "./crl-reader.js";

export interface CrlDescription {
  readonly type: "crl";
  readonly version: number;
  readonly signatureAlgorithm: AlgorithmDescription;
  readonly issuer: NameDescription;
  readonly thisUpdate: string;
  readonly nextUpdate?: string;
  readonly crlNumber?: string;
  readonly deltaCrlIndicator?: string;
  readonly authorityKeyIdentifier?: string;
  readonly issuingDistributionPoint?: unknown;
  readonly extensions: readonly ExtensionDescription[];
  readonly entryCount: number;
  readonly entries: readonly CrlEntryDescription[];
  /** true when `maxEntries` cut the list short */
  readonly entriesTruncated: boolean;
  readonly fingerprints: { readonly sha256: string };
  readonly profile: CrlProfileReport;
}

const FOUR_ITEMS_LABEL: Readonly<Record<string, string>> = Object.freeze({
  [FOUR_ITEMS_OID.name]: "氏名 name",
  [FOUR_ITEMS_OID.nameSubstituteFlags]: "氏名代替文字フラグ name substitute flags",
  [FOUR_ITEMS_OID.gender]: "性別 gender",
  [FOUR_ITEMS_OID.birthDate]: "生年月日 birth date",
  [FOUR_ITEMS_OID.address]: "住所 address",
  [FOUR_ITEMS_OID.addressSubstituteFlags]: "住所代替文字フラグ address substitute flags",
});

const POLICY_LABEL: Readonly<Record<string, string>> = Object.freeze({
  [POLICY_OID.signature]: "JPKI signature certificate (署名用電子証明書)",
  [POLICY_OID.signatureTest]: "JPKI signature certificate, J-LIS test environment",
  [POLICY_OID.authentication]: "JPKI user-authentication certificate (利用者証明用電子証明書)",
});

const hex = (b: ArrayBuffer | Uint8Array): string => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("hex");
const alg = (oid: string): AlgorithmDescription => ({ name: ALG_NAME[oid] ?? oid, oid });

function describeName(rdns: readonly RdnValue[]): NameDescription {
  return { rdns: rdns.map((r) => ({ type: r.type, value: r.value })), text: nameText(rdns) };
}

function describeGeneralName(g: GeneralName): GeneralNameDescription {
  if (g.directoryName) {
    const n = describeName(readName(g.directoryName));
    return { type: "directoryName", value: n.text, rdns: n.rdns };
  }
  if (g.otherName) {
    const label = FOUR_ITEMS_LABEL[g.otherName.typeId];
    const v = utf8Of(new Uint8Array(g.otherName.value));
    return { type: "otherName", oid: g.otherName.typeId, ...(label ? { label } : {}), ...(v !== undefined ? { value: v } : {}) };
  }
  if (g.uniformResourceIdentifier !== undefined) return { type: "uri", value: g.uniformResourceIdentifier };
  if (g.dNSName !== undefined) return { type: "dns", value: g.dNSName };
  if (g.rfc822Name !== undefined) return { type: "email", value: g.rfc822Name };
  if (g.iPAddress !== undefined) return { type: "ip", value: g.iPAddress };
  if (g.registeredID !== undefined) return { type: "registeredID", value: g.registeredID };
  return { type: "other", value: hex(asnConvert().serialize(g)) };
}

function utf8Of(tlv: Uint8Array): string | undefined {
  try {
    const h = readHeader(tlv, 0);
    if (h.tag !== TAG.UTF8_STRING) return undefined;
    return Buffer.from(tlv.subarray(h.headerLength, h.headerLength + h.length)).toString("utf8");
  } catch {
    return undefined;
  }
}

function describeDpName(dp: DistributionPointName | undefined): unknown {
  if (!dp) return undefined;
  if (dp.fullName) return { fullName: dp.fullName.map(describeGeneralName) };
  if (dp.nameRelativeToCRLIssuer) return { nameRelativeToCRLIssuer: dp.nameRelativeToCRLIssuer.map((a) => ({ type: a.type, value: a.value.toString() })) };
  return undefined;
}

function displayText(d: DisplayText | undefined): string | undefined {
  return d ? (d.utf8String ?? d.ia5String ?? d.visibleString ?? d.bmpString) : undefined;
}

/** Decodes one extension's value for display; throws (caught by the caller) when it does not decode. */
function decodeExtension(ext: Extension): unknown {
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("does not decode");
    return v;
  };
  switch (ext.extnID) {
    case EXT_OID.keyUsage: {
      const bits = need(namedBitsOf(extValue(ext)));
      return bits.map((b) => (Object.keys(KEY_USAGE_BIT) as (keyof typeof KEY_USAGE_BIT)[]).find((n) => KEY_USAGE_BIT[n] === b) ?? (b === 7 ? "encipherOnly" : b === 8 ? "decipherOnly" : `bit${b}`));
    }
    case EXT_OID.basicConstraints: {
      const bc = need(extValueOf.basicConstraints(ext));
      return { ca: bc.cA, ...(bc.pathLenConstraint !== undefined ? { pathLength: bc.pathLenConstraint } : {}) };
    }
    case EXT_OID.subjectAltName:
    case EXT_OID.issuerAltName:
    case EXT_OID.certificateIssuer:
      return need(extValueOf.generalNames(ext)).map(describeGeneralName);
    case EXT_OID.certificatePolicies:
      return need(extValueOf.certificatePolicies(ext)).map((pi) => {
        const cps: string[] = [];
        const notices: string[] = [];
        for (const q of pi.policyQualifiers ?? []) {
          if (q.policyQualifierId === AIA_OID.cpsQualifier) {
            const t = new Uint8Array(q.qualifier);
            const h = readHeader(t, 0);
            cps.push(Buffer.from(t.subarray(h.headerLength, h.headerLength + h.length)).toString("latin1"));
          } else {
            const un = userNoticeOf(q.qualifier);
            const text = displayText(un.explicitText);
            if (text) notices.push(text);
          }
        }
        return {
          oid: pi.policyIdentifier,
          ...(POLICY_LABEL[pi.policyIdentifier] ? { name: POLICY_LABEL[pi.policyIdentifier] } : {}),
          cps,
          ...(notices.length ? { userNotice: notices } : {}),
        };
      });
    case EXT_OID.cRLDistributionPoints:
      return need(extValueOf.crlDistributionPoints(ext)).map((dp) => ({
        ...(dp.distributionPoint ? { distributionPoint: describeDpName(dp.distributionPoint) } : {}),
        ...(dp.reasons ? { reasons: dp.reasons.toJSON() } : {}),
        ...(dp.cRLIssuer ? { crlIssuer: dp.cRLIssuer.map(describeGeneralName) } : {}),
      }));
    case EXT_OID.authorityInfoAccess:
      return need(extValueOf.authorityInfoAccess(ext)).map((ad) => ({
        method: ad.accessMethod === AIA_OID.ocsp ? "ocsp" : ad.accessMethod === AIA_OID.caIssuers ? "caIssuers" : ad.accessMethod,
        location: describeGeneralName(ad.accessLocation),
      }));
    case EXT_OID.subjectKeyIdentifier:
      return hex(need(extValueOf.subjectKeyIdentifier(ext)).buffer);
    case EXT_OID.authorityKeyIdentifier: {
      const aki = need(extValueOf.authorityKeyIdentifier(ext));
      return {
        ...(aki.keyIdentifier ? { keyIdentifier: hex(aki.keyIdentifier.buffer) } : {}),
        ...(aki.authorityCertIssuer ? { authorityCertIssuer: aki.authorityCertIssuer.map(describeGeneralName) } : {}),
        ...(aki.authorityCertSerialNumber ? { authorityCertSerialNumber: integerHex(aki.authorityCertSerialNumber) } : {}),
      };
    }
    case EXT_OID.extKeyUsage:
      return [...need(extValueOf.extKeyUsage(ext))];
    case EXT_OID.cRLNumber:
    case EXT_OID.deltaCRLIndicator:
      return need(integerTlv(extValue(ext))).value.toString();
    case EXT_OID.issuingDistributionPoint: {
      const idp = need(parseExt(ext, asn1x509().IssuingDistributionPoint));
      return {
        ...(idp.distributionPoint ? { distributionPoint: describeDpName(idp.distributionPoint) } : {}),
        onlyContainsUserCerts: idp.onlyContainsUserCerts,
        onlyContainsCACerts: idp.onlyContainsCACerts,
        indirectCRL: idp.indirectCRL,
        onlyContainsAttributeCerts: idp.onlyContainsAttributeCerts,
        ...(idp.onlySomeReasons ? { onlySomeReasons: idp.onlySomeReasons.toJSON() } : {}),
      };
    }
    default:
      return undefined;
  }
}

function describeExtensions(exts: readonly Extension[] | undefined): ExtensionDescription[] {
  return (exts ?? []).map((ext) => {
    const base = { oid: ext.extnID, name: EXT_NAME[ext.extnID] ?? ext.extnID, critical: ext.critical };
    try {
      const value = decodeExtension(ext);
      return value === undefined ? { ...base, der: hex(extValue(ext)) } : { ...base, value };
    } catch {
      return { ...base, der: hex(extValue(ext)), error: "the extension value does not decode" };
    }
  });
}

function fourItemsOf(exts: readonly Extension[] | undefined): FourItemsDescription | undefined {
  const san = (exts ?? []).find((e) => e.extnID === EXT_OID.subjectAltName);
  if (!san) return undefined;
  let d;
  try {
    d = decodeFourItemsSan(extValue(san));
  } catch {
    return undefined;
  }
  if (!d) return undefined;
  return {
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.nameSubstituteFlags !== undefined ? { nameSubstituteFlags: d.nameSubstituteFlags } : {}),
    ...(d.gender ? { gender: d.gender, genderLabel: GENDER_LABEL_JA[d.gender] } : {}),
    ...(d.birthDate ? { birthDate: d.birthDate } : {}),
    ...(d.era !== undefined ? { era: d.era, eraName: eraName(d.era) } : {}),
    ...(d.address !== undefined ? { address: d.address } : {}),
    ...(d.addressSubstituteFlags !== undefined ? { addressSubstituteFlags: d.addressSubstituteFlags } : {}),
    flagsMatch: d.flagsMatch,
    wellFormed: d.wellFormed,
  };
}

/** Describes a certificate (DER). Throws ERR_DER_MALFORMED when it does not decode. */
export function describeCertificate(der: Uint8Array): CertificateDescription {
  const cert = parseCertificate(der);
  const tbs = cert.tbsCertificate;
  const spki = tbs.subjectPublicKeyInfo;
  const rsa = rsaKey(spki.subjectPublicKey);
  const fourItems = fourItemsOf(tbs.extensions);
  return {
    type: "certificate",
    version: tbs.version + 1,
    serialNumber: integerHex(tbs.serialNumber),
    signatureAlgorithm: alg(cert.signatureAlgorithm.algorithm),
    issuer: describeName(readName(tbs.issuer)),
    subject: describeName(readName(tbs.subject)),
    validity: { notBefore: timeInfo(tbs.validity.notBefore).date.toISOString(), notAfter: timeInfo(tbs.validity.notAfter).date.toISOString() },
    publicKey: { ...alg(spki.algorithm.algorithm), ...(rsa ? { bits: rsa.bits, exponent: rsa.exponent } : {}) },
    extensions: describeExtensions(tbs.extensions),
    ...(fourItems ? { fourItems } : {}),
    fingerprints: { sha256: createHash("sha256").update(der).digest("hex") },
    profile: checkCertificate(der),
  };
}

/** A CRL's description without what needs its entries: every field before and after them. */
export type CrlHeaderDescription = Omit<CrlDescription, "entryCount" | "entries" | "entriesTruncated" | "fingerprints" | "profile">;

/** What a CRL's description needs every entry for, known once they have all been read. */
export interface CrlTotals {
  readonly entryCount: number;
  /** entries per reason name; "none" counts those without a reasonCode */
  readonly reasonCounts: Readonly<Record<string, number>>;
  readonly fingerprints: { readonly sha256: string };
  readonly profile: CrlProfileReport;
}

/**
 * A CRL being read (crl-reader.ts): its header described on opening, then its entries one at a time, then the
 * totals. Memory stays that of one block of entries whatever the CRL's size; `close` releases the file.
 */
export interface CrlStream {
  readonly header: CrlHeaderDescription;
  /** once; throws ERR_DER_MALFORMED at the first malformed entry */
  entries(): Iterable<CrlEntryDescription>;
  /** after the entries (reads them if nobody has) */
  totals(): CrlTotals;
  /** the entry count alone, from the entries' headers (a cheap second read, for a listing headed by the count) */
  countEntries(): number;
  close(): void;
}

/** Describes the skeleton (the CRL without its entries) and checks its profile outside the entries. */
function describeCrlFrame(skeleton: Buffer): { header: CrlHeaderDescription; profile: CrlProfileReport } {
  const crl = parseCrl(skeleton);
  const tbs = crl.tbsCertList;
  const exts = describeExtensions(tbs.crlExtensions);
  const extVal = (oid: string) => exts.find((e) => e.oid === oid)?.value;
  const aki = extVal(EXT_OID.authorityKeyIdentifier) as { keyIdentifier?: string } | undefined;
  const num = extVal(EXT_OID.cRLNumber);
  const delta = extVal(EXT_OID.deltaCRLIndicator);
  const idp = extVal(EXT_OID.issuingDistributionPoint);
  const header: CrlHeaderDescription = {
    type: "crl",
    version: (tbs.version ?? 0) + 1,
    signatureAlgorithm: alg(crl.signatureAlgorithm.algorithm),
    issuer: describeName(readName(tbs.issuer)),
    thisUpdate: timeInfo(tbs.thisUpdate).date.toISOString(),
    ...(tbs.nextUpdate ? { nextUpdate: timeInfo(tbs.nextUpdate).date.toISOString() } : {}),
    ...(typeof num === "string" ? { crlNumber: num } : {}),
    ...(typeof delta === "string" ? { deltaCrlIndicator: delta } : {}),
    ...(aki?.keyIdentifier ? { authorityKeyIdentifier: aki.keyIdentifier } : {}),
    ...(idp !== undefined ? { issuingDistributionPoint: idp } : {}),
    extensions: exts,
  };
  return { header, profile: checkCrl(skeleton) };
}

/**
 * Opens a CRL (DER) from a file or bytes for reading in one pass: `crlFileSource(path, what)` or `crlBytesSource(der)`.
 * Throws ERR_DER_MALFORMED when the frame is not a DER CertificateList; the source is closed then.
 */
export function openCrl(source: CrlSource): CrlStream {
  const reader = CrlReader.open(source);
  let frame: { header: CrlHeaderDescription; profile: CrlProfileReport };
  try {
    frame = describeCrlFrame(reader.skeleton);
  } catch (e) {
    reader.close();
    throw e;
  }
  let totals: CrlTotals | undefined;
  return {
    header: frame.header,
    entries: () => reader.entries(),
    totals: () => {
      if (!totals) {
        const t = reader.totals();
        totals = Object.freeze({
          entryCount: t.entryCount,
          reasonCounts: t.reasonCounts,
          fingerprints: { sha256: t.sha256 },
          // the entry rules report after the rest, as checkCrl orders them
          profile: Object.freeze({ kind: frame.profile.kind, violations: Object.freeze([...frame.profile.violations, ...t.entryViolations]) }),
        });
      }
      return totals;
    },
    countEntries: () => reader.countEntries(),
    close: () => reader.close(),
  };
}

/** Describes a CRL (DER); `maxEntries` bounds the listed entries (the count is always complete). */
export function describeCrl(der: Uint8Array, opts: { maxEntries?: number } = {}): CrlDescription {
  const crl = openCrl(crlBytesSource(der));
  const max = Math.max(0, opts.maxEntries ?? Infinity);
  const entries: CrlEntryDescription[] = [];
  for (const e of crl.entries()) if (entries.length < max) entries.push(e);
  const t = crl.totals();
  return {
    ...crl.header,
    entryCount: t.entryCount,
    entries,
    entriesTruncated: entries.length < t.entryCount,
    fingerprints: t.fingerprints,
    profile: t.profile,
  };
}

/** What `jpki inspect` reads: a certificate whole, a CRL as a stream. */
export type Inspectable = { readonly kind: "certificate"; readonly der: Buffer } | { readonly kind: "crl"; readonly crl: CrlStream };

/** Bytes of a file's start that tell a DER certificate from a DER CRL (the first five TBS fields). */
const SNIFF_BYTES = 64 * 1024;

/** The largest file read whole: a PEM file (decoded as text), a DER certificate. */
const MAX_WHOLE_BYTES = 256 * 2 ** 20;

/**
 * Opens a certificate or CRL file (PEM or DER) for inspection. A DER CRL is read from the file in pieces as its
 * entries are iterated, so its size does not matter; PEM and certificates are read whole. `what` names the file
 * in errors ("input file x.crl"): ERR_FILE_UNUSABLE when it cannot be read, ERR_DER_MALFORMED when it is neither.
 */
export function openForInspection(path: string, what: string): Inspectable {
  const source = crlFileSource(path, what);
  let bytes: Buffer;
  try {
    const head = source.read(0, Math.min(source.size, SNIFF_BYTES));
    if (looksLikePem(head)) {
      // Decoded as one string: refused here rather than by a string-length Error (512 Mi characters) after
      // reading it all. A CRL that large is read as a stream once it is DER.
      if (source.size > MAX_WHOLE_BYTES) {
        throw new JpkiError("ERR_FILE_UNUSABLE", `${what}: a PEM file of ${source.size} bytes is more than the ${MAX_WHOLE_BYTES} read as text; convert it to DER (openssl crl -outform DER), which is read in pieces`);
      }
    } else {
      if (structuralKind(head) === "crl") return { kind: "crl", crl: openCrl(source) };
      // Anything else but PEM is one DER certificate, read whole: its first bytes must say so and give the
      // file's length, or gigabytes of zeros are read (and held) only to learn they do not start a SEQUENCE.
      expectSingleSequence(head, "input", source.size);
      if (source.size > MAX_WHOLE_BYTES) throw new JpkiError("ERR_DER_MALFORMED", `${what}: ${source.size} bytes is not a certificate`);
    }
    bytes = head.length === source.size ? head : source.read(0, source.size);
  } catch (e) {
    source.close();
    throw e;
  }
  source.close();
  const { kind, der } = decodeInput(bytes);
  if (kind === "crl") return { kind, crl: openCrl(crlBytesSource(der)) };
  parseCertificate(der);
  return { kind, der };
}

/**
 * Accepts PEM (CERTIFICATE or X509 CRL) or DER and tells a certificate from a CRL by structure, not by
 * label: TBSCertificate has a Validity SEQUENCE after the issuer Name, TBSCertList a Time (RFC 5280 §4.1,
 * §5.1). Throws ERR_DER_MALFORMED for anything else.
 */
export function detectAndDecode(input: Uint8Array): { kind: "certificate" | "crl"; der: Buffer } {
  const { kind, der } = decodeInput(input);
  // Decode fully once so the caller learns about a malformed object here, not later.
  if (kind === "certificate") parseCertificate(der);
  else openCrl(crlBytesSource(der)).totals();
  return { kind, der };
}

/** PEM or DER in, one DER SEQUENCE out, told apart by structure (not decoded further). */
function decodeInput(input: Uint8Array): { kind: "certificate" | "crl"; der: Buffer } {
  let der: Buffer;
  if (looksLikePem(input)) {
    const block = parsePemBlocks(Buffer.from(input).toString("utf8")).find((b) => b.label === "CERTIFICATE" || b.label === "X509 CRL");
    if (!block) throw new JpkiError("ERR_DER_MALFORMED", "no PEM block labelled CERTIFICATE or X509 CRL in the input");
    der = block.der;
  } else {
    der = Buffer.from(input);
  }
  expectSingleSequence(der, "input");
  const kind = structuralKind(der);
  if (!kind) throw new JpkiError("ERR_DER_MALFORMED", "the DER is neither an X.509 certificate nor a CRL");
  return { kind, der };
}

function structuralKind(der: Uint8Array): "certificate" | "crl" | undefined {
  try {
    const outer = readHeader(der, 0);
    const tbs = readHeader(der, outer.headerLength);
    if (tbs.tag !== TAG.SEQUENCE) return undefined;
    const end = outer.headerLength + tbs.headerLength + tbs.length;
    const tags: number[] = [];
    let off = outer.headerLength + tbs.headerLength;
    while (off < end && tags.length < 5) {
      const h = readHeader(der, off);
      tags.push(h.tag);
      off += h.headerLength + h.length;
    }
    // Skip the optional version ([0] in a certificate, INTEGER in a CRL) and, for certificates, the serial.
    let i = 0;
    if (tags[i] === 0xa0) i++;
    if (tags[i] === TAG.INTEGER) i++;
    // now: signature AlgorithmIdentifier, issuer Name, then Validity (SEQUENCE) or thisUpdate (Time)
    if (tags[i] !== TAG.SEQUENCE || tags[i + 1] !== TAG.SEQUENCE) return undefined;
    const next = tags[i + 2];
    if (next === TAG.SEQUENCE) return "certificate";
    if (next === TAG.UTC_TIME || next === TAG.GENERALIZED_TIME) return "crl";
    return undefined;
  } catch {
    return undefined;
  }
}
