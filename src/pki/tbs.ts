/**
 * A certificate's tbsCertificate (RFC 5280 §4.1: the part its CA signed), read in place: the first element of the
 * outer SEQUENCE, as its whole TLV. The validation API tells whether a certificate asked about is the one the
 * store holds under its serial by comparing these bytes (store: appendDisclosures), not the whole encoding: a
 * certificate re-encoded with other outer lengths (30 83 00 … for 30 82 …) is still the one its CA signed.
 */

import { readHeader } from "./der.js";

/** The TLV header at `offset` (der.ts readHeader: definite lengths of up to 4 octets), or undefined where there is none. */
function headerAt(b: Uint8Array, offset: number): ReturnType<typeof readHeader> | undefined {
  try {
    return readHeader(b, offset);
  } catch {
    return undefined; // truncated, indefinite, or longer than any certificate
  }
}

/** The tbsCertificate TLV of `der`, a view of its bytes; undefined when `der` is no SEQUENCE beginning with a SEQUENCE of definite lengths within it. */
export function tbsCertificateOf(der: Uint8Array): Buffer | undefined {
  const outer = headerAt(der, 0);
  if (!outer || outer.tag !== 0x30 || outer.headerLength + outer.length > der.length) return undefined;
  const start = outer.headerLength;
  const inner = headerAt(der, start);
  if (!inner || inner.tag !== 0x30) return undefined;
  const end = start + inner.headerLength + inner.length;
  if (end > outer.headerLength + outer.length) return undefined;
  return Buffer.from(der.buffer, der.byteOffset + start, end - start);
}

/** Whether `b` is exactly one TLV with a definite length: no octet missing, none after it. */
export function isWholeTlv(b: Uint8Array): boolean {
  const h = headerAt(b, 0);
  return h !== undefined && h.headerLength + h.length === b.length;
}

/**
 * Whether the octets after `stored`'s outer header (its tag, and its length in the short or long form) begin with
 * `tbs`, a whole TLV: the rule the stores resolve an answered certificate's owner by (Store.appendDisclosures),
 * the same arithmetic in SQL and here, so both answer alike for any stored bytes. For a certificate (ours are
 * DER) it is "its tbsCertificate is `tbs`": a whole TLV equal to the start of the stored one has its length too.
 */
export function storedTbsIs(stored: Uint8Array, tbs: Uint8Array): boolean {
  if (stored.length < 2 || !isWholeTlv(tbs)) return false;
  const start = 2 + (stored[1]! > 127 ? stored[1]! - 128 : 0);
  if (start + tbs.length > stored.length) return false;
  return Buffer.from(stored.buffer, stored.byteOffset + start, tbs.length).equals(tbs);
}

/**
 * The subjectPublicKeyInfo TLV of certificate `der` (RFC 5280 §4.1: the seventh field of tbsCertificate, the sixth
 * without the [0] version), a view of its bytes; undefined when the fields up to it are not there as definite-length
 * TLVs. Read in place, seven headers: the stores key a certified public key by it (one key, one resident).
 */
export function subjectPublicKeyInfoOf(der: Uint8Array): Buffer | undefined {
  // tbsCertificateOf's checks, then the fields', with headers read into a scratch array, not objects: the SQLite
  // store's commit runs this for every certificate it issues (ten header objects and a view ≈ 0.6 KB of young
  // generation a certificate, heap sampling).
  const h = head;
  if (!headAt(der, 0, der.length) || h[TAG] !== 0x30) return undefined;
  const outerEnd = h[HEADER]! + h[LENGTH]!;
  if (outerEnd > der.length) return undefined;
  const start = h[HEADER]!;
  if (!headAt(der, start, der.length) || h[TAG] !== 0x30) return undefined;
  const end = start + h[HEADER]! + h[LENGTH]!;
  if (end > outerEnd) return undefined;
  let offset = start + h[HEADER]!;
  // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity, subject, then the key
  for (let field = 0; field < 7; field++) {
    if (!headAt(der, offset, end)) return undefined;
    const tag: number = h[TAG]!;
    const size = h[HEADER]! + h[LENGTH]!;
    if (offset + size > end) return undefined;
    if (field === 0 && tag !== 0xa0) field++; // no version: this is the serial
    if (field === 6) return tag === 0x30 ? Buffer.from(der.buffer, der.byteOffset + offset, size) : undefined;
    offset += size;
  }
  return undefined;
}

/** headAt's tag, header length and content length of the header it read last (synchronous callers only). */
const head = new Float64Array(3);
const TAG = 0;
const HEADER = 1;
const LENGTH = 2;

/** readHeader(b.subarray(0, limit), offset) into `head`; false where that would throw. */
function headAt(b: Uint8Array, offset: number, limit: number): boolean {
  if (offset + 2 > limit) return false;
  head[TAG] = b[offset]!;
  const first = b[offset + 1]!;
  if (first < 0x80) {
    head[HEADER] = 2;
    head[LENGTH] = first;
    return true;
  }
  const n = first & 0x7f;
  if (n === 0 || n > 4 || offset + 2 + n > limit) return false;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[offset + 2 + i]!;
  head[HEADER] = 2 + n;
  head[LENGTH] = len;
  return true;
}
