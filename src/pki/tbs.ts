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
  const tbs = tbsCertificateOf(der);
  if (!tbs) return undefined;
  const outer = headerAt(tbs, 0)!;
  let offset = outer.headerLength;
  // version [0] EXPLICIT (absent in v1), serialNumber, signature, issuer, validity, subject, then the key
  for (let field = 0; field < 7; field++) {
    const h = headerAt(tbs, offset);
    if (!h || offset + h.headerLength + h.length > tbs.length) return undefined;
    if (field === 0 && h.tag !== 0xa0) field++; // no version: this is the serial
    if (field === 6) return h.tag === 0x30 ? tbs.subarray(offset, offset + h.headerLength + h.length) : undefined;
    offset += h.headerLength + h.length;
  }
  return undefined;
}
