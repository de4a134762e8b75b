/**
 * OCSPRequest, RFC 6960 §4.1.1, read strictly: the whole input must be one DER value (der-strict.ts), every
 * field in the order and with the tags the ASN.1 gives, nothing after the last one.
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *                              requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 *   CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
 *                              issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
 *
 * The nonce (id-pkix-ocsp-nonce, RFC 6960 §4.4.1) follows RFC 8954: its value is an OCTET STRING of 1 to 32
 * octets, anything else is a malformed request. A request signature is accepted and not checked (we answer
 * anyone the route lets through; the signature would name the requestor, which we do not use). Everything
 * wrong here is ERR_OCSP_MALFORMED, which the responder answers with malformedRequest.
 */
import { JpkiError } from "../errors.js";
import { children, oid, readHeader } from "../pki/der.js";
import { assertDer } from "../pki/der-strict.js";

/** The hash algorithms a CertID may name: SHA-1 (what openssl sends by default) and the SHA-2 family. */
export const CERT_ID_HASHES = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
} as const;
export type CertIdHash = (typeof CERT_ID_HASHES)[keyof typeof CERT_ID_HASHES];

export const OCSP_OID = {
  nonce: "1.3.6.1.5.5.7.48.1.2",
  basic: "1.3.6.1.5.5.7.48.1.1",
  /** id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8): "revoked" also covers serials never issued (§2.2) */
  extendedRevoke: "1.3.6.1.5.5.7.48.1.9",
} as const;

/** RFC 8954 §2.1: a nonce is 1 to 32 octets. */
export const NONCE_MAX = 32;
/** The most CertIDs one request may ask about (RFC 5019 clients send one; more are answered, fresh). */
export const MAX_REQUESTS = 8;
/** An OCSP request larger than this is not one: the route refuses it before parsing. */
export const MAX_REQUEST_BYTES = 8192;

export interface CertId {
  /** the CertID's DER exactly as received: echoed in the answer, the cache key of pre-produced responses */
  readonly der: Buffer;
  /** undefined for a hash algorithm we do not know (it cannot match any issuer of ours) */
  readonly hash: CertIdHash | undefined;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  /** lower-case hex without leading zero octets (the store's form); undefined for zero or a negative number */
  readonly serial: string | undefined;
}

export interface OcspRequest {
  readonly certIds: readonly CertId[];
  /** the nonce extension's extnValue content (an OCTET STRING TLV), to echo as it came */
  readonly nonce: Buffer | undefined;
}

const NONCE_OID = oid(OCSP_OID.nonce);
const HASH_OIDS = new Map(Object.entries(CERT_ID_HASHES).map(([dotted, name]) => [oid(dotted).toString("hex"), name as CertIdHash]));

function malformed(why: string, cause?: unknown): JpkiError {
  return new JpkiError("ERR_OCSP_MALFORMED", `the OCSP request is malformed (${why}): send a DER OCSPRequest (RFC 6960 §4.1.1)`, {
    ...(cause !== undefined ? { cause } : {}),
    details: { why },
  });
}

function content(tlv: Buffer): Buffer {
  return tlv.subarray(readHeader(tlv).headerLength);
}

function expectTag(tlv: Buffer | undefined, tag: number, what: string): Buffer {
  if (!tlv) throw malformed(`${what} is missing`);
  if (tlv[0] !== tag) throw malformed(`${what} has tag 0x${tlv[0]!.toString(16)}, not 0x${tag.toString(16)}`);
  return tlv;
}

/** Parses a DER OCSPRequest; throws ERR_OCSP_MALFORMED naming the first thing wrong. */
export function parseOcspRequest(input: Uint8Array): OcspRequest {
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (der.length === 0) throw malformed("the request is empty");
  if (der.length > MAX_REQUEST_BYTES) throw malformed(`the request is larger than ${MAX_REQUEST_BYTES} bytes`);
  try {
    assertDer(der);
  } catch (e) {
    throw malformed((e as Error).message, e);
  }
  try {
    return readRequest(der);
  } catch (e) {
    // the contents of OCTET STRINGs (the nonce) are not covered by the DER check above
    if (e instanceof JpkiError) throw e;
    throw malformed((e as Error).message, e);
  }
}

function readRequest(der: Buffer): OcspRequest {
  const outer = expectTag(der, 0x30, "OCSPRequest");
  const top = children(outer);
  const tbs = expectTag(top[0], 0x30, "tbsRequest");
  if (top.length > 2 || (top[1] && top[1][0] !== 0xa0)) throw malformed("only tbsRequest and [0] optionalSignature may follow");
  const fields = children(tbs);
  let i = 0;
  if (fields[i]?.[0] === 0xa0) {
    // version [0] EXPLICIT INTEGER DEFAULT v1: DER leaves the default out, but tolerate an explicit v1.
    const v = children(fields[i]!);
    if (v.length !== 1 || !v[0]!.equals(Buffer.from([2, 1, 0]))) throw malformed("version is not v1");
    i++;
  }
  if (fields[i]?.[0] === 0xa1) i++; // requestorName: not used
  const list = expectTag(fields[i++], 0x30, "requestList");
  let nonce: Buffer | undefined;
  if (fields[i]?.[0] === 0xa2) {
    nonce = readExtensions(fields[i++]!, "requestExtensions").nonce;
  }
  if (i !== fields.length) throw malformed("unexpected fields in tbsRequest");

  const requests = children(list);
  if (requests.length === 0) throw malformed("requestList is empty");
  if (requests.length > MAX_REQUESTS) throw malformed(`more than ${MAX_REQUESTS} certificates in one request`);
  const certIds = requests.map((r) => {
    const parts = children(expectTag(r, 0x30, "Request"));
    const certId = readCertId(expectTag(parts[0], 0x30, "reqCert"));
    if (parts.length > 2 || (parts[1] && parts[1][0] !== 0xa0)) throw malformed("unexpected fields in Request");
    if (parts[1]) {
      const ext = readExtensions(parts[1], "singleRequestExtensions");
      if (ext.nonce) throw malformed("a nonce belongs in requestExtensions");
    }
    return certId;
  });
  return { certIds, nonce };
}

function readCertId(der: Buffer): CertId {
  const f = children(der);
  if (f.length !== 4) throw malformed("CertID has four fields");
  const alg = children(expectTag(f[0], 0x30, "hashAlgorithm"));
  const algOid = expectTag(alg[0], 0x06, "hashAlgorithm's OID");
  if (alg.length > 2 || (alg[1] && !alg[1].equals(Buffer.from([5, 0])))) throw malformed("hashAlgorithm parameters are not absent or NULL");
  const hash = HASH_OIDS.get(algOid.toString("hex"));
  const issuerNameHash = content(expectTag(f[1], 0x04, "issuerNameHash"));
  const issuerKeyHash = content(expectTag(f[2], 0x04, "issuerKeyHash"));
  const serialBytes = content(expectTag(f[3], 0x02, "serialNumber"));
  let serial: string | undefined;
  if (!(serialBytes[0]! & 0x80)) {
    let s = serialBytes;
    while (s.length > 1 && s[0] === 0) s = s.subarray(1);
    serial = s.length === 1 && s[0] === 0 ? undefined : s.toString("hex");
  }
  return { der, hash, issuerNameHash, issuerKeyHash, serial };
}

/** Reads [n] EXPLICIT Extensions: the nonce, if any; an unknown critical extension is refused (RFC 5280 §4.2). */
function readExtensions(wrapper: Buffer, what: string): { nonce: Buffer | undefined } {
  const inner = children(wrapper);
  if (inner.length !== 1) throw malformed(`${what} wraps one SEQUENCE`);
  const list = children(expectTag(inner[0], 0x30, what));
  if (list.length === 0) throw malformed(`${what} is empty`);
  let nonce: Buffer | undefined;
  const seen = new Set<string>();
  for (const e of list) {
    const f = children(expectTag(e, 0x30, "Extension"));
    const id = expectTag(f[0], 0x06, "extnID");
    let critical = false;
    let k = 1;
    if (f[k]?.[0] === 0x01) critical = f[k++]![2] === 0xff;
    const value = content(expectTag(f[k++], 0x04, "extnValue"));
    if (k !== f.length) throw malformed("unexpected fields in an Extension");
    const key = id.toString("hex");
    if (seen.has(key)) throw malformed("an extension appears twice");
    seen.add(key);
    if (id.equals(NONCE_OID)) {
      // Nonce ::= OCTET STRING (SIZE(1..32)) inside extnValue
      if (value[0] !== 0x04) throw malformed("the nonce is not an OCTET STRING");
      const h = readHeader(value);
      if (h.headerLength + h.length !== value.length) throw malformed("bytes follow the nonce");
      if (h.length < 1 || h.length > NONCE_MAX) throw malformed(`the nonce is ${h.length} octets; RFC 8954 allows 1 to ${NONCE_MAX}`);
      nonce = value;
    } else if (critical) {
      throw malformed(`unknown critical extension in ${what}`);
    }
  }
  return { nonce };
}
