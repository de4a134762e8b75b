/**
 * A certificate's tbsCertificate (RFC 5280 §4.1: the part its CA signed), read in place: the first element of the
 * outer SEQUENCE, as its whole TLV. The validation API tells whether a certificate asked about is the one the
 * store holds under its serial by comparing these bytes (store: appendDisclosures), not the whole encoding: a
 * certificate re-encoded with other outer lengths (30 83 00 … for 30 82 …) is still the one its CA signed.
 */

import { head as h, headAt, isWholeTlv } from "./der.js";

/**
 * The bounds of the tbsCertificate TLV of `der` into `bounds` (start, end, where its content starts); false when `der` is no SEQUENCE
 * beginning with a SEQUENCE, both of definite lengths (der.ts headAt's lenient rules), the inner within the outer.
 */
function tbsBounds(der: Uint8Array, bounds: Float64Array): boolean {
  if (headAt(der, 0, der.length) || h.tag !== 0x30) return false;
  const outerEnd = h.headerLength + h.length;
  if (outerEnd > der.length) return false;
  const start = h.headerLength;
  if (headAt(der, start, der.length) || h.tag !== 0x30) return false;
  const end = start + h.headerLength + h.length;
  if (end > outerEnd) return false;
  bounds[0] = start;
  bounds[1] = end;
  bounds[2] = start + h.headerLength;
  return true;
}

/** tbsBounds' answer (synchronous callers only). */
const tbs = new Float64Array(3);

/** The tbsCertificate TLV of `der`, a view of its bytes; undefined when `der` is no SEQUENCE beginning with a SEQUENCE of definite lengths within it. */
export function tbsCertificateOf(der: Uint8Array): Buffer | undefined {
  if (!tbsBounds(der, tbs)) return undefined;
  return Buffer.from(der.buffer, der.byteOffset + tbs[0]!, tbs[1]! - tbs[0]!);
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
  // tbsCertificateOf's checks, then the fields', with headers read in place (der.ts headAt), not as objects: the
  // SQLite store's commit runs this for every certificate it issues (ten header objects and a view ≈ 0.6 KB of
  // young generation a certificate, heap sampling).
  if (!tbsBounds(der, tbs)) return undefined;
  const end = tbs[1]!;
  let offset = tbs[2]!;
  // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity, subject, then the key
  for (let field = 0; field < 7; field++) {
    if (headAt(der, offset, end)) return undefined;
    const tag = h.tag;
    const size = h.headerLength + h.length;
    if (offset + size > end) return undefined;
    if (field === 0 && tag !== 0xa0) field++; // no version: this is the serial
    if (field === 6) return tag === 0x30 ? Buffer.from(der.buffer, der.byteOffset + offset, size) : undefined;
    offset += size;
  }
  return undefined;
}
