/**
 * A small read adapter over @peculiar/asn1-x509 (RFC 5280 §4.1 certificates, §5.1 CRLs) shared by the
 * profile checker and `jpki inspect`. It turns library errors into ERR_DER_MALFORMED naming what failed,
 * and the library's mutable objects into plain values, so neither leaks into our API (STYLE.md §3).
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, CertificateList, type Extension, type Name, type Time } from "@peculiar/asn1-x509";
import { JpkiError } from "../errors.js";
import { readHeader, TAG } from "../pki/der.js";
import { ALG_OID, ATTR_OID, EXT_OID } from "./oids.js";

/** Throws ERR_DER_MALFORMED unless the bytes are exactly one DER SEQUENCE (no trailing bytes). */
export function expectSingleSequence(der: Uint8Array, what: string): void {
  let h: { tag: number; headerLength: number; length: number };
  try {
    h = readHeader(der, 0);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `${what}: the DER header is truncated or uses an unsupported length form`, { cause: e });
  }
  if (h.tag !== TAG.SEQUENCE) throw new JpkiError("ERR_DER_MALFORMED", `${what}: DER must start with a SEQUENCE`);
  if (h.headerLength + h.length !== der.length) {
    throw new JpkiError("ERR_DER_MALFORMED", `${what}: the DER length (${h.headerLength + h.length} bytes) does not match the input (${der.length} bytes)`);
  }
}

export function parseCertificate(der: Uint8Array): Certificate {
  expectSingleSequence(der, "certificate");
  try {
    return AsnConvert.parse(der, Certificate);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `certificate: the DER does not decode as an X.509 Certificate (${(e as Error).message})`, { cause: e });
  }
}

export function parseCrl(der: Uint8Array): CertificateList {
  expectSingleSequence(der, "CRL");
  try {
    return AsnConvert.parse(der, CertificateList);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `CRL: the DER does not decode as an X.509 CertificateList (${(e as Error).message})`, { cause: e });
  }
}

/** Parses one extension's value with the given schema; undefined (not a throw) when it does not decode. */
export function parseExt<T>(ext: Extension, type: new () => T): T | undefined {
  try {
    return AsnConvert.parse(ext.extnValue.buffer, type);
  } catch {
    return undefined;
  }
}

export function extValue(ext: Extension): Uint8Array {
  return new Uint8Array(ext.extnValue.buffer);
}

// ---------------------------------------------------------------------------------------------------
// Names

export const ATTR_SHORT: Readonly<Record<string, string>> = Object.freeze({
  [ATTR_OID.countryName]: "C",
  [ATTR_OID.organizationName]: "O",
  [ATTR_OID.organizationalUnitName]: "OU",
  [ATTR_OID.localityName]: "L",
  [ATTR_OID.commonName]: "CN",
  "2.5.4.8": "ST",
  "2.5.4.9": "STREET",
  "2.5.4.5": "serialNumber",
  "2.5.4.4": "SN",
  "2.5.4.42": "GN",
  "2.5.4.12": "title",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
});

export interface RdnValue {
  /** short name (C, O, OU, L, CN, …) or the dotted OID when unknown */
  readonly type: string;
  readonly oid: string;
  readonly value: string;
  /** the ASN.1 string type the value was written in */
  readonly encoding: string;
}

/** The attributes of a Name in DER order (one entry per attribute; multi-valued RDNs are flattened). */
export function readName(name: Name): RdnValue[] {
  const out: RdnValue[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      const v = atv.value;
      let encoding = "unknown";
      let value: string;
      if (v.utf8String !== undefined) [encoding, value] = ["UTF8String", v.utf8String];
      else if (v.printableString !== undefined) [encoding, value] = ["PrintableString", v.printableString];
      else if (v.ia5String !== undefined) [encoding, value] = ["IA5String", v.ia5String];
      else if (v.bmpString !== undefined) [encoding, value] = ["BMPString", v.bmpString];
      else if (v.teletexString !== undefined) [encoding, value] = ["TeletexString", v.teletexString];
      else if (v.universalString !== undefined) [encoding, value] = ["UniversalString", v.universalString];
      else if (v.anyValue) [encoding, value] = ["other", "#" + Buffer.from(v.anyValue).toString("hex")];
      else value = "";
      out.push({ type: ATTR_SHORT[atv.type] ?? atv.type, oid: atv.type, value, encoding });
    }
  }
  return out;
}

/**
 * One-line text in DER order, as openssl and the spec print names ("C=JP, O=JPKI, …"), with RFC 4514
 * escaping of the special characters. (RFC 4514 itself reverses the order; operators read this one.)
 */
export function nameText(rdns: readonly RdnValue[]): string {
  return rdns.map((r) => `${r.type}=${escapeRdn(r.value)}`).join(", ");
}

function escapeRdn(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, "\\$1").replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");
}

/** Compares two names as sequences of (type, value); DER string types are ignored. */
export function sameNameShape(rdns: readonly RdnValue[], expected: ReadonlyArray<readonly [string, string | RegExp]>): boolean {
  if (rdns.length !== expected.length) return false;
  return rdns.every((r, i) => {
    const [t, v] = expected[i]!;
    return r.type === t && (typeof v === "string" ? r.value === v : v.test(r.value));
  });
}

export function nameDer(name: Name): Buffer {
  return Buffer.from(AsnConvert.serialize(name));
}

// ---------------------------------------------------------------------------------------------------
// Values

export function timeInfo(t: Time): { date: Date; encoding: "UTCTime" | "GeneralizedTime" } {
  return t.utcTime ? { date: t.utcTime, encoding: "UTCTime" } : { date: t.generalTime!, encoding: "GeneralizedTime" };
}

/** Content octets of an INTEGER as unsigned hex, without the sign padding octet. */
export function integerHex(content: ArrayBuffer | Uint8Array): string {
  let b = Buffer.from(content instanceof Uint8Array ? content : new Uint8Array(content));
  while (b.length > 1 && b[0] === 0) b = b.subarray(1);
  return b.toString("hex");
}

/** Bit numbers set in a named-bit BIT STRING TLV (bit 0 = first octet's MSB); undefined if not a BIT STRING. */
export function namedBitsOf(tlv: Uint8Array): number[] | undefined {
  try {
    const h = readHeader(tlv, 0);
    if (h.tag !== TAG.BIT_STRING || h.length < 1 || h.headerLength + h.length !== tlv.length) return undefined;
    const bytes = tlv.subarray(h.headerLength + 1, h.headerLength + h.length);
    const bits: number[] = [];
    bytes.forEach((byte, i) => {
      for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits.push(i * 8 + b);
    });
    return bits;
  } catch {
    return undefined;
  }
}

/** A DER INTEGER TLV to a bigint (non-negative values only; undefined otherwise). */
export function integerTlv(tlv: Uint8Array): { value: bigint; hex: string } | undefined {
  try {
    const h = readHeader(tlv, 0);
    if (h.tag !== TAG.INTEGER || h.length < 1 || h.headerLength + h.length !== tlv.length) return undefined;
    const content = tlv.subarray(h.headerLength);
    if (content[0]! & 0x80) return undefined;
    const hex = integerHex(content);
    return { value: BigInt("0x" + hex), hex };
  } catch {
    return undefined;
  }
}

/** RSA public key (RFC 8017 A.1.1) from a SubjectPublicKeyInfo's key bits: modulus size and exponent. */
export function rsaKey(subjectPublicKey: ArrayBuffer): { bits: number; exponent: number | string } | undefined {
  try {
    const k = new Uint8Array(subjectPublicKey);
    const outer = readHeader(k, 0);
    if (outer.tag !== TAG.SEQUENCE) return undefined;
    let off = outer.headerLength;
    const n = readHeader(k, off);
    if (n.tag !== TAG.INTEGER) return undefined;
    const modulus = k.subarray(off + n.headerLength, off + n.headerLength + n.length);
    off += n.headerLength + n.length;
    const e = readHeader(k, off);
    if (e.tag !== TAG.INTEGER) return undefined;
    const exp = BigInt("0x" + integerHex(k.subarray(off + e.headerLength, off + e.headerLength + e.length)));
    const hex = integerHex(modulus);
    const bits = hex === "0" ? 0 : (hex.length - 1) * 4 + BigInt("0x" + hex[0]).toString(2).length;
    return { bits, exponent: exp <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(exp) : exp.toString() };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Names of things

export const EXT_NAME: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries([...Object.entries(EXT_OID).map(([n, o]) => [o, n]), ["2.5.29.46", "freshestCRL"], ["2.5.29.30", "nameConstraints"], ["2.5.29.36", "policyConstraints"], ["2.5.29.54", "inhibitAnyPolicy"], ["1.3.6.1.5.5.7.1.11", "subjectInfoAccess"]]),
);

export const ALG_NAME: Readonly<Record<string, string>> = Object.freeze({
  ...Object.fromEntries(Object.entries(ALG_OID).map(([n, o]) => [o, n])),
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.10045.2.1": "ecPublicKey",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.3.101.112": "Ed25519",
});
