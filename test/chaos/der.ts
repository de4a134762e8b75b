/**
 * A small, strict DER reader for what the fault-injection harness inspects: the CRL number (RFC 5280
 * §5.2.3), the revoked serials (§5.1.2.6) and the issuer (§5.1.2.3) of a CertificateList, and the subject of
 * a CA certificate (§4.1.2.6). Written apart from src/ on purpose, so that the harness does not judge the
 * code under test with that same code. Throws on anything truncated, trailing or of the wrong shape.
 */
import { Buffer } from "node:buffer";

interface Tlv {
  readonly tag: number;
  /** first byte of the contents */
  readonly body: number;
  /** one past the last byte of the contents */
  readonly end: number;
  readonly start: number;
}

function tlv(buf: Uint8Array, off: number, limit: number): Tlv {
  if (off + 2 > limit) throw new Error(`DER: truncated header at ${off}`);
  const tag = buf[off]!;
  if ((tag & 0x1f) === 0x1f) throw new Error(`DER: high tag number at ${off}`);
  let p = off + 1;
  let len = buf[p++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error(`DER: unsupported length of ${n} octets at ${off}`);
    if (p + n > limit) throw new Error(`DER: truncated length at ${off}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  const end = p + len;
  if (end > limit) throw new Error(`DER: element at ${off} runs past its container (${end} > ${limit})`);
  return { tag, body: p, end, start: off };
}

function children(buf: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.body; p < t.end; ) {
    const c = tlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`DER: expected ${what} (tag 0x${tag.toString(16)}), found ${t ? `0x${t.tag.toString(16)}` : "nothing"}`);
  return t;
}

function top(der: Uint8Array): Tlv {
  const t = tlv(der, 0, der.length);
  if (t.end !== der.length) throw new Error(`DER: ${der.length - t.end} bytes after the outer element`);
  return expectTag(t, 0x30, "SEQUENCE");
}

/** Positive INTEGER contents → lower-case hex without leading zeros (the form we compare serials in). */
export function normaliseSerial(hex: string): string {
  const h = hex.trim().replace(/^0x/i, "").replace(/[:\s]/g, "");
  if (!/^[0-9a-fA-F]+$/.test(h)) throw new Error(`not a hex serial: ${hex}`);
  return BigInt(`0x${h}`).toString(16);
}

function integerHex(buf: Uint8Array, t: Tlv): string {
  expectTag(t, 0x02, "INTEGER");
  if (t.end === t.body) throw new Error("DER: empty INTEGER");
  return normaliseSerial(Buffer.from(buf.subarray(t.body, t.end)).toString("hex"));
}

const OID_CRL_NUMBER = "551d14"; // 2.5.29.20

export interface CrlFacts {
  /** cRLNumber extension; undefined when the CRL carries none */
  readonly number: bigint | undefined;
  /** revoked serials, normalised hex, in the order listed */
  readonly serials: readonly string[];
  /** DER of the issuer Name */
  readonly issuer: Buffer;
  readonly thisUpdate: string;
}

/** Reads a DER CertificateList (RFC 5280 §5.1). */
export function readCrl(der: Uint8Array): CrlFacts {
  const outer = top(der);
  const [tbs, alg, sig, ...rest] = children(der, outer);
  expectTag(tbs, 0x30, "TBSCertList");
  expectTag(alg, 0x30, "signatureAlgorithm");
  expectTag(sig, 0x03, "signatureValue");
  if (rest.length) throw new Error("DER: CertificateList has more than three elements");
  const k = children(der, tbs!);
  let i = 0;
  if (k[i]?.tag === 0x02) i++; // version
  expectTag(k[i++], 0x30, "signature");
  const issuerT = expectTag(k[i++], 0x30, "issuer");
  const thisT = k[i++];
  if (!thisT || (thisT.tag !== 0x17 && thisT.tag !== 0x18)) throw new Error("DER: missing thisUpdate");
  if (k[i]?.tag === 0x17 || k[i]?.tag === 0x18) i++; // nextUpdate
  const serials: string[] = [];
  if (k[i]?.tag === 0x30) {
    for (const entry of children(der, k[i]!)) {
      expectTag(entry, 0x30, "revokedCertificate");
      serials.push(integerHex(der, children(der, entry)[0]!));
    }
    i++;
  }
  let number: bigint | undefined;
  if (k[i]?.tag === 0xa0) {
    const exts = expectTag(children(der, k[i]!)[0], 0x30, "Extensions");
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      const oid = expectTag(parts[0], 0x06, "extnID");
      const value = expectTag(parts[parts.length - 1], 0x04, "extnValue");
      if (Buffer.from(der.subarray(oid.body, oid.end)).toString("hex") === OID_CRL_NUMBER) {
        const n = tlv(der, value.body, value.end);
        number = BigInt(`0x${integerHex(der, n)}`);
      }
    }
    i++;
  }
  if (i !== k.length) throw new Error(`DER: unexpected element ${i} in TBSCertList`);
  return {
    number,
    serials,
    issuer: Buffer.from(der.subarray(issuerT.start, issuerT.end)),
    thisUpdate: Buffer.from(der.subarray(thisT.body, thisT.end)).toString("latin1"),
  };
}

/** DER of the subject Name of a certificate (RFC 5280 §4.1). */
export function certificateSubject(der: Uint8Array): Buffer {
  const outer = top(der);
  const tbs = expectTag(children(der, outer)[0], 0x30, "TBSCertificate");
  const k = children(der, tbs);
  const i = k[0]?.tag === 0xa0 ? 1 : 0;
  const subject = expectTag(k[i + 4], 0x30, "subject");
  return Buffer.from(der.subarray(subject.start, subject.end));
}

/** PEM → DER of the first block with this label; throws when there is none. */
export function pemToDer(text: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]*)-----END ${label}-----`).exec(text);
  if (!m) throw new Error(`no ${label} PEM block`);
  const b64 = m[1]!.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new Error(`${label} PEM body is not base64`);
  return Buffer.from(b64, "base64");
}

/** A certificate file (PEM or DER) → DER. */
export function certificateDer(bytes: Buffer): Buffer {
  return bytes[0] === 0x30 ? bytes : pemToDer(bytes.toString("latin1"), "CERTIFICATE");
}
