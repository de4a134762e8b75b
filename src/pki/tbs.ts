/**
 * A certificate's tbsCertificate (RFC 5280 §4.1: the part its CA signed), read in place: the first element of the
 * outer SEQUENCE, as its whole TLV. The validation API tells whether a certificate asked about is the one the
 * store holds under its serial by comparing these bytes (store: appendDisclosures), not the whole encoding: a
 * certificate re-encoded with other outer lengths (30 83 00 … for 30 82 …) is still the one its CA signed.
 */

/** The definite length at `at` (X.690 §8.1.3, any form up to 4 octets): [length, offset of the contents], or undefined. */
function lengthAt(b: Uint8Array, at: number): [number, number] | undefined {
  const first = b[at];
  if (first === undefined) return undefined;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  if (n === 0 || n > 4 || at + 1 + n > b.length) return undefined; // indefinite, or longer than any certificate
  let len = 0;
  for (let i = 1; i <= n; i++) len = len * 256 + b[at + i]!;
  return [len, at + 1 + n];
}

/** The tbsCertificate TLV of `der`, a view of its bytes; undefined when `der` is no SEQUENCE beginning with a SEQUENCE of definite lengths within it. */
export function tbsCertificateOf(der: Uint8Array): Buffer | undefined {
  if (der[0] !== 0x30) return undefined;
  const outer = lengthAt(der, 1);
  if (!outer || outer[1] + outer[0] > der.length) return undefined;
  const start = outer[1];
  if (der[start] !== 0x30) return undefined;
  const inner = lengthAt(der, start + 1);
  if (!inner) return undefined;
  const end = inner[1] + inner[0];
  if (end > outer[1] + outer[0]) return undefined;
  return Buffer.from(der.buffer, der.byteOffset + start, end - start);
}

/** Whether `b` is exactly one TLV with a definite length: no octet missing, none after it. */
export function isWholeTlv(b: Uint8Array): boolean {
  const l = b.length >= 2 ? lengthAt(b, 1) : undefined;
  return l !== undefined && l[1] + l[0] === b.length;
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
