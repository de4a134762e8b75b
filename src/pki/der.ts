/**
 * A minimal DER writer (X.690 §8, §10) for the hot paths: certificate TBS templates and streamed CRLs.
 *
 * pkijs and @peculiar/x509 build an object model per certificate; at national scale the encoding cost
 * matters more than the convenience, so the issuing and CRL paths concatenate pre-encoded parts here.
 * Parsing is readHeader/children below, under profile/cert-reader.ts (certificates) and the CRL reader; what
 * they leave to it, @peculiar/asn1-schema.
 */

export type Der = Buffer;

/** Bytes needed for a definite length (X.690 §8.1.3). */
function lengthSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1000000 ? 4 : 5;
}

/** Writes a definite length at `off`; returns the offset after it. */
function writeLength(out: Buffer, off: number, n: number): number {
  const size = lengthSize(n);
  if (size === 1) {
    out[off] = n;
    return off + 1;
  }
  out[off] = 0x80 | (size - 1);
  for (let i = size - 1; i >= 1; i--) {
    out[off + i] = n & 0xff;
    n = Math.floor(n / 256);
  }
  return off + size;
}

/** Bytes of a whole TLV (tag, length, content) whose content is `contentLength` bytes: for measure-then-write encoders. */
export function tlvSize(contentLength: number): number {
  return 1 + lengthSize(contentLength) + contentLength;
}

/** Writes a tag and a definite length at `off`; returns the offset of the content. */
export function writeHeader(out: Buffer, off: number, tag: number, contentLength: number): number {
  out[off] = tag;
  return writeLength(out, off + 1, contentLength);
}

/** Encodes a definite length (X.690 §8.1.3). */
export function encodeLength(n: number): Buffer {
  const out = Buffer.allocUnsafe(lengthSize(n));
  writeLength(out, 0, n);
  return out;
}

/** A header (tag + length) for content of the given length; used when content is streamed. */
export function header(tag: number, contentLength: number): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthSize(contentLength));
  out[0] = tag;
  writeLength(out, 1, contentLength);
  return out;
}

/**
 * One TLV around the concatenation of `parts`, built in a single allocation: certificates are assembled
 * from dozens of small pieces per issuance, and intermediate Buffer.concat copies dominated that cost.
 */
export function tlvOf(tag: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(1 + lengthSize(len) + len);
  out[0] = tag;
  let off = writeLength(out, 1, len);
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const ZERO = Buffer.from([0]);

/**
 * A TLV whose bytes are written later, in one allocation for its whole tree (encodeTree). Building the
 * structures of a certificate bottom-up with tlvOf costs one Buffer per TLV, and at a few dozen TLVs per
 * certificate those allocations, not the copying, dominated the issuing path. Leaves are encoded bytes or
 * strings (written as UTF-8 content).
 */
export interface Tree {
  readonly tag: number;
  readonly parts: ReadonlyArray<Tree | Uint8Array | string>;
  /** content length, filled in by encodeTree's measuring pass */
  len: number;
}

export function tree(tag: number, ...parts: Array<Tree | Uint8Array | string>): Tree {
  return { tag, parts, len: -1 };
}

function measure(x: Tree | Uint8Array | string): number {
  if (typeof x === "string") return Buffer.byteLength(x, "utf8");
  if (x instanceof Uint8Array) return x.length;
  let len = 0;
  for (const p of x.parts) len += measure(p);
  x.len = len;
  return 1 + lengthSize(len) + len;
}

function writeTree(x: Tree | Uint8Array | string, out: Buffer, off: number): number {
  if (typeof x === "string") return off + out.write(x, off, "utf8");
  if (x instanceof Uint8Array) {
    out.set(x, off);
    return off + x.length;
  }
  out[off] = x.tag;
  off = writeLength(out, off + 1, x.len);
  for (const p of x.parts) off = writeTree(p, out, off);
  return off;
}

/** The DER of a tree, in one allocation. */
export function encodeTree(t: Tree): Buffer {
  const out = Buffer.allocUnsafe(measure(t));
  writeTree(t, out, 0);
  return out;
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return tlvOf(tag, [content]);
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export function seq(...parts: Uint8Array[]): Buffer {
  return tlvOf(TAG.SEQUENCE, parts);
}

export function set(...parts: Uint8Array[]): Buffer {
  return tlvOf(TAG.SET, parts);
}

/** Context-specific constructed [n] (EXPLICIT tagging, or IMPLICIT over a constructed type). */
export function explicit(n: number, content: Uint8Array): Buffer {
  return tlv(0xa0 | n, content);
}

/** Context-specific primitive [n] (IMPLICIT over a primitive type). */
export function implicitPrimitive(n: number, content: Uint8Array): Buffer {
  return tlv(0x80 | n, content);
}

export function bool(v: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
}

export function nul(): Buffer {
  return Buffer.from([TAG.NULL, 0x00]);
}

/** INTEGER from a non-negative bigint or small number, minimal two's complement (X.690 §8.3.2). */
export function integer(value: bigint | number): Buffer {
  return tlv(TAG.INTEGER, integerContent(BigInt(value)));
}

export function integerContent(v: bigint): Buffer {
  if (v < 0n) throw new RangeError("negative INTEGER is not used by this writer");
  let hex = v.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  let b = Buffer.from(hex, "hex");
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return b;
}

/** INTEGER from unsigned big-endian bytes (e.g. a serial number), adding a 0x00 when the top bit is set. */
export function integerFromUnsigned(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && !(bytes[i + 1]! & 0x80)) i++;
  const trimmed = bytes.subarray(i);
  return trimmed[0]! & 0x80 ? tlvOf(TAG.INTEGER, [ZERO, trimmed]) : tlv(TAG.INTEGER, trimmed);
}

export function enumerated(v: number): Buffer {
  return tlv(TAG.ENUMERATED, integerContent(BigInt(v)));
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER (X.690 §8.19); encodings are cached because the same few OIDs recur. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(s);
  });
  if (arcs.length < 2) throw new RangeError(`bad OID ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint) => {
    const stack = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      stack.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...stack);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const enc = tlv(TAG.OID, Buffer.from(out));
  oidCache.set(dotted, enc);
  return enc;
}

export function utf8(s: string): Buffer {
  return tlv(TAG.UTF8_STRING, Buffer.from(s, "utf8"));
}

export function printable(s: string): Buffer {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)) throw new RangeError(`not a PrintableString: ${JSON.stringify(s)}`);
  return tlv(TAG.PRINTABLE_STRING, Buffer.from(s, "ascii"));
}

export function ia5(s: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(s)) throw new RangeError("not an IA5String");
  return tlv(TAG.IA5_STRING, Buffer.from(s, "ascii"));
}

export function octetString(content: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, content);
}

/** BIT STRING with no unused bits (keys, signatures). */
export function bitString(content: Uint8Array): Buffer {
  return tlvOf(TAG.BIT_STRING, [ZERO, content]);
}

/**
 * A named-bit BIT STRING (keyUsage, reasonFlags) in DER: trailing zero bits removed (X.690 §11.2.2).
 * `bits` are bit numbers as the ASN.1 definition numbers them (0 = most significant bit of the first octet).
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return tlv(TAG.BIT_STRING, Buffer.from([0]));
  const max = Math.max(...bits);
  const nBytes = Math.floor(max / 8) + 1;
  const bytes = Buffer.alloc(nBytes);
  for (const b of bits) bytes[Math.floor(b / 8)]! |= 0x80 >> b % 8;
  const unused = 7 - (max % 8);
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unused]), bytes]));
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always Z, whole seconds. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(pad2(y % 100) + rest, "ascii"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y).padStart(4, "0") + rest, "ascii"));
}

/** GeneralizedTime always (e.g. invalidityDate, RFC 5280 §5.3.2). */
export function generalizedTime(d: Date): Buffer {
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(d.getUTCFullYear()).padStart(4, "0") + rest, "ascii"));
}

/** An Extension (RFC 5280 §4.1): extnID, critical (only when TRUE, DER omits the default), extnValue. */
export function extension(id: string, critical: boolean, value: Uint8Array | Tree): Buffer {
  const extnValue = tree(TAG.OCTET_STRING, value);
  return encodeTree(critical ? tree(TAG.SEQUENCE, oid(id), BOOL_TRUE, extnValue) : tree(TAG.SEQUENCE, oid(id), extnValue));
}

const BOOL_TRUE = Buffer.from([TAG.BOOLEAN, 1, 0xff]);

/**
 * The TLV header reader (X.690 §8.1.2–8.1.3) every parser in src builds on, so its rules live here once: a tag; a
 * definite length, short or long form, of at most four length octets (2³² − 1 is past any input we take); the
 * indefinite form (0x80) refused. Lenient (the default) takes BER's non-shortest lengths (30 83 00 01 00): the
 * validation API must know a certificate re-encoded that way; `der` also refuses them, and high tag numbers (none
 * of the structures we read has one), as X.690 §10.1 and our DER-only readers require.
 *
 * Lenient reads a high tag number's octets (§8.1.2.4: bit 8 set on all but the last) as part of the header, up to
 * four of them, so that an element we only step over (inside an otherName, an unknown extension's structure) is
 * stepped over whole: reading its second tag octet as the length put every later boundary in the wrong place.
 * head.tag stays the first octet (its low five bits all set, so it equals no tag a reader looks for).
 *
 * It reads into {@link head}, not a new object: issuance re-parses every certificate it signs and the SQLite commit
 * reads each one's key, and an object per header was ≈ 0.6 KB of young generation a certificate (heap sampling,
 * issue bench). Only the header is read: whether the content fits its container is the caller's to check.
 */
export function headAt(b: Uint8Array, offset: number, limit: number, der = false): HeadFault {
  if (offset + 2 > limit) return HEAD_TRUNCATED;
  const tag = b[offset]!;
  // at: the length's first octet
  let at = offset + 1;
  if ((tag & 0x1f) === 0x1f) {
    if (der) return HEAD_HIGH_TAG;
    let more = true;
    while (more) {
      if (at >= limit) return HEAD_TRUNCATED;
      more = (b[at++]! & 0x80) !== 0;
      if (at - offset > 5) return HEAD_TAG_TOO_LONG;
    }
    if (at >= limit) return HEAD_TRUNCATED;
  }
  const first = b[at]!;
  scratch.tag = tag;
  if (first < 0x80) {
    scratch.headerLength = at + 1 - offset;
    scratch.length = first;
    return HEAD_OK;
  }
  const n = first & 0x7f;
  if (n === 0) return HEAD_INDEFINITE;
  if (n > 4) return HEAD_TOO_LONG;
  // headerLength before the check: a streaming reader (crl/verify.ts) learns how many octets to fetch
  scratch.headerLength = at + 1 - offset + n;
  if (at + 1 + n > limit) return HEAD_LENGTH_TRUNCATED;
  if (der && b[at + 1] === 0) return HEAD_LEADING_ZERO;
  let len = 0;
  for (let i = 1; i <= n; i++) len = len * 256 + b[at + i]!;
  if (der && len < 0x80) return HEAD_NOT_SHORT;
  scratch.length = len;
  return HEAD_OK;
}

/**
 * What headAt says of a header: HEAD_OK (the empty string, so a fault is truthy), or the rule it breaks in the words
 * every reader refuses it with (prefixed with where it was): the fault is its own message, one table.
 */
export const HEAD_OK = "";
/** fewer than the two octets of a tag and a length before the limit */
export const HEAD_TRUNCATED = "truncated DER header";
/** the length octets run past the limit (head.headerLength says how many the header needs) */
export const HEAD_LENGTH_TRUNCATED = "truncated DER length";
export const HEAD_INDEFINITE = "indefinite length (BER, not DER)";
export const HEAD_TOO_LONG = "length too large (over four octets)";
/** `der` only */
export const HEAD_HIGH_TAG = "high tag numbers are not used here";
/** lenient only: a high tag number of more than four octets (2²⁸ tag numbers is past any structure we read) */
export const HEAD_TAG_TOO_LONG = "tag number too large (over four octets)";
/** `der` only: a long-form length with a leading zero octet (§10.1) */
export const HEAD_LEADING_ZERO = "length with a leading zero octet (not minimal)";
/** `der` only: a long-form length below 128, which the short form holds (§10.1) */
export const HEAD_NOT_SHORT = "long-form length where the short form fits";
export type HeadFault =
  | typeof HEAD_OK
  | typeof HEAD_TRUNCATED
  | typeof HEAD_LENGTH_TRUNCATED
  | typeof HEAD_INDEFINITE
  | typeof HEAD_TOO_LONG
  | typeof HEAD_HIGH_TAG
  | typeof HEAD_TAG_TOO_LONG
  | typeof HEAD_LEADING_ZERO
  | typeof HEAD_NOT_SHORT;

/** What headAt read last: tag, header length (tag and length octets) and content length. Synchronous callers only. */
export interface Head {
  readonly tag: number;
  readonly headerLength: number;
  readonly length: number;
}
const scratch = { tag: 0, headerLength: 0, length: 0 };
export const head: Head = scratch;

/** Reads the outer TLV at `offset`: tag, header length and content length (headAt's lenient rules). Throws RangeError on bad DER. */
export function readHeader(buf: Uint8Array, offset = 0): { tag: number; headerLength: number; length: number } {
  const fault = headAt(buf, offset, buf.length);
  if (fault) throw new RangeError(fault);
  return { tag: scratch.tag, headerLength: scratch.headerLength, length: scratch.length };
}

/** Whether `b` is exactly one TLV with a definite length (headAt's lenient rules): no octet missing, none after it. */
export function isWholeTlv(b: Uint8Array): boolean {
  return !headAt(b, 0, b.length) && scratch.headerLength + scratch.length === b.length;
}

/** The header length of the TLV at `offset` (headAt's lenient rules); throws RangeError on bad DER. */
export function headerLengthAt(buf: Uint8Array, offset = 0): number {
  const fault = headAt(buf, offset, buf.length);
  if (fault) throw new RangeError(fault);
  return scratch.headerLength;
}

/** The child TLVs of the constructed TLV at `offset`, as subarrays (no copying). */
export function children(buf: Uint8Array, offset = 0): Buffer[] {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const outer = readHeader(b, offset);
  const end = offset + outer.headerLength + outer.length;
  if (end > b.length) throw new RangeError("truncated DER");
  const out: Buffer[] = [];
  let off = offset + outer.headerLength;
  while (off < end) {
    const h = readHeader(b, off);
    const next = off + h.headerLength + h.length;
    if (next > end) throw new RangeError("DER child overruns its parent");
    out.push(b.subarray(off, next));
    off = next;
  }
  return out;
}

/**
 * The end offset of the TLV at `offset`, read and checked as readHeader reads it, without allocating (headAt);
 * head.headerLength is its header's length.
 */
function tlvEnd(buf: Uint8Array, offset: number): number {
  const fault = headAt(buf, offset, buf.length);
  if (fault) throw new RangeError(fault);
  return offset + scratch.headerLength + scratch.length;
}

/** Start and end offsets of up to `max` child TLVs (validated as children() does), into `out`; returns how many there are. */
function childOffsets(b: Uint8Array, offset: number, max: number, out: Int32Array): number {
  const end = tlvEnd(b, offset);
  if (end > b.length) throw new RangeError("truncated DER");
  let n = 0;
  let off = offset + scratch.headerLength;
  while (off < end) {
    const next = tlvEnd(b, off);
    if (next > end) throw new RangeError("DER child overruns its parent");
    if (n < max) (out[2 * n] = off), (out[2 * n + 1] = next);
    n++;
    off = next;
  }
  return n;
}

/** certificateParts' scratch offsets: it runs synchronously, so one array serves every call. */
const partOffsets = new Int32Array(16);

/**
 * Raw TBSCertificate fields of a certificate: the exact bytes, for reuse in templates (issuer name, SPKI).
 * Validated as children() of the certificate and of its TBS would be, but only the six fields returned are
 * made into Buffers: issuance re-parses every certificate it signs.
 */
export function certificateParts(cert: Uint8Array): {
  tbs: Buffer;
  serial: Buffer;
  issuer: Buffer;
  validity: Buffer;
  subject: Buffer;
  spki: Buffer;
} {
  const b = Buffer.isBuffer(cert) ? cert : Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength);
  const o = partOffsets;
  const i = tbsFieldOffsets(b);
  const tbsStart = tbsBounds[0];
  const tbsEnd = tbsBounds[1];
  const pick = (k: number) => b.subarray(o[2 * (i + k)]!, o[2 * (i + k) + 1]!);
  return { tbs: b.subarray(tbsStart, tbsEnd), serial: pick(0), issuer: pick(2), validity: pick(3), subject: pick(4), spki: pick(5) };
}

/** The TBS's start and end offsets, as tbsFieldOffsets last found them. */
const tbsBounds = [0, 0];

/**
 * Walks a certificate as certificateParts does: the TBS's fields' offsets into partOffsets (and the TBS's own
 * into tbsBounds); returns the index of the serial's field (1 after a version, 0 without one).
 */
function tbsFieldOffsets(b: Buffer): number {
  const o = partOffsets;
  if (childOffsets(b, 0, 1, o) === 0) throw new RangeError("empty certificate");
  tbsBounds[0] = o[0]!;
  tbsBounds[1] = o[1]!;
  const n = childOffsets(b, tbsBounds[0], 7, o);
  const i = n > 0 && b[o[0]!] === 0xa0 ? 1 : 0; // version [0] is optional (v1)
  if (n < i + 6) throw new RangeError("truncated TBSCertificate");
  return i;
}

/**
 * Whether a certificate's issuer name and subjectPublicKeyInfo are exactly `issuer` and `spki` (whole TLVs, as
 * certificateParts returns them), and its serial number's TLV ends with `serialTail`. Compared in place: issuance
 * checks every certificate it signs, and certificateParts' six Buffers and their object were ≈ 0.7 KB of young
 * generation a certificate (heap sampling, issue bench). Throws RangeError on malformed DER, as certificateParts.
 */
export function certificateCarries(cert: Buffer, issuer: Uint8Array, spki: Uint8Array, serialTail: Uint8Array): boolean {
  const o = partOffsets;
  const i = tbsFieldOffsets(cert);
  const serialEnd = o[2 * i + 1]!;
  const serialStart = Math.max(o[2 * i]!, serialEnd - serialTail.length);
  return (
    cert.compare(issuer, 0, issuer.length, o[2 * (i + 2)]!, o[2 * (i + 2) + 1]!) === 0 &&
    cert.compare(spki, 0, spki.length, o[2 * (i + 5)]!, o[2 * (i + 5) + 1]!) === 0 &&
    cert.compare(serialTail, 0, serialTail.length, serialStart, serialEnd) === 0
  );
}
