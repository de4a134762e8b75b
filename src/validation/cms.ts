/**
 * Signed documents: CMS SignedData, RFC 5652 §5, as an electronic application (電子申請) submits it — one
 * SignerInfo, SHA-256 (RFC 5754), RSA PKCS#1 v1.5 (RFC 3370 §3.2: rsaEncryption or sha256WithRSAEncryption),
 * signed attributes (§5.3, §11.1–11.3), content attached in eContent or detached.
 *
 * Read with our DER reader (asn1.ts), so the message digest and the signature are checked over the exact bytes
 * received. The signer certificate is validated with validatePath (RFC 5280 §6). The answer is a value:
 * nothing here throws on bad input, only on wrong parameters (ERR_USAGE).
 *
 * Time rule (the "shell" model, as `openssl cms -verify` checks now): the signer's path must be valid
 *  1. at the signing time T: the signing-time attribute (§11.3, the signer's claim, not a trusted time stamp),
 *     else `at`, else now; the certificate must have been within its validity period when it signed; and
 *  2. at the verification time R = `at`, else now, with revocation checked from the CRLs given: a certificate
 *     revoked (or expired) by R invalidates the signature, as the CRLs of R know it.
 * When T and R are the same instant one validation does both. A T later than R is refused (not-yet-valid,
 * signing-time-in-future) before either: a signature cannot have been made after it is verified.
 */
import { createHash, verify as verifyWith } from "node:crypto";
import { JpkiError } from "../errors.js";
import { pemOrDer } from "../pki/pem.js";
import { ALG_OID, POLICY_OID } from "../profile/oids.js";
import { decodeInteger, decodeOid, decodeTime, expectTag, items, tlvAt, type Tlv } from "./asn1.js";
import { KEY_USAGE, parseCertificate, type Certificate } from "./certificate.js";
import { formatName, nameEquals, parseName } from "./name.js";
import { publicKeyObject } from "./signature.js";
import { validatePath, buildPath } from "./validate.js";
import type { CrlIndexCache } from "./crl-index-cache.js";
import type { PathStatus, RevocationMode } from "./types.js";

/** CMS object identifiers (RFC 5652 §4, §5, §11). */
export const CMS_OID = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  contentType: "1.2.840.113549.1.9.3",
  messageDigest: "1.2.840.113549.1.9.4",
  signingTime: "1.2.840.113549.1.9.5",
} as const;

/** The signature algorithms accepted for a SignerInfo (RFC 3370 §3.2, RFC 5754 §3.2); anything else is unsupported. */
const SIGNATURE_ALGORITHMS: ReadonlySet<string> = new Set([ALG_OID.rsaEncryption, ALG_OID.sha256WithRSAEncryption]);

export type SignedDataStatus =
  | "valid"
  | "malformed"
  | "unsupported-algorithm"
  | "content-missing"
  | "digest-mismatch"
  | "bad-signature"
  | "signer-not-found"
  | "wrong-purpose"
  | Exclude<PathStatus, "valid">;

/** What a purpose check sees of the signer certificate. */
export interface SignerCertificate {
  readonly der: Buffer;
  readonly serialHex: string;
  readonly keyUsage?: ReadonlySet<number>;
  readonly policies: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * A purpose check: "signature" requires a 署名用電子証明書 (keyUsage nonRepudiation/contentCommitment and the
 * JPKI signature policy); a function returns undefined when the certificate fits, else why not.
 */
export type SignaturePurpose = "signature" | ((signer: SignerCertificate) => string | undefined);

export interface VerifySignedDataParams {
  /** the CMS ContentInfo, DER or PEM ("CMS" or "PKCS7" label) */
  readonly signature: Uint8Array;
  /** the signed document, for a detached signature; for an attached one it must equal the eContent */
  readonly content?: Uint8Array;
  readonly trustAnchors: readonly Uint8Array[];
  /** intermediate CA certificates, besides those in the CMS */
  readonly intermediates?: readonly Uint8Array[];
  readonly crls?: readonly Uint8Array[];
  /** CRLs parsed once and reused across calls (see ValidatePathParams.crlIndex) */
  readonly crlIndex?: CrlIndexCache;
  /** the verification time R (default: now); also T when the signature carries no signing time */
  readonly at?: Date;
  /** default "hard-fail" */
  readonly revocation?: RevocationMode;
  readonly purpose?: SignaturePurpose;
  /**
   * How far the signing time may lie after the verification time and still be accepted: the signer's clock
   * running ahead (default 0). Past it the answer is not-yet-valid, reason signing-time-in-future.
   */
  readonly signingTimeSkewMs?: number;
}

export interface SignedDataResult {
  readonly status: SignedDataStatus;
  /** a stable reason: a FailureReason of the path, or one of this module's (e.g. "message-digest-mismatch") */
  readonly reason?: string;
  readonly message: string;
  /** the signer certificate (DER), once found, with its serial (hex) and subject (RFC 4514 text) */
  readonly signer?: Buffer;
  readonly signerSerial?: string;
  readonly signerSubject?: string;
  /** the signing-time attribute, when present */
  readonly signingTime?: Date;
  /** the time the path was validated at (T) */
  readonly validatedAt?: Date;
  /** the attached content, for an attached signature */
  readonly content?: Buffer;
  /**
   * The SignerInfo's signature value, once the signer is found. With the signer certificate it names this signed
   * message whatever its wrapping: the same signature re-encoded (PEM for DER, another certificate set, unsigned
   * attributes added) keeps it, while the bytes of the file change (provider/enrol.ts honours a request once by it).
   */
  readonly signatureValue?: Buffer;
}

class Malformed extends Error {}

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Malformed(what);
  return v;
}

interface SignerInfo {
  readonly sid: { readonly issuer: Tlv; readonly serialHex: string } | { readonly ski: Buffer };
  readonly digestAlgorithm: Tlv;
  readonly signedAttrs?: Tlv;
  readonly signatureAlgorithm: Tlv;
  readonly signature: Buffer;
}

interface SignedData {
  readonly eContentType: string;
  readonly eContent?: Buffer;
  readonly certificates: readonly Buffer[];
  readonly signerInfos: readonly SignerInfo[];
}

/** OCTET STRING content, primitive or (BER, definite length) constructed. */
function octets(t: Tlv): Buffer {
  if (t.tag === 0x04) return t.content;
  if (t.tag === 0x24) return Buffer.concat(items(t).map(octets));
  throw new Malformed("expected an OCTET STRING");
}

function parseSignedData(der: Buffer): SignedData {
  const ci = tlvAt(der);
  if (ci.der.length !== der.length) throw new Malformed("trailing bytes after the ContentInfo");
  const [type, wrapped] = items(expectTag(ci, 0x30, "ContentInfo"));
  if (decodeOid(must(type, "contentType")) !== CMS_OID.signedData) throw new Malformed("the ContentInfo is not signedData");
  const [sd] = items(expectTag(wrapped, 0xa0, "content [0]"));
  const fields = items(expectTag(sd, 0x30, "SignedData"));
  let i = 0;
  expectTag(fields[i++], 0x02, "version");
  expectTag(fields[i++], 0x31, "digestAlgorithms");
  const [ect, ec] = items(expectTag(fields[i++], 0x30, "encapContentInfo"));
  const eContentType = decodeOid(must(ect, "eContentType"));
  const eContent = ec ? octets(must(items(expectTag(ec, 0xa0, "eContent [0]"))[0], "eContent")) : undefined;
  const certificates: Buffer[] = [];
  if (fields[i]?.tag === 0xa0) for (const c of items(fields[i++]!)) if (c.tag === 0x30) certificates.push(c.der);
  if (fields[i]?.tag === 0xa1) i++;
  const infos = items(expectTag(fields[i++], 0x31, "signerInfos"));
  if (i !== fields.length) throw new Malformed("unexpected fields after signerInfos");
  return { eContentType, eContent, certificates, signerInfos: infos.map(parseSignerInfo) };
}

function parseSignerInfo(t: Tlv): SignerInfo {
  const f = items(expectTag(t, 0x30, "SignerInfo"));
  let i = 0;
  const version = decodeInteger(expectTag(f[i++], 0x02, "SignerInfo version"));
  const sidTlv = must(f[i++], "sid");
  let sid: SignerInfo["sid"];
  if (sidTlv.tag === 0x30) {
    const [issuer, serial] = items(sidTlv);
    sid = { issuer: expectTag(issuer, 0x30, "issuer"), serialHex: expectTag(serial, 0x02, "serialNumber").content.toString("hex") };
  } else if (sidTlv.tag === 0x80) {
    sid = { ski: sidTlv.content };
  } else throw new Malformed("sid is neither issuerAndSerialNumber nor subjectKeyIdentifier");
  if ((version === 1n) !== (sidTlv.tag === 0x30)) throw new Malformed("SignerInfo version does not match its sid (§5.3)");
  const digestAlgorithm = expectTag(f[i++], 0x30, "digestAlgorithm");
  const signedAttrs = f[i]?.tag === 0xa0 ? f[i++] : undefined;
  const signatureAlgorithm = expectTag(f[i++], 0x30, "signatureAlgorithm");
  const signature = expectTag(f[i++], 0x04, "signature").content;
  if (f[i]?.tag === 0xa1) i++;
  if (i !== f.length) throw new Malformed("unexpected fields in SignerInfo");
  return { sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature };
}

/** The algorithm OID, with parameters absent or NULL (RFC 3370 §2.1, §3.2; RFC 5754). */
function algorithm(t: Tlv): { oid: string; paramsOk: boolean } {
  const [id, params, ...rest] = items(t);
  return { oid: decodeOid(must(id, "algorithm")), paramsOk: rest.length === 0 && (params === undefined || (params.tag === 0x05 && params.content.length === 0)) };
}

/** Signed attributes by type; each must hold exactly one value (§11.1–11.3), and a type may occur once (§5.3). */
function attributes(signedAttrs: Tlv): Map<string, Tlv> {
  const out = new Map<string, Tlv>();
  for (const a of items(signedAttrs)) {
    const [type, values] = items(expectTag(a, 0x30, "Attribute"));
    const oid = decodeOid(must(type, "attrType"));
    if (out.has(oid)) throw new Malformed(`attribute ${oid} occurs twice`);
    const vs = items(expectTag(values, 0x31, "attrValues"));
    if ([CMS_OID.contentType, CMS_OID.messageDigest, CMS_OID.signingTime].includes(oid as never) && vs.length !== 1) {
      throw new Malformed(`attribute ${oid} must have exactly one value`);
    }
    out.set(oid, vs[0]!);
  }
  return out;
}

/** PEM labels a CMS may come under. */
const CMS_LABELS = ["CMS", "PKCS7", "PKCS #7 SIGNED DATA"];

function checkParams(p: VerifySignedDataParams): void {
  if (p.at !== undefined && (!(p.at instanceof Date) || Number.isNaN(p.at.getTime()))) throw new JpkiError("ERR_USAGE", "verifySignedData: `at` must be a valid Date");
  if (p.purpose !== undefined && p.purpose !== "signature" && typeof p.purpose !== "function") {
    throw new JpkiError("ERR_USAGE", `verifySignedData: purpose must be "signature" or a function, not ${JSON.stringify(p.purpose)}`);
  }
  if (p.signingTimeSkewMs !== undefined && !(Number.isFinite(p.signingTimeSkewMs) && p.signingTimeSkewMs >= 0)) {
    throw new JpkiError("ERR_USAGE", "verifySignedData: signingTimeSkewMs must be a finite number of milliseconds, 0 or more");
  }
}

function signerView(c: Certificate): SignerCertificate {
  return { der: c.der, serialHex: c.serialHex, keyUsage: c.keyUsage, policies: (c.policies ?? []).map((p) => p.policy), notBefore: c.notBefore, notAfter: c.notAfter };
}

/** 署名用電子証明書: keyUsage nonRepudiation (contentCommitment) and the JPKI signature certificate policy. */
function signaturePurpose(s: SignerCertificate): string | undefined {
  if (!s.keyUsage?.has(KEY_USAGE.nonRepudiation)) return "the signer certificate's keyUsage lacks nonRepudiation (contentCommitment): not a signature certificate (署名用電子証明書)";
  if (!s.policies.some((p) => p === POLICY_OID.signature || p === POLICY_OID.signatureTest)) {
    return `the signer certificate does not carry the JPKI signature policy ${POLICY_OID.signature}`;
  }
  return undefined;
}

/** Verifies a CMS SignedData (RFC 5652 §5.6) and its signer's certificate path (RFC 5280 §6). */
export function verifySignedData(params: VerifySignedDataParams): SignedDataResult {
  checkParams(params);
  let sd: SignedData;
  try {
    sd = parseSignedData(pemOrDer(params.signature, CMS_LABELS, "CMS signature"));
  } catch (e) {
    return { status: "malformed", reason: "cms-malformed", message: `the signature is not a DER/PEM CMS SignedData: ${(e as Error).message}` };
  }
  if (sd.signerInfos.length !== 1) {
    return { status: "malformed", reason: "signer-count", message: `expected exactly one SignerInfo, found ${sd.signerInfos.length}` };
  }
  const si = sd.signerInfos[0]!;
  let attrs: Map<string, Tlv> | undefined;
  let signingTime: Date | undefined;
  try {
    attrs = si.signedAttrs ? attributes(si.signedAttrs) : undefined;
    const st = attrs?.get(CMS_OID.signingTime);
    signingTime = st ? decodeTime(st) : undefined;
  } catch (e) {
    return { status: "malformed", reason: "signed-attributes-malformed", message: `the signed attributes cannot be decoded: ${(e as Error).message}` };
  }
  const base = { ...(signingTime ? { signingTime } : {}), ...(sd.eContent ? { content: sd.eContent } : {}) };

  // Algorithms: exactly SHA-256 with RSA PKCS#1 v1.5.
  let digest: ReturnType<typeof algorithm>, sig: ReturnType<typeof algorithm>;
  try {
    digest = algorithm(si.digestAlgorithm);
    sig = algorithm(si.signatureAlgorithm);
  } catch (e) {
    return { ...base, status: "malformed", reason: "cms-malformed", message: `an AlgorithmIdentifier cannot be decoded: ${(e as Error).message}` };
  }
  if (digest.oid !== ALG_OID.sha256 || !digest.paramsOk) {
    return { ...base, status: "unsupported-algorithm", reason: "digest-algorithm", message: `digest algorithm ${digest.oid} is not accepted: only SHA-256 (${ALG_OID.sha256})` };
  }
  if (!SIGNATURE_ALGORITHMS.has(sig.oid) || !sig.paramsOk) {
    return { ...base, status: "unsupported-algorithm", reason: "signature-algorithm", message: `signature algorithm ${sig.oid} is not accepted: only RSA PKCS#1 v1.5 with SHA-256` };
  }

  // The content and its digest.
  const content = sd.eContent ?? (params.content ? Buffer.from(params.content) : undefined);
  if (sd.eContent && params.content && !sd.eContent.equals(Buffer.from(params.content))) {
    return { ...base, status: "digest-mismatch", reason: "content-differs", message: "the signature is attached and its content differs from the document given" };
  }
  if (!content) return { ...base, status: "content-missing", reason: "content-missing", message: "the signature is detached: give the signed document" };
  const contentDigest = createHash("sha256").update(content).digest();
  let signed: Buffer;
  if (attrs && si.signedAttrs) {
    const ct = attrs.get(CMS_OID.contentType);
    const md = attrs.get(CMS_OID.messageDigest);
    if (!ct || !md) return { ...base, status: "malformed", reason: "signed-attributes-missing", message: "the signed attributes lack content-type or message-digest (§5.3)" };
    try {
      if (decodeOid(ct) !== sd.eContentType) return { ...base, status: "malformed", reason: "content-type-mismatch", message: "the content-type attribute differs from eContentType (§11.1)" };
      if (!octets(md).equals(contentDigest)) return { ...base, status: "digest-mismatch", reason: "message-digest-mismatch", message: "the document's SHA-256 differs from the message-digest attribute: the document was changed or is not the one signed" };
    } catch (e) {
      return { ...base, status: "malformed", reason: "signed-attributes-malformed", message: `the signed attributes cannot be decoded: ${(e as Error).message}` };
    }
    // §5.4: the signature covers the DER of SET OF Attribute, i.e. the [0] IMPLICIT tag replaced by SET.
    signed = Buffer.from(si.signedAttrs.der);
    signed[0] = 0x31;
  } else {
    if (sd.eContentType !== CMS_OID.data) return { ...base, status: "malformed", reason: "signed-attributes-missing", message: "signed attributes are required when the content type is not id-data (§5.3)" };
    signed = content;
  }

  // The signer certificate, among the CMS's certificates and the intermediates.
  const pool = [...sd.certificates, ...(params.intermediates ?? [])].flatMap((d) => {
    try {
      return [parseCertificate(d)];
    } catch {
      return [];
    }
  });
  const sid = si.sid;
  const signer = pool.find((c) =>
    "ski" in sid ? c.subjectKeyId?.equals(sid.ski) : c.serialHex === sid.serialHex && safeNameEquals(c, sid.issuer),
  );
  if (!signer) return { ...base, status: "signer-not-found", reason: "signer-not-found", message: "no certificate in the signature or the intermediates matches the SignerInfo's sid" };
  const withSigner = { ...base, signer: signer.der, signerSerial: signer.serialHex, signerSubject: formatName(signer.subject), signatureValue: si.signature };
  if (signer.publicKey.algorithm !== ALG_OID.rsaEncryption) {
    return { ...withSigner, status: "unsupported-algorithm", reason: "signer-key", message: "the signer's key is not RSA" };
  }
  let ok = false;
  try {
    ok = verifyWith("sha256", signed, publicKeyObject(signer.publicKey), si.signature);
  } catch {
    ok = false;
  }
  if (!ok) return { ...withSigner, status: "bad-signature", reason: "signature-invalid", message: "the signature over the signed attributes does not verify with the signer's public key" };

  // Purpose, then the path at T and at R.
  if (params.purpose !== undefined) {
    const why = (params.purpose === "signature" ? signaturePurpose : params.purpose)(signerView(signer));
    if (why !== undefined) return { ...withSigner, status: "wrong-purpose", reason: "wrong-purpose", message: why };
  }
  const now = params.at ?? new Date();
  // A signature cannot have been made after it is checked: a signing time past R is a clock gone wrong or a claim
  // forged ahead, and accepting it would validate the path at a time nobody has seen yet (a certificate not yet
  // revoked then, whatever the CRLs of R say).
  if (signingTime && signingTime.getTime() > now.getTime() + (params.signingTimeSkewMs ?? 0)) {
    return {
      ...withSigner,
      status: "not-yet-valid",
      reason: "signing-time-in-future",
      message: `the signing time ${signingTime.toISOString()} is later than the verification time ${now.toISOString()}: a signature cannot have been made after it is verified (the signer's clock is wrong, or the time was set ahead)`,
    };
  }
  const t = signingTime ?? now;
  const anchors = params.trustAnchors;
  const intermediates = pool.filter((c) => c !== signer).map((c) => c.der);
  const chain = buildPath({ endEntity: signer.der, intermediates, trustAnchors: anchors }) ?? [signer.der];
  const common = { trustAnchors: anchors, chain, certificates: intermediates, crls: params.crls ?? [], crlIndex: params.crlIndex };
  const atT = validatePath({ ...common, at: t, revocation: t.getTime() === now.getTime() ? params.revocation : "off" });
  if (atT.status !== "valid") {
    return { ...withSigner, validatedAt: t, status: atT.status, reason: atT.reason, message: `at the signing time ${t.toISOString()}: ${atT.message}` };
  }
  if (t.getTime() !== now.getTime() && (params.revocation ?? "hard-fail") !== "off") {
    const atR = validatePath({ ...common, at: now, revocation: params.revocation });
    if (atR.status !== "valid") {
      return { ...withSigner, validatedAt: t, status: atR.status, reason: atR.reason, message: `at the verification time ${now.toISOString()}: ${atR.message}` };
    }
  }
  return { ...withSigner, validatedAt: t, status: "valid", message: "the signature is valid" };
}

function safeNameEquals(c: Certificate, issuer: Tlv): boolean {
  try {
    return nameEquals(c.issuer, parseName(issuer));
  } catch {
    return false;
  }
}
