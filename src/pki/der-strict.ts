/**
 * A strict DER check (X.690 §10 over the BER rules of §8) for inputs we sign over or copy from, such as a
 * card's PKCS#10 request: one definite-length TLV with no trailing bytes, lengths in their shortest form,
 * low tag numbers only, universal string types primitive (§10.2), BOOLEAN 00/FF (§11.1), INTEGER minimal
 * (§8.3.2), BIT STRING unused bits 0–7 and zero (§11.2.1), NULL empty. Constructed values are checked
 * recursively; the contents of OCTET STRINGs and primitive context tags are opaque here. SET OF ordering
 * (§11.6) is not checked. Headers are der.ts headAt's, with its `der` rules.
 */
import { head, headAt } from "./der.js";

/** Throws a RangeError naming the first DER rule broken; returns when the whole input is one DER value. */
export function assertDer(buf: Uint8Array): void {
  const end = tlv(buf, 0, buf.length, 0);
  if (end !== buf.length) throw new RangeError("bytes follow the DER value");
}

const MAX_DEPTH = 32;

/** Checks the TLV at `off` (which must end by `limit`) and everything inside it; returns the offset after it. */
function tlv(buf: Uint8Array, off: number, limit: number, depth: number): number {
  const fault = headAt(buf, off, limit, true);
  if (fault) throw new RangeError(fault);
  const tag = head.tag;
  const hdr = head.headerLength;
  const len = head.length;
  const start = off + hdr;
  const next = start + len;
  if (next > limit) throw new RangeError("DER value overruns its container");
  const constructed = (tag & 0x20) !== 0;
  const cls = tag & 0xc0;
  if (constructed) {
    if (cls === 0 && tag !== 0x30 && tag !== 0x31) throw new RangeError(`constructed universal tag ${tag & 0x1f} (BER, not DER)`);
    if (depth >= MAX_DEPTH) throw new RangeError("nested too deeply");
    walkAll(buf, start, next, depth + 1);
  } else if (cls === 0) {
    const c = buf.subarray(start, next);
    switch (tag) {
      case 0x01:
        if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw new RangeError("BOOLEAN is not 00 or FF");
        break;
      case 0x02:
      case 0x0a:
        if (c.length === 0) throw new RangeError("empty INTEGER");
        if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) throw new RangeError("INTEGER not in its minimal form");
        break;
      case 0x03:
        if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw new RangeError("bad BIT STRING unused-bits octet");
        if (c[0]! > 0 && (c[c.length - 1]! & ((1 << c[0]!) - 1)) !== 0) throw new RangeError("BIT STRING padding bits are not zero");
        break;
      case 0x05:
        if (c.length !== 0) throw new RangeError("NULL with content");
        break;
      case 0x10:
      case 0x11:
        throw new RangeError("primitive SEQUENCE or SET");
    }
  }
  return next;
}

function walkAll(buf: Uint8Array, off: number, end: number, depth: number): void {
  while (off < end) off = tlv(buf, off, end, depth);
}
