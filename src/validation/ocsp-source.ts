/**
 * OCSP as a revocation source, RFC 6960 (the client side; the responder is src/ocsp/): build a request about
 * one certificate, send it to the responder the certificate names in authorityInfoAccess (§4.2.2.1 of RFC 5280)
 * or to a configured one, and accept the answer only after the checks of RFC 6960 §3.2:
 *
 *   1. responseStatus successful, a BasicOCSPResponse (§4.2.1);
 *   2. the signature verifies with the certificate issuer's key, or with a delegated responder's certificate
 *      (§4.2.2.2) issued by that issuer, carrying id-kp-OCSPSigning, valid at the validation time;
 *   3. a SingleResponse whose CertID is the one asked about (hash algorithm, issuer name and key hashes, serial);
 *   4. the request's nonce echoed (RFC 8954) — a responder that leaves it out may be replaying an old answer;
 *   5. thisUpdate not after the validation time (a small skew allowed), nextUpdate not before it; and producedAt
 *      not after it either (§4.2.2.1: the time the responder signed): RFC 6960 asks nothing of producedAt, but a
 *      signature dated in the future comes from a responder whose clock, and so whose thisUpdate, is not to be
 *      trusted, or from someone who made the answer to outlast its time.
 *
 * The answer is a value: good, revoked (time and reason), unknown (the responder does not know the certificate),
 * or no-answer with a stable problem code. Network failures, HTTP errors and bad bytes are no-answers, never
 * exceptions; only wrong configuration throws (JpkiError ERR_USAGE), when the client is built.
 *
 * The engine (validate.ts) stays synchronous: answers are fetched first (`OcspClient.gather`) and handed to
 * `validatePath`, which matches each to a certificate of the path by CertID — so an answer counts only for
 * the issuer key the path itself validated.
 */
import { createHash, randomBytes } from "node:crypto";
import { reasonName, type CrlReasonName } from "../crl/reason.js";
import { JpkiError } from "../errors.js";
import { TOKEN_WITHHELD, originOf, tokenGoesTo, tokenOriginSet } from "./token-origins.js";
import { formatDuration } from "../pki/clock.js";
import { explicit, nul, octetString, oid, seq, tlv } from "../pki/der.js";
import { assertDer } from "../pki/der-strict.js";
import { EXT_OID, KP_OID } from "../profile/oids.js";
import { decodeOid, decodeTime, expectTag, items, tlvAt, contextNumber, type Tlv } from "./asn1.js";
import { KEY_USAGE, RECOGNISED_EXTENSIONS, parseCertificate, type Certificate } from "./certificate.js";
import { nameEquals, parseName } from "./name.js";
import { verifySignature, workingKeyOf } from "./signature.js";

/** The CertID hash algorithms this client sends: SHA-1 (RFC 5019 §2.1.1, what every responder answers) or SHA-256. */
export const OCSP_CERT_ID_HASHES = { sha1: "1.3.14.3.2.26", sha256: "2.16.840.1.101.3.4.2.1" } as const;
export type OcspCertIdHash = keyof typeof OCSP_CERT_ID_HASHES;

const OID_NONCE = "1.3.6.1.5.5.7.48.1.2";
const OID_BASIC = "1.3.6.1.5.5.7.48.1.1";
const OID_AD_OCSP = "1.3.6.1.5.5.7.48.1";
const OCSP_NO_CHECK = "1.3.6.1.5.5.7.48.1.5";

/** RFC 6960 §4.2.1 OCSPResponseStatus by number. */
const RESPONSE_STATUS_NAMES: Readonly<Record<number, string>> = { 0: "successful", 1: "malformedRequest", 2: "internalError", 3: "tryLater", 5: "sigRequired", 6: "unauthorized" };

/** Why an OCSP exchange gave no usable answer: stable strings, one per check of RFC 6960 §3.2 and the transport. */
export const OCSP_PROBLEMS = {
  "no-url": "the certificate names no OCSP responder (authorityInfoAccess) and none is configured",
  "no-issuer": "the certificate's issuer is not known, so no CertID can be built",
  network: "the responder could not be reached",
  timeout: "the responder did not answer in time",
  "http-status": "the responder answered with an HTTP error",
  "malformed-response": "the answer is not a DER OCSPResponse with a BasicOCSPResponse (RFC 6960 §4.2.1)",
  "response-status": "the responder refused (responseStatus not successful)",
  "signature-invalid": "the response's signature does not verify with the issuer's key or a delegated responder's (§3.2(2))",
  "responder-not-authorised": "the response is signed by a key that is neither the issuer's nor a delegated responder's it certified with id-kp-OCSPSigning (§4.2.2.2)",
  "cert-id-mismatch": "the response says nothing about the certificate asked about (§3.2(1))",
  "nonce-mismatch": "the response does not echo the request's nonce (RFC 8954)",
  "not-yet-valid": "the response's thisUpdate is after the validation time (§3.2(5))",
  stale: "the response's nextUpdate is before the validation time (§3.2(6))",
  "produced-in-future": "the response's producedAt is after the validation time (§4.2.2.1: a responder clock ahead, or a time made up)",
} as const;
export type OcspProblem = keyof typeof OCSP_PROBLEMS;

/**
 * Which of a response's times put it outside the validation time, and by how much: for the time problems
 * (not-yet-valid, stale, produced-in-future), so a caller can say which clock to look at.
 */
export interface OcspTimeFault {
  readonly field: "thisUpdate" | "nextUpdate" | "producedAt";
  /** the time the response carries */
  readonly value: Date;
  /** the validation time it was judged at */
  readonly at: Date;
  /**
   * how far `value` lies from `at`, ms: ahead of it (thisUpdate, producedAt), or behind it (nextUpdate; thisUpdate
   * when there is no nextUpdate). Ahead, beyond `skewMs`.
   */
  readonly offsetMs: number;
  readonly skewMs: number;
}

/** The CertID fields an answer is about (RFC 6960 §4.1.1), hex: what the engine matches path certificates with. */
export interface OcspCertId {
  readonly hash: OcspCertIdHash;
  readonly issuerNameHash: string;
  readonly issuerKeyHash: string;
  /** the serial number's contents octets, hex (as Certificate.serialHex) */
  readonly serial: string;
}

interface Answered {
  readonly url: string;
  readonly certId: OcspCertId;
  readonly producedAt: Date;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  /** who signed: the certificate's issuer itself, or a delegated responder (§4.2.2.2) */
  readonly signedBy: "issuer" | "delegated-responder";
}

/** What one OCSP exchange came to. */
export type OcspOutcome =
  | (Answered & { readonly status: "good" })
  | (Answered & { readonly status: "revoked"; readonly revocation: { readonly time: Date; readonly reason: CrlReasonName } })
  /** the responder does not know the certificate (§2.2 "unknown") */
  | (Answered & { readonly status: "unknown" })
  | { readonly status: "no-answer"; readonly url?: string; readonly certId?: OcspCertId; readonly problem: OcspProblem; readonly detail: string; readonly time?: OcspTimeFault };

/** One certificate to ask about, with its issuer's certificate (the key the CertID and the signature check use). */
export interface OcspQuery {
  readonly certificate: Uint8Array;
  readonly issuer: Uint8Array;
}

export interface OcspClientParams {
  /** ask this responder instead of the one each certificate names (authorityInfoAccess id-ad-ocsp) */
  readonly url?: string;
  /** sent as `Authorization: Bearer <token>` (jpki serve answers registered verifiers, 署名検証者, only) */
  readonly bearerToken?: string;
  /**
   * the origins (`https://host[:port]`) the token is sent to; a responder on any other origin (one a certificate
   * names) is asked without it (token-origins.ts). Default: the origin of `url`; without `url` there is none, and a
   * `bearerToken` without either is refused (ERR_USAGE). Before, the default was every origin: the token went to
   * whatever responder a certificate's AIA named.
   */
  readonly tokenOrigins?: readonly string[];
  /** injected for tests; default globalThis.fetch */
  readonly fetch?: typeof globalThis.fetch;
  /**
   * give up on a request after this long, its answer read in full (default 10 s). An injected `fetch` is held to it
   * too: it is handed the timer's signal, and one that does not heed it (a hung transport) is not waited for.
   */
  readonly timeoutMs?: number;
  /** CertID hash (default sha1, which RFC 5019 responders must answer) */
  readonly hash?: OcspCertIdHash;
  /** send a nonce and require it echoed (default true) */
  readonly nonce?: boolean;
  /** how far thisUpdate may lie after the validation time (clock skew between us and the responder; default 5 min) */
  readonly skewMs?: number;
  /** the nonce's bytes; injected for tests (default 32 random octets, RFC 8954's upper bound) */
  readonly randomNonce?: () => Buffer;
}

/** The largest OCSP response read: one certificate's answer with its responder certificate is ~2 KB. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const URL_SCHEMES = /^https?:\/\//i;

/** The subjectPublicKey BIT STRING's value (no unused-bits octet): what issuerKeyHash and byKey hash (§4.1.1). */
function keyBits(c: Certificate): Buffer {
  return c.publicKey.key;
}

function certIdOf(cert: Certificate, issuer: Certificate, hash: OcspCertIdHash): OcspCertId {
  const h = (b: Buffer) => createHash(hash).update(b).digest("hex");
  // issuerNameHash hashes the DER of the issuer's name as this certificate carries it (§4.1.1)
  return { hash, issuerNameHash: h(cert.issuer.der), issuerKeyHash: h(keyBits(issuer)), serial: cert.serialHex };
}

/** The CertID of `cert` issued by `issuer` (both parsed), for matching answers to a path's certificates. */
export function ocspCertId(cert: Certificate, issuer: Certificate, hash: OcspCertIdHash = "sha1"): OcspCertId {
  return certIdOf(cert, issuer, hash);
}

/** The http(s) OCSP responder URLs a certificate names in authorityInfoAccess (RFC 5280 §4.2.2.1). */
export function ocspUrlsOf(cert: Certificate): string[] {
  const aia = cert.extensions.get(EXT_OID.authorityInfoAccess);
  if (!aia) return [];
  try {
    return items(tlvAt(aia.value)).flatMap((ad) => {
      const [method, location] = items(ad);
      if (!method || !location || decodeOid(method) !== OID_AD_OCSP || location.tag !== 0x86) return [];
      const uri = location.content.toString("latin1");
      return URL_SCHEMES.test(uri) ? [uri] : [];
    });
  } catch {
    return [];
  }
}

/**
 * A DER OCSPRequest (RFC 6960 §4.1.1) about one certificate: one Request, no requestor name, no signature,
 * the nonce (when given) as requestExtensions: extnValue = OCTET STRING { OCTET STRING nonce } (RFC 8954 §2.1).
 */
export function buildOcspRequest(p: { readonly certId: OcspCertId; readonly nonce?: Buffer }): Buffer {
  const id = p.certId;
  const certId = seq(
    seq(oid(OCSP_CERT_ID_HASHES[id.hash]), nul()),
    octetString(Buffer.from(id.issuerNameHash, "hex")),
    octetString(Buffer.from(id.issuerKeyHash, "hex")),
    tlv(0x02, Buffer.from(id.serial, "hex")),
  );
  const ext = p.nonce ? [explicit(2, seq(seq(oid(OID_NONCE), octetString(octetString(p.nonce)))))] : [];
  return seq(seq(seq(seq(certId)), ...ext));
}

class NoAnswer extends Error {
  constructor(
    readonly problem: OcspProblem,
    readonly detail: string,
    readonly time?: OcspTimeFault,
  ) {
    super(detail);
  }
}

const no = (problem: OcspProblem, detail: string = OCSP_PROBLEMS[problem]): never => {
  throw new NoAnswer(problem, detail);
};
const timeNo = (problem: OcspProblem, detail: string, time: OcspTimeFault): never => {
  throw new NoAnswer(problem, detail, time);
};

export interface CheckOcspResponseParams {
  /** the DER OCSPResponse as received */
  readonly response: Uint8Array;
  /** the issuer of the certificate asked about: its key signs, or certifies the responder that signs */
  readonly issuer: Certificate;
  readonly certId: OcspCertId;
  /** the nonce sent; undefined when none was */
  readonly nonce?: Buffer;
  /** the validation time */
  readonly at: Date;
  readonly skewMs: number;
  /** where it came from, for the outcome */
  readonly url: string;
}

/**
 * RFC 6960 §3.2's checks on a response (see the module comment). Pure and synchronous; never throws: a response
 * that fails any check is a no-answer naming the check.
 */
export function checkOcspResponse(p: CheckOcspResponseParams): OcspOutcome {
  try {
    return check(p);
  } catch (e) {
    if (e instanceof NoAnswer) return { status: "no-answer", url: p.url, certId: p.certId, problem: e.problem, detail: e.detail, ...(e.time ? { time: e.time } : {}) };
    return { status: "no-answer", url: p.url, certId: p.certId, problem: "malformed-response", detail: `${OCSP_PROBLEMS["malformed-response"]}: ${(e as Error).message}` };
  }
}

function check(p: CheckOcspResponseParams): OcspOutcome {
  const der = Buffer.from(p.response);
  try {
    assertDer(der);
  } catch (e) {
    no("malformed-response", `${OCSP_PROBLEMS["malformed-response"]}: ${(e as Error).message}`);
  }
  const [statusT, bytesT] = items(expectTag(tlvAt(der), 0x30, "OCSPResponse"));
  const status = expectTag(statusT, 0x0a, "responseStatus").content;
  const code = status.length === 1 ? status[0]! : -1;
  if (code !== 0) no("response-status", `the responder answered ${RESPONSE_STATUS_NAMES[code] ?? `status ${code}`}`);
  const [typeT, basicOctets] = items(expectTag(items(expectTag(bytesT, 0xa0, "responseBytes"))[0], 0x30, "ResponseBytes"));
  if (decodeOid(expectTag(typeT, 0x06, "responseType")) !== OID_BASIC) no("malformed-response", "the response is not a BasicOCSPResponse (id-pkix-ocsp-basic)");
  const basic = tlvAt(expectTag(basicOctets, 0x04, "response").content);
  const [tbsT, sigAlg, sigT, certsT] = items(expectTag(basic, 0x30, "BasicOCSPResponse"));
  const tbs = expectTag(tbsT, 0x30, "ResponseData");
  const signature = expectTag(sigT, 0x03, "signature").content.subarray(1);
  const fields = items(tbs);
  let i = 0;
  if (fields[i]?.tag === 0xa0) i++; // version v1
  const responderId = fields[i++];
  const producedAt = decodeTime(expectTag(fields[i++], 0x18, "producedAt"));
  const responses = items(expectTag(fields[i++], 0x30, "responses"));
  const responseExts = fields[i]?.tag === 0xa1 ? extensionsOf(fields[i++]!) : new Map<string, Ext>();
  if (i !== fields.length) no("malformed-response", "unexpected fields in ResponseData");

  // §3.2(2)–(4): who signed, and is that key entitled to answer for this issuer
  const certs = certsT ? items(expectTag(items(expectTag(certsT, 0xa0, "certs"))[0], 0x30, "certs")) : [];
  const signer = responderOf(responderId, certs, p.issuer);
  if (!verifySignature(tbs.der, expectTag(sigAlg, 0x30, "signatureAlgorithm"), signature, workingKeyOf(signer.key.publicKey))) no("signature-invalid");

  // §3.2(1): the answer about our CertID
  const mine = responses.map(singleResponse).find((r) => sameCertId(r.certId, p.certId));
  if (!mine) no("cert-id-mismatch");
  const single = mine!;

  // RFC 8954: the nonce echoed, byte for byte
  if (p.nonce) {
    const echoed = responseExts.get(OID_NONCE);
    if (!echoed) no("nonce-mismatch", "the response carries no nonce: it may be a replayed or pre-produced answer (RFC 8954)");
    if (!echoed!.value.equals(octetString(p.nonce))) no("nonce-mismatch", "the response's nonce is not the one sent (RFC 8954)");
  }
  for (const [id, e] of [...responseExts, ...single.extensions]) {
    if (e.critical && id !== OID_NONCE) no("malformed-response", `the response carries an unknown critical extension ${id}`);
  }

  // §3.2(5)–(6), at the validation time (as CRLs are: crl-check.ts `current`); producedAt as the module comment says
  const fault = (field: OcspTimeFault["field"], value: Date, offsetMs: number): OcspTimeFault => ({ field, value, at: p.at, offsetMs, skewMs: p.skewMs });
  const skew = `more than the ${formatDuration(p.skewMs)} of clock skew allowed`;
  const ahead = single.thisUpdate.getTime() - p.at.getTime();
  if (ahead > p.skewMs) {
    timeNo("not-yet-valid", `the response's thisUpdate ${single.thisUpdate.toISOString()} is ${formatDuration(ahead)} after the validation time ${p.at.toISOString()}, ${skew}`, fault("thisUpdate", single.thisUpdate, ahead));
  }
  if (single.nextUpdate) {
    const behind = p.at.getTime() - single.nextUpdate.getTime();
    if (behind > 0) timeNo("stale", `the response's nextUpdate ${single.nextUpdate.toISOString()} is ${formatDuration(behind)} before the validation time ${p.at.toISOString()}`, fault("nextUpdate", single.nextUpdate, behind));
  } else {
    // without nextUpdate "newer information is always available" (§4.2.2.1): current only at thisUpdate (± skew)
    const behind = p.at.getTime() - single.thisUpdate.getTime();
    if (behind > p.skewMs) {
      timeNo("stale", `the response carries no nextUpdate, so it is current only at its thisUpdate ${single.thisUpdate.toISOString()}, which is ${formatDuration(behind)} before the validation time ${p.at.toISOString()}, ${skew}`, fault("thisUpdate", single.thisUpdate, behind));
    }
  }
  const early = producedAt.getTime() - p.at.getTime();
  if (early > p.skewMs) {
    timeNo("produced-in-future", `the response's producedAt ${producedAt.toISOString()} is ${formatDuration(early)} after the validation time ${p.at.toISOString()}, ${skew}`, fault("producedAt", producedAt, early));
  }
  // the delegated responder's certificate at the validation time (§4.2.2.2)
  if (signer.delegated && (signer.key.notBefore.getTime() > p.at.getTime() + p.skewMs || signer.key.notAfter < p.at)) {
    no("responder-not-authorised", "the delegated responder's certificate is not valid at the validation time");
  }

  const base: Answered = {
    url: p.url,
    certId: p.certId,
    producedAt,
    thisUpdate: single.thisUpdate,
    ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}),
    signedBy: signer.delegated ? "delegated-responder" : "issuer",
  };
  if (single.status.kind === "revoked") return { ...base, status: "revoked", revocation: { time: single.status.time, reason: reasonName(single.status.reason) ?? "unspecified" } };
  return { ...base, status: single.status.kind };
}

interface Ext {
  readonly critical: boolean;
  readonly value: Buffer;
}

function extensionsOf(wrapper: Tlv): Map<string, Ext> {
  const out = new Map<string, Ext>();
  for (const e of items(expectTag(items(wrapper)[0], 0x30, "Extensions"))) {
    const parts = items(e);
    const id = decodeOid(expectTag(parts[0], 0x06, "extnID"));
    const critical = parts.length === 3 && parts[1]!.tag === 0x01 && parts[1]!.content[0] !== 0;
    if (out.has(id)) no("malformed-response", `extension ${id} appears twice`);
    out.set(id, { critical, value: expectTag(parts[parts.length - 1], 0x04, "extnValue").content });
  }
  return out;
}

type SingleStatus = { kind: "good" } | { kind: "unknown" } | { kind: "revoked"; time: Date; reason: number };

function singleResponse(t: Tlv): { certId: OcspCertId | undefined; status: SingleStatus; thisUpdate: Date; nextUpdate?: Date; extensions: Map<string, Ext> } {
  const f = items(expectTag(t, 0x30, "SingleResponse"));
  const [algT, nameHash, keyHash, serial] = items(expectTag(f[0], 0x30, "certID"));
  const alg = decodeOid(expectTag(items(expectTag(algT, 0x30, "hashAlgorithm"))[0], 0x06, "hashAlgorithm"));
  const hash = (Object.keys(OCSP_CERT_ID_HASHES) as OcspCertIdHash[]).find((h) => OCSP_CERT_ID_HASHES[h] === alg);
  const certId = hash
    ? {
        hash,
        issuerNameHash: expectTag(nameHash, 0x04, "issuerNameHash").content.toString("hex"),
        issuerKeyHash: expectTag(keyHash, 0x04, "issuerKeyHash").content.toString("hex"),
        serial: expectTag(serial, 0x02, "serialNumber").content.toString("hex"),
      }
    : undefined;
  const st = f[1];
  let status: SingleStatus;
  if (st?.tag === 0x80) status = { kind: "good" };
  else if (st?.tag === 0x82) status = { kind: "unknown" };
  else if (st?.tag === 0xa1) {
    const [time, reasonT] = items(st);
    const reason = reasonT ? expectTag(items(expectTag(reasonT, 0xa0, "revocationReason"))[0], 0x0a, "CRLReason").content[0] ?? 0 : 0;
    status = { kind: "revoked", time: decodeTime(expectTag(time, 0x18, "revocationTime")), reason };
  } else return no("malformed-response", "certStatus is not good [0], revoked [1] or unknown [2]");
  const thisUpdate = decodeTime(expectTag(f[2], 0x18, "thisUpdate"));
  let k = 3;
  let nextUpdate: Date | undefined;
  if (f[k]?.tag === 0xa0) nextUpdate = decodeTime(expectTag(items(f[k++]!)[0], 0x18, "nextUpdate"));
  const extensions = f[k]?.tag === 0xa1 ? extensionsOf(f[k++]!) : new Map<string, Ext>();
  if (k !== f.length) no("malformed-response", "unexpected fields in SingleResponse");
  return { certId, status, thisUpdate, nextUpdate, extensions };
}

function sameCertId(a: OcspCertId | undefined, b: OcspCertId): boolean {
  return !!a && a.hash === b.hash && a.issuerNameHash === b.issuerNameHash && a.issuerKeyHash === b.issuerKeyHash && a.serial === b.serial;
}

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } — KeyHash is SHA-1 of the key's BIT STRING value. */
function responderMatches(id: Tlv, c: Certificate): boolean {
  const n = contextNumber(id);
  if (n === 1) return nameEquals(parseName(items(id)[0]!), c.subject);
  if (n === 2) return expectTag(items(id)[0], 0x04, "KeyHash").content.equals(createHash("sha1").update(keyBits(c)).digest());
  return no("malformed-response", "responderID is neither byName [1] nor byKey [2]");
}

/**
 * The key that must have signed: the issuer itself when the ResponderID names it; else a certificate of `certs`
 * that the ResponderID names, issued and signed by the issuer, with id-kp-OCSPSigning (RFC 6960 §4.2.2.2) and
 * digitalSignature when keyUsage is present, and no critical extension we do not know.
 */
function responderOf(id: Tlv | undefined, certs: readonly Tlv[], issuer: Certificate): { key: Certificate; delegated: boolean } {
  if (!id) return no("malformed-response", "responderID is missing");
  if (responderMatches(id, issuer)) return { key: issuer, delegated: false };
  for (const t of certs) {
    let c: Certificate;
    try {
      c = parseCertificate(t.der);
    } catch {
      continue;
    }
    if (!responderMatches(id, c)) continue;
    if (!nameEquals(c.issuer, issuer.subject) || !verifySignature(c.tbs, c.signatureAlgorithm, c.signature, workingKeyOf(issuer.publicKey))) {
      no("responder-not-authorised", "the responder's certificate was not issued by the certificate's issuer");
    }
    if (!extendedKeyUsage(c).includes(KP_OID.ocspSigning)) no("responder-not-authorised", "the responder's certificate lacks id-kp-OCSPSigning (RFC 6960 §4.2.2.2)");
    if (c.keyUsage && !c.keyUsage.has(KEY_USAGE.digitalSignature)) no("responder-not-authorised", "the responder's certificate's keyUsage lacks digitalSignature");
    for (const e of c.extensions.values()) {
      if (e.critical && !RECOGNISED_EXTENSIONS.has(e.oid) && e.oid !== OCSP_NO_CHECK) no("responder-not-authorised", `the responder's certificate has an unknown critical extension ${e.oid}`);
    }
    return { key: c, delegated: true };
  }
  return no("responder-not-authorised", "the response is signed neither by the certificate's issuer nor by a responder certificate it sent");
}

function extendedKeyUsage(c: Certificate): string[] {
  const e = c.extensions.get(EXT_OID.extKeyUsage);
  return e ? items(tlvAt(e.value)).map(decodeOid) : [];
}

/**
 * Asks OCSP responders about certificates. Holds configuration only (no cache: an OCSP answer is asked for
 * when it is needed, with a fresh nonce); the configuration is checked when the client is built.
 */
export class OcspClient {
  readonly #url?: string;
  readonly #token?: string;
  readonly #tokenOrigins: ReadonlySet<string>;
  readonly #fetch: typeof globalThis.fetch;
  readonly #timeoutMs: number;
  readonly #hash: OcspCertIdHash;
  readonly #nonce: boolean;
  readonly #skewMs: number;
  readonly #random: () => Buffer;

  constructor(params: OcspClientParams = {}) {
    const timeout = params.timeoutMs ?? 10_000;
    const skew = params.skewMs ?? 5 * 60_000;
    if (!Number.isFinite(timeout) || timeout <= 0) throw new JpkiError("ERR_USAGE", "OcspClient: timeoutMs must be a number of milliseconds > 0");
    if (!Number.isFinite(skew) || skew < 0) throw new JpkiError("ERR_USAGE", "OcspClient: skewMs must be a number of milliseconds ≥ 0");
    if (params.url !== undefined && !URL_SCHEMES.test(params.url)) throw new JpkiError("ERR_USAGE", "OcspClient: url must be an http:// or https:// URL of an OCSP responder");
    if (params.hash !== undefined && !(params.hash in OCSP_CERT_ID_HASHES)) throw new JpkiError("ERR_USAGE", 'OcspClient: hash must be "sha1" or "sha256"');
    if (params.bearerToken !== undefined && !/^[\x21-\x7e]+$/.test(params.bearerToken)) {
      throw new JpkiError("ERR_USAGE", "OcspClient: bearerToken must be the token `jpki verifier add` printed (visible ASCII)");
    }
    this.#url = params.url;
    this.#token = params.bearerToken;
    if (params.bearerToken !== undefined && params.url === undefined && params.tokenOrigins === undefined) {
      // the token would go nowhere (it goes to no origin a certificate alone names): a set-up that cannot be meant
      throw new JpkiError("ERR_USAGE", "OcspClient: a bearerToken needs the url of your jpki serve's responder, or tokenOrigins naming its origin (https://host[:port]); the responders certificates name are asked without it");
    }
    const own = params.url === undefined ? undefined : originOf(params.url);
    this.#tokenOrigins = tokenOriginSet(params.tokenOrigins, "OcspClient: tokenOrigins") ?? new Set(own ? [own] : []);
    this.#fetch = params.fetch ?? globalThis.fetch;
    this.#timeoutMs = timeout;
    this.#hash = params.hash ?? "sha1";
    this.#nonce = params.nonce ?? true;
    this.#skewMs = skew;
    this.#random = params.randomNonce ?? (() => randomBytes(32));
  }

  /** The status of one certificate at `at`. Never throws for network or bad-input problems: those are no-answers. */
  async check(query: OcspQuery, at: Date): Promise<OcspOutcome> {
    let cert: Certificate, issuer: Certificate;
    try {
      cert = parseCertificate(query.certificate);
      issuer = parseCertificate(query.issuer);
    } catch {
      return { status: "no-answer", problem: "no-issuer", detail: "the certificate or its issuer could not be decoded" };
    }
    const certId = certIdOf(cert, issuer, this.#hash);
    const url = this.#url ?? ocspUrlsOf(cert)[0];
    if (!url) return { status: "no-answer", certId, problem: "no-url", detail: OCSP_PROBLEMS["no-url"] };
    const nonce = this.#nonce ? this.#random() : undefined;
    const body = buildOcspRequest({ certId, nonce });
    const headers: Record<string, string> = { "content-type": "application/ocsp-request", accept: "application/ocsp-response" };
    const withheld = this.#token !== undefined && !tokenGoesTo(this.#tokenOrigins, url);
    if (this.#token && !withheld) headers.authorization = `Bearer ${this.#token}`;
    const failed = (problem: OcspProblem, detail: string): OcspOutcome => ({ status: "no-answer", url, certId, problem, detail });
    // One timer for the whole exchange, request and answer's body, raced as well as signalled: a fetch injected by the
    // caller (a test's, or any other) may not heed the signal, and `jpki provider enrol --ocsp` must not hang on it.
    // The provider's endpointFetch heeds it: its retries end with the exchange.
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new DOMException(`no answer within ${this.#timeoutMs} ms`, "TimeoutError")), this.#timeoutMs);
    const expired = new Promise<never>((_, reject) => ctl.signal.addEventListener("abort", () => reject(ctl.signal.reason as Error), { once: true }));
    let res: Response | undefined;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    const exchange = async (): Promise<OcspOutcome | Buffer> => {
      try {
        // Redirects are not followed: the request carries the verifier's bearer token, which belongs to the responder
        // it was configured for and no other host; and a POST body cannot be sent twice (a 307 failed with "detached
        // ArrayBuffer"). A 3xx is an answer of the wrong kind, reported as such, as the CRL follow does.
        res = await this.#fetch(url, { method: "POST", headers, body, redirect: "manual", signal: ctl.signal });
      } catch (e) {
        const err = e as Error;
        if (ctl.signal.aborted || err.name === "TimeoutError" || err.name === "AbortError") return failed("timeout", `POST ${url}: no answer within ${this.#timeoutMs} ms`);
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        return failed("network", `POST ${url}: ${cause?.code ?? cause?.message ?? err.message}`);
      }
      if (res.redirected) {
        // a fetch of the caller's that followed although told not to: the token went wherever the redirect led
        await res.body?.cancel().catch(() => undefined);
        return failed("http-status", `POST ${url}: the fetch given followed a redirect itself although asked not to (redirect: "manual"), with the verifier's token: give OcspClient a fetch that honours it`);
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        return failed("http-status", `POST ${url}: HTTP ${res.status}${res.status === 401 && withheld ? TOKEN_WITHHELD : ""}`);
      }
      // Read up to the bound and no further: the whole body first (arrayBuffer) let a responder gone wrong, or anyone
      // on its path, pour gigabytes into memory for as long as the timeout ran before the size was even looked at.
      const chunks: Buffer[] = [];
      let n = 0;
      try {
        reader = res.body?.getReader();
        for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
          n += r.value.length;
          if (n > MAX_RESPONSE_BYTES) {
            await reader!.cancel().catch(() => undefined);
            return failed("malformed-response", `POST ${url}: the answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
          }
          chunks.push(Buffer.from(r.value));
        }
      } catch (e) {
        if (ctl.signal.aborted) return failed("timeout", `POST ${url}: the answer did not come in full within ${this.#timeoutMs} ms`);
        return failed("network", `POST ${url}: ${(e as Error).message}`);
      }
      return Buffer.concat(chunks, n);
    };
    let der: OcspOutcome | Buffer;
    try {
      der = await Promise.race([exchange(), expired]);
    } catch {
      // the timer won the race: the fetch or the body did not heed the signal; whatever it still holds is let go,
      // without waiting on a cancel that may not heed us either
      void (reader ?? res?.body)?.cancel().catch(() => undefined);
      return failed("timeout", `POST ${url}: ${res ? "the answer did not come in full" : "no answer"} within ${this.#timeoutMs} ms`);
    } finally {
      clearTimeout(timer);
    }
    if (!Buffer.isBuffer(der)) return der;
    return checkOcspResponse({ response: der, issuer, certId, nonce, at, skewMs: this.#skewMs, url });
  }

  /**
   * Asks about every certificate of `chain` (end entity first, as validatePath takes it), each with its issuer:
   * the next certificate, or for the last one the trust anchor named as its issuer whose key verifies it.
   * In parallel; one outcome per certificate, in chain order.
   */
  async gather(chain: readonly Uint8Array[], trustAnchors: readonly Uint8Array[], at: Date): Promise<readonly OcspOutcome[]> {
    const parsed = chain.map((d) => tryParse(d));
    const anchors = trustAnchors.flatMap((d) => tryParse(d) ?? []);
    return Promise.all(
      parsed.map((c, k) => {
        if (!c) return { status: "no-answer", problem: "no-issuer", detail: "the certificate could not be decoded" } as const;
        const issuer = parsed[k + 1] ?? anchors.find((a) => nameEquals(a.subject, c.issuer) && verifySignature(c.tbs, c.signatureAlgorithm, c.signature, workingKeyOf(a.publicKey)));
        if (!issuer) return { status: "no-answer", problem: "no-issuer", detail: OCSP_PROBLEMS["no-issuer"] } as const;
        return this.check({ certificate: c.der, issuer: issuer.der }, at);
      }),
    );
  }
}

function tryParse(d: Uint8Array): Certificate | undefined {
  try {
    return parseCertificate(d);
  } catch {
    return undefined;
  }
}
