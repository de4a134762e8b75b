/**
 * Profile checks for JPKI certificates and CRLs (shared/spec/JPKI.md "CA certificates", "Signature
 * certificate" 署名用電子証明書, "User-authentication certificate" 利用者証明用電子証明書, "Revocation"
 * 失効; RFC 5280 §4 and §5). The CA runs them on
 * everything it signs before returning it (STYLE.md §9) and the validator on everything it reads.
 *
 * Each rule has a stable id (`sig.keyUsage.critical`): tests, the CLI and operators match on it. Messages
 * describe the deviation and never quote a four-items value. The certificate itself must decode
 * (ERR_DER_MALFORMED otherwise); an extension that does not decode is reported as a violation so the rest
 * of the report still helps.
 */
import type { GeneralNames, Extension } from "./asn1.js";
import { JpkiError } from "../errors.js";
import { readHeader, TAG } from "../pki/der.js";
import { decodeFourItemsSan, isFourItemsOid } from "./san.js";
import { ALG_OID, AIA_OID, EXT_OID, POLICY_OID } from "./oids.js";
import { KEY_USAGE_BIT } from "./extensions.js";
import {
  EXT_NAME,
  extValue,
  extValueOf,
  integerTlv,
  nameDer,
  namedBitsOf,
  parseCertificate,
  parseCrl,
  readName,
  rsaKey,
  sameNameShape,
  timeInfo,
  type RdnValue,
} from "./x509-reader.js";
import { IDEOGRAPHIC_SPACE } from "./four-items.js";

export type ProfileKind = "signature" | "authentication" | "ca" | "unknown";

export interface Violation {
  /** stable id, e.g. "sig.keyUsage.critical" */
  readonly rule: string;
  readonly severity: "error" | "warning";
  readonly message: string;
}

export interface ProfileReport {
  readonly kind: ProfileKind;
  readonly violations: readonly Violation[];
}

export interface CrlProfileReport {
  readonly kind: "crl" | "delta-crl";
  readonly violations: readonly Violation[];
}

export interface CheckOptions {
  /** Check against this profile; a certificate that looks like another kind gets `cert.kind`. */
  readonly expect?: "signature" | "authentication" | "ca";
}

/** Key usages each profile must carry exactly, with the critical flag (facts). */
const KEY_USAGE_PROFILE: Readonly<Record<Exclude<ProfileKind, "unknown">, readonly (keyof typeof KEY_USAGE_BIT)[]>> = {
  ca: ["keyCertSign", "cRLSign"],
  signature: ["digitalSignature", "nonRepudiation"],
  authentication: ["digitalSignature"],
};

const RULE_PREFIX: Readonly<Record<Exclude<ProfileKind, "unknown">, string>> = { ca: "ca", signature: "sig", authentication: "auth" };

const PURPOSE_OU = { signature: "JPKI for digital signature", authentication: "JPKI for user authentication" } as const;
const CA_OUS = new Set([PURPOSE_OU.signature, PURPOSE_OU.authentication, "Prefectural Association For JPKI"]);
const JPKI_SERVICE_JA = "公的個人認証サービス";
const ANY = /^.+$/su;

/** Collects violations; the one mutable object in this module, local to a single check. */
class Findings {
  readonly list: Violation[] = [];
  error(rule: string, message: string): void {
    this.list.push({ rule, severity: "error", message });
  }
  warn(rule: string, message: string): void {
    this.list.push({ rule, severity: "warning", message });
  }
}

/** Extensions by OID, reporting duplicates (RFC 5280 §4.2: an extension appears at most once). */
function indexExtensions(exts: readonly Extension[] | undefined, f: Findings, rulePrefix: string): Map<string, Extension> {
  const map = new Map<string, Extension>();
  // Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (§4.1, §5.1): present means one at least
  if (exts?.length === 0) f.error(`${rulePrefix}.extensions.empty`, "the extensions field is present but empty: with no extension it must be absent (SEQUENCE SIZE (1..MAX))");
  for (const e of exts ?? []) {
    if (map.has(e.extnID)) f.error(`${rulePrefix}.extensions.duplicate`, `extension ${EXT_NAME[e.extnID] ?? e.extnID} appears more than once`);
    else map.set(e.extnID, e);
    if (e.critical && !EXT_NAME[e.extnID]) f.error(`${rulePrefix}.extensions.unknownCritical`, `unknown critical extension ${e.extnID}`);
  }
  return map;
}

function checkSignatureAlgorithm(outer: string, inner: string, f: Findings, p: string): void {
  if (outer !== inner) f.error(`${p}.signatureAlgorithm.mismatch`, "the signed and the outer signature algorithms differ");
  if (outer === ALG_OID.sha1WithRSAEncryption) {
    f.warn(`${p}.signatureAlgorithm.sha1`, "sha1WithRSAEncryption: the 2004–2015 era's algorithm; today's profile uses sha256WithRSAEncryption");
  } else if (outer !== ALG_OID.sha256WithRSAEncryption) {
    f.error(`${p}.signatureAlgorithm`, `signature algorithm ${outer} is not sha256WithRSAEncryption`);
  }
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function checkTimeEncoding(t: { date: Date; encoding: string }, what: string, f: Findings, rule: string): void {
  const want = t.date.getUTCFullYear() < 2050 ? "UTCTime" : "GeneralizedTime";
  if (t.encoding !== want) f.error(rule, `${what} must be ${want} for year ${t.date.getUTCFullYear()}, found ${t.encoding}`);
}

function nameShapeText(rdns: readonly RdnValue[]): string {
  return rdns.map((r) => r.type).join(", ") || "(empty)";
}

function checkNameEncoding(rdns: readonly RdnValue[], f: Findings, rule: string, what: string): void {
  for (const r of rdns) {
    const want = r.type === "C" ? "PrintableString" : "UTF8String";
    if (r.encoding !== want) {
      f.warn(rule, `${what} ${r.type} is a ${r.encoding}; the JPKI profile writes C as PrintableString and the rest as UTF8String`);
      return;
    }
  }
}

function checkKeyUsage(exts: Map<string, Extension>, kind: Exclude<ProfileKind, "unknown">, f: Findings): void {
  const p = RULE_PREFIX[kind];
  const ext = exts.get(EXT_OID.keyUsage);
  const want = KEY_USAGE_PROFILE[kind];
  if (!ext) return f.error(`${p}.keyUsage.missing`, `keyUsage is missing; it must be critical {${want.join(", ")}}`);
  if (!ext.critical) f.error(`${p}.keyUsage.critical`, "keyUsage must be critical");
  const bits = namedBitsOf(extValue(ext));
  if (!bits) return f.error(`${p}.keyUsage.malformed`, "keyUsage does not decode as a BIT STRING");
  const names = bits.map((b) => (Object.keys(KEY_USAGE_BIT) as (keyof typeof KEY_USAGE_BIT)[]).find((n) => KEY_USAGE_BIT[n] === b) ?? `bit${b}`);
  const same = names.length === want.length && want.every((n) => names.includes(n));
  if (!same) f.error(`${p}.keyUsage.bits`, `keyUsage must be exactly {${want.join(", ")}}, found {${names.join(", ")}}`);
}

function generalNames(ext: Extension | undefined): GeneralNames | undefined {
  return ext ? extValueOf.generalNames(ext) : undefined;
}

function dirNames(gns: GeneralNames | undefined): RdnValue[][] {
  return (gns ?? []).filter((g) => g.directoryName).map((g) => readName(g.directoryName!));
}

function policyOids(exts: Map<string, Extension>, f: Findings, p: string): { oids: string[]; hasCps: boolean } {
  const ext = exts.get(EXT_OID.certificatePolicies);
  if (!ext) return { oids: [], hasCps: false };
  const pol = extValueOf.certificatePolicies(ext);
  if (!pol) {
    f.error(`${p}.certificatePolicies.malformed`, "certificatePolicies does not decode");
    return { oids: [], hasCps: false };
  }
  return {
    oids: pol.map((pi) => pi.policyIdentifier),
    hasCps: pol.some((pi) => (pi.policyQualifiers ?? []).some((q) => q.policyQualifierId === AIA_OID.cpsQualifier)),
  };
}

function checkIssuerAltName(exts: Map<string, Extension>, f: Findings, p: string): void {
  const ext = exts.get(EXT_OID.issuerAltName);
  if (!ext) return f.error(`${p}.issuerAltName.missing`, `issuerAltName is missing; it must be directoryName C=JP, O=${JPKI_SERVICE_JA}`);
  const gns = generalNames(ext);
  if (!gns) return f.error(`${p}.issuerAltName.malformed`, "issuerAltName does not decode");
  const ok = dirNames(gns).some((rdns) => sameNameShape(rdns, [["C", "JP"], ["O", JPKI_SERVICE_JA]]));
  if (!ok) f.error(`${p}.issuerAltName.dirName`, `issuerAltName must be directoryName C=JP, O=${JPKI_SERVICE_JA}`);
}

function checkKeyIdentifiers(exts: Map<string, Extension>, f: Findings, p: string, needAki: boolean): void {
  if (!exts.has(EXT_OID.subjectKeyIdentifier)) f.error(`${p}.subjectKeyIdentifier.missing`, "subjectKeyIdentifier is missing");
  if (needAki && !exts.has(EXT_OID.authorityKeyIdentifier)) f.error(`${p}.authorityKeyIdentifier.missing`, "authorityKeyIdentifier is missing");
}

/** CDP dirNames (fullName directoryName entries), or undefined when the extension does not decode. */
function cdpDirNames(ext: Extension): RdnValue[][] | undefined {
  const cdp = extValueOf.crlDistributionPoints(ext);
  if (!cdp) return undefined;
  return cdp.flatMap((dp) => (dp.distributionPoint?.fullName ?? []).filter((g) => g.directoryName).map((g) => readName(g.directoryName!)));
}

function crlPartitionShape(purpose: keyof typeof PURPOSE_OU): ReadonlyArray<readonly [string, string | RegExp]> {
  return [["C", "JP"], ["O", "JPKI"], ["OU", PURPOSE_OU[purpose]], ["OU", "CRL Distribution Points"], ["OU", ANY], ["CN", ANY]];
}

/**
 * Checks a certificate against the JPKI profile its extensions declare (basicConstraints CA → CA;
 * policy …8.5.1.1.20 / …1.0.20 → signature; …8.5.1.3.30 → authentication), or against `opts.expect`.
 * Throws ERR_DER_MALFORMED when the DER is not a certificate.
 */
export function checkCertificate(der: Uint8Array, opts: CheckOptions = {}): ProfileReport {
  const cert = parseCertificate(der);
  const tbs = cert.tbsCertificate;
  const f = new Findings();

  // --- common: RFC 5280 and today's crypto
  if (tbs.version !== 2) f.error("cert.version", `version must be v3, found v${tbs.version + 1}`);
  checkSignatureAlgorithm(cert.signatureAlgorithm.algorithm, tbs.signature.algorithm, f, "cert");

  const spki = tbs.subjectPublicKeyInfo;
  if (spki.algorithm.algorithm !== ALG_OID.rsaEncryption) {
    f.error("cert.key.algorithm", `public key algorithm ${spki.algorithm.algorithm} is not rsaEncryption`);
  } else {
    const k = rsaKey(spki.subjectPublicKey);
    if (!k) f.error("cert.key.malformed", "the RSA public key does not decode");
    else {
      if (k.bits === 1024) f.warn("cert.key.size", "RSA-1024: the 2004–2013 era's key size; today's profile uses RSA-2048");
      else if (k.bits !== 2048) f.error("cert.key.size", `RSA key is ${k.bits} bits; the profile uses RSA-2048`);
      if (k.exponent !== 65537) f.error("cert.key.exponent", `RSA public exponent must be 65537, found ${k.exponent}`);
    }
  }

  const exts = indexExtensions(tbs.extensions, f, "cert");
  const bc = exts.get(EXT_OID.basicConstraints);
  const bcValue = bc ? extValueOf.basicConstraints(bc) : undefined;
  if (bc && !bcValue) f.error("cert.basicConstraints.malformed", "basicConstraints does not decode");
  const policies = policyOids(exts, f, "cert");

  const detected: ProfileKind = bcValue?.cA
    ? "ca"
    : policies.oids.includes(POLICY_OID.signature) || policies.oids.includes(POLICY_OID.signatureTest)
      ? "signature"
      : policies.oids.includes(POLICY_OID.authentication)
        ? "authentication"
        : hasFourItems(exts.get(EXT_OID.subjectAltName))
          ? "signature" // no policy, but only a signature certificate carries the four items
          : "unknown";
  const kind = opts.expect ?? (detected === "unknown" ? undefined : detected);
  if (opts.expect && detected !== "unknown" && detected !== opts.expect) {
    f.error("cert.kind", `expected a ${opts.expect} certificate, but its extensions make it a ${detected} certificate`);
  }
  if (!kind) {
    f.warn("cert.kind.unknown", "neither basicConstraints CA nor a JPKI certificate policy: not checked against a JPKI profile");
  }

  // --- serial: RFC 5280 §4.1.2.2; ours ≥ 64 random bits
  const serial = new Uint8Array(tbs.serialNumber);
  const sig = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  if (serial.length === 0 || serial[0]! & 0x80 || sig.every((b) => b === 0)) f.error("cert.serial.positive", "serial number must be positive");
  if (serial.length > 20) f.error("cert.serial.length", `serial number is ${serial.length} octets; at most 20 are allowed`);
  if (sig.length < 8) {
    // A serial shorter than 8 octets cannot hold 64 random bits. J-LIS's own roots use small serials,
    // so for a CA this is advice, for an end-entity a rule.
    const msg = `serial number has ${sig.length} octets: too short to hold 64 random bits`;
    if (kind === "ca") f.warn("cert.serial.entropy", msg);
    else f.error("cert.serial.entropy", msg);
  }

  // --- validity
  const nb = timeInfo(tbs.validity.notBefore);
  const na = timeInfo(tbs.validity.notAfter);
  checkTimeEncoding(nb, "notBefore", f, "cert.validity.encoding");
  checkTimeEncoding(na, "notAfter", f, "cert.validity.encoding");
  if (nb.date.getTime() >= na.date.getTime()) f.error("cert.validity.order", "notBefore must be before notAfter");

  const subject = readName(tbs.subject);

  if (kind === "ca") checkCa();
  else if (kind === "signature") checkEndEntity("signature");
  else if (kind === "authentication") checkEndEntity("authentication");

  return Object.freeze({ kind: detected, violations: Object.freeze(f.list) });

  function checkCa(): void {
    checkNameEncoding(subject, f, "ca.subject.encoding", "subject");
    const ouOk = subject.length === 4 && CA_OUS.has(subject[2]!.value);
    if (!ouOk || !sameNameShape(subject, [["C", "JP"], ["O", "JPKI"], ["OU", ANY], ["OU", ANY]])) {
      f.error("ca.subject.shape", `CA subject must be C=JP, O=JPKI, OU=JPKI for digital signature|JPKI for user authentication, OU=<name>; found ${nameShapeText(subject)}`);
    }
    const selfSigned = nameDer(tbs.issuer).equals(nameDer(tbs.subject));
    if (!selfSigned) f.warn("ca.selfSigned", "issuer differs from subject: JPKI CA certificates are self-signed (a cross-certificate?)");
    checkKeyUsage(exts, "ca", f);
    if (!bc) f.error("ca.basicConstraints.missing", "basicConstraints is missing; it must be critical CA:TRUE");
    else {
      if (!bc.critical) f.error("ca.basicConstraints.critical", "basicConstraints must be critical");
      if (bcValue && !bcValue.cA) f.error("ca.basicConstraints.ca", "basicConstraints must say CA:TRUE");
    }
    const san = exts.get(EXT_OID.subjectAltName);
    const sanNames = generalNames(san);
    if (san && !sanNames) f.error("ca.subjectAltName.malformed", "subjectAltName does not decode");
    const sanDirs = dirNames(sanNames);
    if (sanDirs.length === 0) f.error("ca.subjectAltName.dirName", `subjectAltName must carry the CA's name in Japanese as a directoryName (O=${JPKI_SERVICE_JA}, …)`);
    else if (!sanDirs.some((d) => d.some((r) => r.type === "O" && r.value === JPKI_SERVICE_JA))) {
      f.warn("ca.subjectAltName.dirName", `subjectAltName directoryName should have O=${JPKI_SERVICE_JA}`);
    }
    const cdp = exts.get(EXT_OID.cRLDistributionPoints);
    if (!cdp) f.error("ca.crlDistributionPoints.missing", "cRLDistributionPoints is missing (the directoryName where the ARL lives)");
    else {
      const dirs = cdpDirNames(cdp);
      if (!dirs) f.error("ca.crlDistributionPoints.malformed", "cRLDistributionPoints does not decode");
      else if (selfSigned && !dirs.some((d) => sameNameShape(d, subject.map((r) => [r.type, r.value] as const)))) {
        f.warn("ca.crlDistributionPoints.dirName", "cRLDistributionPoints should be a directoryName equal to the CA's own name");
      }
    }
    checkKeyIdentifiers(exts, f, "ca", false);
    if (exts.has(EXT_OID.authorityInfoAccess)) f.warn("ca.authorityInfoAccess.present", "J-LIS's CA certificates carry no authorityInfoAccess");
    const end = na.date;
    if (end.getUTCHours() !== 14 || end.getUTCMinutes() !== 59 || end.getUTCSeconds() !== 59) {
      f.warn("ca.validity.endOfDay", "notAfter should be 14:59:59Z (23:59:59 JST), as on J-LIS's roots");
    }
  }

  function checkEndEntity(purpose: "signature" | "authentication"): void {
    const p = RULE_PREFIX[purpose];
    checkNameEncoding(subject, f, `${p}.subject.encoding`, "subject");
    checkKeyUsage(exts, purpose, f);
    if (bcValue?.cA) f.error(`${p}.basicConstraints.ca`, "an end-entity certificate must not be a CA");

    if (purpose === "signature") {
      if (policies.oids.includes(POLICY_OID.signature)) {
        // production policy: fine
      } else if (policies.oids.includes(POLICY_OID.signatureTest)) {
        f.warn("sig.policy.test", `policy ${POLICY_OID.signatureTest} is J-LIS's test environment`);
      } else {
        f.error("sig.policy.missing", `certificatePolicies must contain ${POLICY_OID.signature}`);
      }
    } else if (!policies.oids.includes(POLICY_OID.authentication)) {
      f.error("auth.policy.missing", `certificatePolicies must contain ${POLICY_OID.authentication}`);
    }
    if (policies.oids.length > 0 && !policies.hasCps) f.warn(`${p}.policy.cps`, "the certificate policy has no CPS URI qualifier");

    checkIssuerAltName(exts, f, p);
    checkKeyIdentifiers(exts, f, p, true);

    const cdp = exts.get(EXT_OID.cRLDistributionPoints);
    if (!cdp) {
      if (purpose === "signature") f.error("sig.crlDistributionPoints.missing", "cRLDistributionPoints is missing (the municipality's CRL partition)");
      else f.warn("auth.crlDistributionPoints.missing", "cRLDistributionPoints is missing");
    } else {
      const dirs = cdpDirNames(cdp);
      if (!dirs) f.error(`${p}.crlDistributionPoints.malformed`, "cRLDistributionPoints does not decode");
      else if (!dirs.some((d) => sameNameShape(d, crlPartitionShape(purpose)))) {
        const msg = `cRLDistributionPoints must be directoryName C=JP, O=JPKI, OU=${PURPOSE_OU[purpose]}, OU=CRL Distribution Points, OU=<prefecture>, CN=<municipality>`;
        if (purpose === "signature") f.error("sig.crlDistributionPoints.dirName", msg);
        else f.warn("auth.crlDistributionPoints.dirName", msg);
      }
    }

    const san = exts.get(EXT_OID.subjectAltName);
    if (purpose === "signature") {
      if (!sigSubjectShape(subject)) f.error("sig.subject.shape", `subject must be C=JP, L=<prefecture>, L=<municipality>, CN=<opaque id>; found ${nameShapeText(subject)}`);
      checkFourItems(san, subject);
    } else {
      if (!sameNameShape(subject, [["C", "JP"], ["CN", ANY]])) f.error("auth.subject.shape", `subject must be C=JP, CN=<opaque id>; found ${nameShapeText(subject)}`);
      if (san) {
        const gns = generalNames(san);
        if (!gns) f.error("auth.subjectAltName.malformed", "subjectAltName does not decode");
        else if (gns.some((g) => g.otherName && isFourItemsOid(g.otherName.typeId))) {
          f.error("auth.fourItems.present", "a user-authentication certificate must not carry the four basic items");
        }
      }
    }
  }

  function checkFourItems(san: Extension | undefined, subj: readonly RdnValue[]): void {
    if (!san) return f.error("sig.fourItems.missing", "subjectAltName with the four basic items is missing");
    let decoded;
    try {
      decoded = decodeFourItemsSan(extValue(san));
    } catch (e) {
      if (e instanceof JpkiError) return f.error("sig.subjectAltName.malformed", "subjectAltName does not decode");
      throw e;
    }
    if (!decoded) return f.error("sig.fourItems.missing", "subjectAltName does not carry the four basic items");
    for (const pr of decoded.problems) f.error(`sig.fourItems.${pr.field}`, pr.message);
    const cn = subj.find((r) => r.type === "CN")?.value;
    if (cn && decoded.name) {
      const parts = decoded.name.split(IDEOGRAPHIC_SPACE).filter((s) => s.length > 0);
      const needles = [decoded.name, parts.join(""), ...parts];
      if (needles.some((n) => cn.includes(n))) {
        f.error("sig.subject.cnIsName", "subject CN contains the holder's name; it must be an opaque id");
      }
    }
    if (cn && !/^\d{19}[0-9A-Za-z]{9}$/.test(cn)) {
      f.warn("sig.subject.cnShape", "subject CN is not <14-digit request time><5-digit sequence><9-character counter id>");
    }
  }
}

function hasFourItems(san: Extension | undefined): boolean {
  const gns = san ? extValueOf.generalNames(san) : undefined;
  return (gns ?? []).some((g) => g.otherName && isFourItemsOid(g.otherName.typeId));
}

function sigSubjectShape(subject: readonly RdnValue[]): boolean {
  return sameNameShape(subject, [["C", "JP"], ["L", ANY], ["L", ANY], ["CN", ANY]]);
}

// ---------------------------------------------------------------------------------------------------
// CRLs

/** Valid CRLReason codes (RFC 5280 §5.3.1): 7 is not used. */
const REASON_CODES = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);

/** An ENUMERATED TLV to a number; undefined when it is not one. */
function enumeratedValue(tlv: Uint8Array): number | undefined {
  try {
    const h = readHeader(tlv, 0);
    if (h.tag !== TAG.ENUMERATED || h.length < 1 || h.length > 4 || h.headerLength + h.length !== tlv.length) return undefined;
    let v = 0;
    for (const b of tlv.subarray(h.headerLength)) v = v * 256 + b;
    return tlv[h.headerLength]! & 0x80 ? -1 : v;
  } catch {
    return undefined;
  }
}

/** Counts per-entry findings so a national CRL yields one line per rule, not one per entry. */
class EntryTally {
  private readonly counts = new Map<string, { severity: "error" | "warning"; what: string; n: number; first: number }>();
  add(rule: string, severity: "error" | "warning", what: string, index: number): void {
    const c = this.counts.get(rule);
    if (c) c.n++;
    else this.counts.set(rule, { severity, what, n: 1, first: index });
  }
  flush(f: Findings): void {
    for (const [rule, c] of this.counts) {
      const msg = `${c.n} ${c.n === 1 ? "entry" : "entries"}: ${c.what} (first: entry #${c.first + 1})`;
      if (c.severity === "error") f.error(rule, msg);
      else f.warn(rule, msg);
    }
  }
}

/** True when `s` sorts after log[start, end): longer, or as long and greater byte by byte. */
function ascends(log: Buffer, start: number, end: number, s: Uint8Array): boolean {
  if (s.length !== end - start) return s.length > end - start;
  for (let k = 0; k < s.length; k++) if (s[k] !== log[start + k]) return s[k]! > log[start + k]!;
  return false;
}

/** What the entry rules read of one revokedCertificates entry (RFC 5280 §5.1.2.6), as decoded by hand. */
export interface CrlEntryFacts {
  /** the userCertificate INTEGER's content octets */
  readonly serial: Uint8Array;
  readonly revocationYear: number;
  readonly revocationEncoding: "UTCTime" | "GeneralizedTime";
  readonly extensions: ReadonlyArray<{ readonly extnID: string; readonly critical: boolean; readonly value: Uint8Array }>;
  /** crlEntryExtensions is there at all (empty `extensions` then breaks SIZE (1..MAX)) */
  readonly extensionsPresent?: boolean;
}

/**
 * The per-entry CRL rules (positive unique serials, time type, reasonCode valid and non-critical, no unknown
 * critical entry extension), fed one entry at a time so a CRL streamed from a file is checked in the same
 * pass that reads it. Duplicates cost nothing while serials ascend, as ours do (the store lists them in
 * order); the first serial out of order switches to a set of every serial seen.
 */
export class CrlEntryCheck {
  private readonly tally = new EntryTally();
  private index = 0;
  /** while serials ascend: all of them packed end to end (the k-th ends at `logEnds[k]`), to build `seen` from if the order breaks */
  private log: Buffer | undefined = Buffer.allocUnsafe(1 << 16);
  private logEnds: number[] = [];
  /** once the order broke: every serial so far, as latin1 keys */
  private seen: Set<string> | undefined;
  /**
   * Serials kept for the duplicate check at most. Memory must not grow with the CRL (`jpki inspect` of a file of
   * any size), and a Set holds at most 2^24 keys: past that, add threw RangeError ("Set maximum size exceeded",
   * a CRL of 17 million entries out of order failed as a bug). Ascending serials need only the last one; the
   * log of the others is kept up to this many, so that an order broken later can still be checked.
   */
  private readonly maxKept: number;
  /** the log no longer holds every serial (past maxKept): an order broken now cannot be checked */
  private logPartial = false;
  /** the duplicate check was given up (serials out of order past maxKept) */
  private unchecked = false;

  constructor(opts: { readonly maxKept?: number } = {}) {
    this.maxKept = opts.maxKept ?? 1 << 21;
  }

  add(e: CrlEntryFacts): void {
    const i = this.index++;
    const s = e.serial;
    if (s.length === 0 || s[0]! & 0x80 || s.every((b) => b === 0)) this.tally.add("crl.entry.serial", "error", "serial number is not positive", i);
    this.checkDuplicate(s, i);
    if ((e.revocationYear < 2050) !== (e.revocationEncoding === "UTCTime")) this.tally.add("crl.entry.time.encoding", "error", "revocationDate uses the wrong time type for its year", i);
    // a warning: common in the wild (@peculiar/x509 writes it for an entry without reason) and harmless to readers
    if (e.extensionsPresent && e.extensions.length === 0) this.tally.add("crl.entry.extensions.empty", "warning", "crlEntryExtensions is present but empty: with no extension it must be absent (SEQUENCE SIZE (1..MAX))", i);
    for (const x of e.extensions) {
      if (x.extnID !== EXT_OID.cRLReason) {
        if (x.critical && !EXT_NAME[x.extnID]) this.tally.add("crl.entry.extensions.unknownCritical", "error", "unknown critical entry extension", i);
        continue;
      }
      if (x.critical) this.tally.add("crl.entry.reason.critical", "error", "reasonCode must not be critical", i);
      const code = enumeratedValue(x.value);
      if (code === undefined) this.tally.add("crl.entry.reason.malformed", "error", "reasonCode is not an ENUMERATED", i);
      else if (!REASON_CODES.has(code)) this.tally.add("crl.entry.reason", "error", "reasonCode is not a valid CRLReason (0–6, 8–10)", i);
    }
  }

  /**
   * One violation per rule broken, counting the entries that broke it. `present`: the CRL carries a
   * revokedCertificates field, which with no entry in it breaks §5.1.2.6 (absent when none is revoked).
   */
  violations(present = false): Violation[] {
    const f = new Findings();
    if (present && this.index === 0) f.error("crl.revokedCertificates.empty", "revokedCertificates is present but empty: with no revoked certificates it must be absent (RFC 5280 §5.1.2.6)");
    this.tally.flush(f);
    return f.list;
  }

  private checkDuplicate(s: Uint8Array, i: number): void {
    if (this.unchecked) {
      this.tally.add("crl.entry.duplicate.unchecked", "warning", `not checked for duplicate serials: the serials are out of order and more than ${this.maxKept} (a check that would hold them all in memory)`, i);
      return;
    }
    if (this.log) {
      let n = this.logEnds.length;
      let end = n ? this.logEnds[n - 1]! : 0;
      if (n === 0 || ascends(this.log, n > 1 ? this.logEnds[n - 2]! : 0, end, s)) {
        // Strictly ascending (by length, then bytes) means all distinct: log it, no lookup.
        if (n >= this.maxKept) {
          // keep the last serial only (what the next comparison needs): memory stays bounded
          const lastStart = n > 1 ? this.logEnds[n - 2]! : 0;
          this.log.copy(this.log, 0, lastStart, end);
          end -= lastStart;
          this.logEnds = [end];
          n = 1;
          this.logPartial = true;
        }
        if (end + s.length > this.log.length) {
          const grown = Buffer.allocUnsafe(Math.max(this.log.length * 2, end + s.length));
          this.log.copy(grown, 0, 0, end);
          this.log = grown;
        }
        this.log.set(s, end);
        this.logEnds.push(end + s.length);
        return;
      }
      if (s.length === end - (n > 1 ? this.logEnds[n - 2]! : 0) && this.log.compare(s, 0, s.length, n > 1 ? this.logEnds[n - 2]! : 0, end) === 0) {
        // the last serial again: a duplicate, and the order is still ascending for what follows
        this.tally.add("crl.entry.duplicate", "error", "serial number listed more than once", i);
        return;
      }
      const log = this.log;
      this.log = undefined;
      if (this.logPartial) {
        this.logEnds = [];
        this.unchecked = true;
        this.checkDuplicate(s, i);
        return;
      }
      this.seen = new Set(this.logEnds.map((e, k) => log.toString("latin1", k ? this.logEnds[k - 1]! : 0, e)));
      this.logEnds = [];
    }
    const key = Buffer.from(s.buffer, s.byteOffset, s.length).toString("latin1");
    if (this.seen!.has(key)) this.tally.add("crl.entry.duplicate", "error", "serial number listed more than once", i);
    else if (this.seen!.size >= this.maxKept) {
      this.seen = undefined;
      this.unchecked = true;
      this.checkDuplicate(s, i);
    } else this.seen!.add(key);
  }
}

/**
 * Checks a CRL against our CRL profile (shared/spec/JPKI.md "Revocation"; RFC 5280 §5): v2,
 * sha256WithRSAEncryption, cRLNumber (non-critical), AKI, nextUpdate after thisUpdate, valid reason codes
 * on non-critical entry extensions, positive unique serials. Throws ERR_DER_MALFORMED when not a CRL.
 */
export function checkCrl(der: Uint8Array): CrlProfileReport {
  const crl = parseCrl(der);
  const tbs = crl.tbsCertList;
  const f = new Findings();

  if (tbs.version !== 1) f.error("crl.version", `version must be v2, found ${tbs.version === undefined ? "v1 (absent)" : `v${tbs.version + 1}`}`);
  checkSignatureAlgorithm(crl.signatureAlgorithm.algorithm, tbs.signature.algorithm, f, "crl");

  const thisUpdate = timeInfo(tbs.thisUpdate);
  checkTimeEncoding(thisUpdate, "thisUpdate", f, "crl.time.encoding");
  if (!tbs.nextUpdate) f.error("crl.nextUpdate.missing", "nextUpdate is missing");
  else {
    const next = timeInfo(tbs.nextUpdate);
    checkTimeEncoding(next, "nextUpdate", f, "crl.time.encoding");
    if (next.date.getTime() <= thisUpdate.date.getTime()) f.error("crl.nextUpdate.order", "nextUpdate must be after thisUpdate");
  }

  const exts = indexExtensions(tbs.crlExtensions, f, "crl");
  const num = exts.get(EXT_OID.cRLNumber);
  if (!num) f.error("crl.cRLNumber.missing", "cRLNumber is missing");
  else {
    if (num.critical) f.error("crl.cRLNumber.critical", "cRLNumber must not be critical");
    const v = integerTlv(extValue(num));
    if (!v) f.error("crl.cRLNumber.malformed", "cRLNumber is not a non-negative INTEGER");
    else if (v.hex.length > 40) f.error("crl.cRLNumber.length", "cRLNumber is longer than 20 octets");
  }
  if (!exts.has(EXT_OID.authorityKeyIdentifier)) f.error("crl.authorityKeyIdentifier.missing", "authorityKeyIdentifier is missing");
  const delta = exts.get(EXT_OID.deltaCRLIndicator);
  if (delta && !delta.critical) f.error("crl.deltaCRLIndicator.critical", "deltaCRLIndicator must be critical");
  const idp = exts.get(EXT_OID.issuingDistributionPoint);
  if (idp && !idp.critical) f.error("crl.issuingDistributionPoint.critical", "issuingDistributionPoint must be critical");

  const entries = new CrlEntryCheck();
  for (const entry of tbs.revokedCertificates ?? []) {
    const rd = timeInfo(entry.revocationDate);
    entries.add({
      serial: new Uint8Array(entry.userCertificate),
      revocationYear: rd.date.getUTCFullYear(),
      revocationEncoding: rd.encoding,
      extensions: (entry.crlEntryExtensions ?? []).map((e) => ({ extnID: e.extnID, critical: e.critical, value: extValue(e) })),
      extensionsPresent: entry.crlEntryExtensions !== undefined,
    });
  }
  f.list.push(...entries.violations(tbs.revokedCertificates !== undefined));

  return Object.freeze({ kind: delta ? "delta-crl" : "crl", violations: Object.freeze(f.list) });
}
