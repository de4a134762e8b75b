/**
 * Certificate assembly, RFC 5280 §4.1: TBSCertificate from pre-encoded parts, then the signed
 * Certificate. The issuer's name, algorithm and constant extensions are encoded once per CA.
 */
import { bitString, encodeTree, explicit, integer, integerFromUnsigned, oid, seq, TAG, time, tlvSize, tree, writeHeader } from "../pki/der.js";
import type { EncodedFourItems } from "../profile/four-items.js";
import { ATTR_OID, EXT_OID } from "../profile/oids.js";
import { measureFourItemsGeneralNames, writeFourItemsGeneralNames } from "../profile/san.js";

export interface TbsParams {
  readonly serial: Uint8Array;
  readonly signatureAlgorithm: Buffer;
  readonly issuer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subject: Buffer;
  readonly spki: Buffer;
  /** DER Extension TLVs in the order they should appear */
  readonly extensions: readonly Buffer[];
}

const V3 = explicit(0, integer(2));

export function encodeTbs(p: TbsParams): Buffer {
  return encodeTree(
    tree(
      TAG.SEQUENCE,
      V3,
      integerFromUnsigned(p.serial),
      p.signatureAlgorithm,
      p.issuer,
      tree(TAG.SEQUENCE, time(p.notBefore), time(p.notAfter)),
      p.subject,
      p.spki,
      tree(0xa3, tree(TAG.SEQUENCE, ...p.extensions)),
    ),
  );
}

export function assembleCertificate(tbs: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer {
  return seq(tbs, signatureAlgorithm, bitString(signature));
}

/**
 * The parts of an end-entity TBSCertificate (ca/authority.ts certify) for writeEndEntityTbs: the per-CA and
 * per-municipality parts come pre-encoded, the per-certificate values raw.
 */
export interface EndEntityTbsParams {
  readonly serial: Uint8Array;
  readonly signatureAlgorithm: Buffer;
  readonly issuer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** the subject's RDN TLVs before its CN, concatenated */
  readonly subjectHead: Buffer;
  /** the subject CN (UTF8String) */
  readonly commonName: string;
  readonly spki: Buffer;
  /** Extension TLVs before subjectAltName, concatenated */
  readonly extensionsBefore: Buffer;
  /** the four items for subjectAltName (signature certificates), undefined for none */
  readonly fourItems: EncodedFourItems | undefined;
  /** Extension TLVs after subjectAltName, concatenated; subjectKeyIdentifier comes last */
  readonly extensionsAfter: Buffer;
  /**
   * the subject key identifier (20 octets, RFC 5280 §4.2.1.2 method 1) as hexadecimal digits, written here as octets
   * (profile/extensions.ts keyIdentifierHex says why)
   */
  readonly keyIdHex: string;
}

const CN_TYPE = oid(ATTR_OID.commonName);
const SAN_ID = oid(EXT_OID.subjectAltName);
const SKI_ID = oid(EXT_OID.subjectKeyIdentifier);

/** Bytes of a Time (RFC 5280 §4.1.2.5, as der.ts time()): UTCTime through 2049, GeneralizedTime from 2050. */
function timeSize(d: Date): number {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? 15 : 17;
}

function writeDigits(out: Buffer, off: number, n: number, width: number): number {
  for (let i = width - 1; i >= 0; i--) {
    out[off + i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return off + width;
}

function writeTime(out: Buffer, off: number, d: Date): number {
  const y = d.getUTCFullYear();
  const utc = y >= 1950 && y < 2050;
  off = writeHeader(out, off, utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME, utc ? 13 : 15);
  off = utc ? writeDigits(out, off, y % 100, 2) : writeDigits(out, off, y, 4);
  off = writeDigits(out, off, d.getUTCMonth() + 1, 2);
  off = writeDigits(out, off, d.getUTCDate(), 2);
  off = writeDigits(out, off, d.getUTCHours(), 2);
  off = writeDigits(out, off, d.getUTCMinutes(), 2);
  off = writeDigits(out, off, d.getUTCSeconds(), 2);
  out[off] = 0x5a; // Z
  return off + 1;
}

/**
 * An end-entity TBSCertificate measured, then written into one Buffer: byte for byte what encodeTbs makes from
 * the same parts (certificate.test.ts), without the dozen intermediate Buffers and the trees encodeName,
 * extension() and encodeTbs allocate per certificate — on the issuing path those allocations and the garbage
 * collection after them cost more than the bytes written.
 */
export function writeEndEntityTbs(p: EndEntityTbsParams): Buffer {
  // serial: INTEGER from unsigned bytes, minimal (as integerFromUnsigned)
  let s = 0;
  while (s < p.serial.length - 1 && p.serial[s] === 0 && !(p.serial[s + 1]! & 0x80)) s++;
  const serialLen = p.serial.length - s + (p.serial[s]! & 0x80 ? 1 : 0);
  const validity = timeSize(p.notBefore) + timeSize(p.notAfter);
  const cnLen = Buffer.byteLength(p.commonName, "utf8");
  const cnAttr = CN_TYPE.length + tlvSize(cnLen);
  const subject = p.subjectHead.length + tlvSize(tlvSize(cnAttr));
  const names = p.fourItems ? measureFourItemsGeneralNames(p.fourItems) : 0;
  const sanExt = p.fourItems ? SAN_ID.length + tlvSize(tlvSize(names)) : 0;
  const keyIdLen = p.keyIdHex.length >>> 1;
  const skiExt = SKI_ID.length + tlvSize(tlvSize(keyIdLen));
  const exts = p.extensionsBefore.length + (p.fourItems ? tlvSize(sanExt) : 0) + p.extensionsAfter.length + tlvSize(skiExt);
  const content =
    V3.length + tlvSize(serialLen) + p.signatureAlgorithm.length + p.issuer.length + tlvSize(validity) + tlvSize(subject) + p.spki.length + tlvSize(tlvSize(exts));
  const out = Buffer.allocUnsafe(tlvSize(content));
  let off = writeHeader(out, 0, TAG.SEQUENCE, content);
  out.set(V3, off);
  off = writeHeader(out, off + V3.length, TAG.INTEGER, serialLen);
  if (p.serial[s]! & 0x80) out[off++] = 0;
  out.set(p.serial.subarray(s), off);
  off += p.serial.length - s;
  out.set(p.signatureAlgorithm, off);
  off += p.signatureAlgorithm.length;
  out.set(p.issuer, off);
  off = writeHeader(out, off + p.issuer.length, TAG.SEQUENCE, validity);
  off = writeTime(out, off, p.notBefore);
  off = writeTime(out, off, p.notAfter);
  off = writeHeader(out, off, TAG.SEQUENCE, subject);
  out.set(p.subjectHead, off);
  off = writeHeader(out, off + p.subjectHead.length, TAG.SET, tlvSize(cnAttr));
  off = writeHeader(out, off, TAG.SEQUENCE, cnAttr);
  out.set(CN_TYPE, off);
  off = writeHeader(out, off + CN_TYPE.length, TAG.UTF8_STRING, cnLen);
  off += out.write(p.commonName, off, cnLen, "utf8");
  out.set(p.spki, off);
  off = writeHeader(out, off + p.spki.length, 0xa3, tlvSize(exts));
  off = writeHeader(out, off, TAG.SEQUENCE, exts);
  out.set(p.extensionsBefore, off);
  off += p.extensionsBefore.length;
  if (p.fourItems) {
    off = writeHeader(out, off, TAG.SEQUENCE, sanExt);
    out.set(SAN_ID, off);
    off = writeHeader(out, off + SAN_ID.length, TAG.OCTET_STRING, tlvSize(names));
    off = writeFourItemsGeneralNames(p.fourItems, out, off, names);
  }
  out.set(p.extensionsAfter, off);
  off += p.extensionsAfter.length;
  off = writeHeader(out, off, TAG.SEQUENCE, skiExt);
  out.set(SKI_ID, off);
  off = writeHeader(out, off + SKI_ID.length, TAG.OCTET_STRING, tlvSize(keyIdLen));
  off = writeHeader(out, off, TAG.OCTET_STRING, keyIdLen);
  // Buffer#write stops at the first pair that is not hex: then the length check below fails.
  off += out.write(p.keyIdHex, off, keyIdLen, "hex");
  if (off !== out.length) throw new RangeError("TBSCertificate: written length differs from the measured one");
  return out;
}

/** The signed Certificate in one allocation (as assembleCertificate, without its intermediate BIT STRING). */
export function writeCertificate(tbs: Buffer, signatureAlgorithm: Buffer, signature: Buffer): Buffer {
  const content = tbs.length + signatureAlgorithm.length + tlvSize(signature.length + 1);
  const out = Buffer.allocUnsafe(tlvSize(content));
  let off = writeHeader(out, 0, TAG.SEQUENCE, content);
  out.set(tbs, off);
  out.set(signatureAlgorithm, (off += tbs.length));
  off = writeHeader(out, off + signatureAlgorithm.length, TAG.BIT_STRING, signature.length + 1);
  out[off] = 0; // no unused bits
  out.set(signature, off + 1);
  return out;
}
