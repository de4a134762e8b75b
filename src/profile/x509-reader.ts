/**
 * A small read adapter over @peculiar/asn1-x509 (RFC 5280 §4.1 certificates, §5.1 CRLs) shared by the
 * profile checker and `jpki inspect`. It turns library errors into ERR_DER_MALFORMED naming what failed,
 * and the library's mutable objects into plain values, so neither leaks into our API (STYLE.md §3).
 * Certificates and their extensions are read by our own reader first (cert-reader.ts, in asn1-x509's shapes):
 * asn1-x509 loads only for what that reader leaves to it, and for CRLs.
 */
import {
  asn1x509,
  asnConvert,
  type AuthorityInfoAccessSyntax,
  type AuthorityKeyIdentifier,
  type BasicConstraints,
  type Certificate,
  type CertificateList,
  type CertificatePolicies,
  type CRLDistributionPoints,
  type ExtendedKeyUsage,
  type Extension,
  type GeneralNames,
  type Name,
  type RevokedCertificate,
  type SubjectKeyIdentifier,
  type Time,
  type UserNotice,
} from "./asn1.js";
import {
  readAuthorityInfoAccess,
  readAuthorityKeyIdentifier,
  readBasicConstraints,
  readCertificate,
  readCertificatePolicies,
  readCrlDistributionPoints,
  readExtendedKeyUsage,
  readGeneralNames,
  readNameDer,
  readSubjectKeyIdentifier,
  readUserNotice,
} from "./cert-reader.js";
import { JpkiError } from "../errors.js";
import { children, readHeader, seq, TAG } from "../pki/der.js";
import { ALG_OID, ATTR_OID, EXT_OID } from "./oids.js";

/**
 * Throws ERR_DER_MALFORMED unless the bytes are exactly one DER SEQUENCE (no trailing bytes). `total`: the
 * length of the whole input when `der` is only its start (a file sniffed from its first bytes).
 */
export function expectSingleSequence(der: Uint8Array, what: string, total = der.length): void {
  let h: { tag: number; headerLength: number; length: number };
  try {
    h = readHeader(der, 0);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `${what}: the DER header is truncated or uses an unsupported length form`, { cause: e });
  }
  if (h.tag !== TAG.SEQUENCE) throw new JpkiError("ERR_DER_MALFORMED", `${what}: DER must start with a SEQUENCE`);
  if (h.headerLength + h.length !== total) {
    throw new JpkiError("ERR_DER_MALFORMED", `${what}: the DER length (${h.headerLength + h.length} bytes) does not match the input (${total} bytes)`);
  }
}

/**
 * A certificate, read by our own reader (cert-reader.ts) when it is strict DER in RFC 5280's form, else by
 * asn1-x509, which then words any error as it always has.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  expectSingleSequence(der, "certificate");
  const own = readCertificate(der);
  if (own) return own;
  try {
    return asnConvert().parse(der, asn1x509().Certificate);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `certificate: the DER does not decode as an X.509 Certificate (${(e as Error).message})`, { cause: e });
  }
}

/**
 * Parses a CRL of any size. asn1-schema refuses structures beyond a node budget (a few thousand entries), so
 * the list is split with our DER walker: the CRL without its revokedCertificates is parsed whole, and each
 * entry on its own.
 */
export function parseCrl(der: Uint8Array): CertificateList {
  expectSingleSequence(der, "CRL");
  try {
    const [tbs, sigAlg, sig] = children(der);
    if (!tbs || !sigAlg || !sig) throw new RangeError("a CertificateList has three fields");
    const fields = children(tbs);
    // version?, signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?, [0] crlExtensions?
    const i = fields.findIndex((f, k) => k >= 3 && f[0] === TAG.SEQUENCE);
    const entries = i >= 0 ? children(fields[i]!) : [];
    const without = i >= 0 ? [...fields.slice(0, i), ...fields.slice(i + 1)] : fields;
    const list = asnConvert().parse(seq(seq(...without), sigAlg, sig), asn1x509().CertificateList);
    if (i >= 0) list.tbsCertList.revokedCertificates = entries.map(decodeEntry);
    // asn1-schema reads [0] { SEQUENCE {} } as no crlExtensions at all: kept as an empty list, which the
    // profile check reports (SIZE (1..MAX))
    const ext = fields.find((f) => f[0] === 0xa0);
    const inner = ext && list.tbsCertList.crlExtensions === undefined ? children(ext) : [];
    if (inner.length === 1 && inner[0]![0] === TAG.SEQUENCE && children(inner[0]!).length === 0) list.tbsCertList.crlExtensions = [];
    return list;
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `CRL: the DER does not decode as an X.509 CertificateList (${(e as Error).message})`, { cause: e });
  }
}

/** Dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19). */
function oidText(content: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (!arcs.length || content[content.length - 1]! & 0x80) throw new RangeError("truncated OBJECT IDENTIFIER");
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join(".");
}

function contentOf(tlv: Uint8Array): Uint8Array {
  const h = readHeader(tlv, 0);
  return tlv.subarray(h.headerLength, h.headerLength + h.length);
}

/** UTCTime YYMMDDhhmmssZ / GeneralizedTime YYYYMMDDhhmmssZ, the DER forms RFC 5280 allows. */
function decodeTime(tlv: Uint8Array): Time {
  const text = Buffer.from(contentOf(tlv)).toString("latin1");
  const m = tlv[0] === TAG.UTC_TIME ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw new RangeError("revocationDate is not a DER UTCTime or GeneralizedTime");
  let year = Number(m[1]);
  if (tlv[0] === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  const date = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  return (tlv[0] === TAG.UTC_TIME ? { utcTime: date } : { generalTime: date }) as unknown as Time;
}

/**
 * One revokedCertificates entry decoded by hand: asn1-schema costs ~60 µs an entry, too slow for a
 * national CRL. Only the fields the checker and `inspect` read are filled in.
 */
function decodeEntry(entry: Uint8Array): RevokedCertificate {
  const [serial, date, exts, extra] = children(entry);
  if (!serial || serial[0] !== TAG.INTEGER || !date || extra) throw new RangeError("a CRL entry is SEQUENCE { serial, date, extensions? }");
  const extensions = exts
    ? children(exts).map((x) => {
        const parts = children(x);
        const id = parts[0];
        const critical = parts.length === 3 && parts[1]![0] === TAG.BOOLEAN && parts[1]![parts[1]!.length - 1] !== 0;
        const value = parts[parts.length - 1];
        if (!id || id[0] !== TAG.OID || !value || value[0] !== TAG.OCTET_STRING) throw new RangeError("a CRL entry extension is malformed");
        const v = contentOf(value);
        return { extnID: oidText(contentOf(id)), critical, extnValue: { buffer: v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) } };
      })
    : undefined;
  const sc = contentOf(serial);
  return {
    userCertificate: sc.buffer.slice(sc.byteOffset, sc.byteOffset + sc.byteLength),
    revocationDate: decodeTime(date),
    ...(extensions ? { crlEntryExtensions: extensions } : {}),
  } as unknown as RevokedCertificate;
}

/** Parses one extension's value with the given schema; undefined (not a throw) when it does not decode. */
export function parseExt<T>(ext: Extension, type: new () => T): T | undefined {
  try {
    return asnConvert().parse(ext.extnValue.buffer, type);
  } catch {
    return undefined;
  }
}

/**
 * The extension values check.ts and describe.ts decode: our own reader's (cert-reader.ts) where it answers, else
 * asn1-x509's (loaded then). Undefined (not a throw) when the value does not decode.
 */
export const extValueOf = {
  generalNames: (ext: Extension): GeneralNames | undefined => readGeneralNames(extValue(ext)) ?? parseExt(ext, asn1x509().GeneralNames),
  basicConstraints: (ext: Extension): BasicConstraints | undefined => readBasicConstraints(extValue(ext)) ?? parseExt(ext, asn1x509().BasicConstraints),
  certificatePolicies: (ext: Extension): CertificatePolicies | undefined => readCertificatePolicies(extValue(ext)) ?? parseExt(ext, asn1x509().CertificatePolicies),
  crlDistributionPoints: (ext: Extension): CRLDistributionPoints | undefined => readCrlDistributionPoints(extValue(ext)) ?? parseExt(ext, asn1x509().CRLDistributionPoints),
  authorityInfoAccess: (ext: Extension): AuthorityInfoAccessSyntax | undefined => readAuthorityInfoAccess(extValue(ext)) ?? parseExt(ext, asn1x509().AuthorityInfoAccessSyntax),
  subjectKeyIdentifier: (ext: Extension): SubjectKeyIdentifier | undefined => readSubjectKeyIdentifier(extValue(ext)) ?? parseExt(ext, asn1x509().SubjectKeyIdentifier),
  authorityKeyIdentifier: (ext: Extension): AuthorityKeyIdentifier | undefined => readAuthorityKeyIdentifier(extValue(ext)) ?? parseExt(ext, asn1x509().AuthorityKeyIdentifier),
  extKeyUsage: (ext: Extension): ExtendedKeyUsage | undefined => readExtendedKeyUsage(extValue(ext)) ?? parseExt(ext, asn1x509().ExtendedKeyUsage),
};

/** A policy qualifier (its whole TLV) as a UserNotice; throws, as asn1-schema does, when it is not one. */
export function userNoticeOf(qualifier: ArrayBuffer): UserNotice {
  return readUserNotice(new Uint8Array(qualifier)) ?? asnConvert().parse(qualifier, asn1x509().UserNotice);
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

/**
 * The DER of a parsed Name. asn1-schema parses an attribute value of any tag but cannot encode every one back
 * (a UTCTime where a countryName's string belongs, found by npm run fuzz): such a name is malformed.
 */
export function nameDer(name: Name): Buffer {
  // a name our own reader read is strict DER, which is what asn1-schema would write back
  const read = readNameDer(name);
  if (read) return read;
  try {
    return Buffer.from(asnConvert().serialize(name));
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", `a distinguished name holds an attribute value of a type it cannot have (${(e as Error).message})`, { cause: e });
  }
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
  Object.fromEntries([...Object.entries(EXT_OID).map(([n, o]) => [o, n]), ["1.3.6.1.5.5.7.1.11", "subjectInfoAccess"]]),
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
