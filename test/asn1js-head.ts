/**
 * An independent reading of a TLV header, to test ours (src/pki/der.ts headAt) against: asn1js's identification and
 * length blocks (its BER decoder, which shares no code with ours), with the limits this project sets on top of
 * X.690 — at most four length octets, no indefinite length — and with `der` also no high tag number and no
 * non-shortest length (asn1js warns of those, it does not refuse them). Our readers take the first octet as the
 * tag, as readHeader always did, so the length block is read after it.
 */
import * as asn1js from "asn1js";

export interface RefHead {
  readonly tag: number;
  readonly headerLength: number;
  readonly length: number;
}

export function asn1jsHead(b: Uint8Array, offset: number, limit: number, der: boolean): RefHead | undefined {
  if (limit - offset < 2) return undefined;
  if (der) {
    const id = new asn1js.BaseBlock().idBlock;
    id.fromBER(b, offset, limit - offset); // its other refusals (a constructed INTEGER…) are no header rule: not asked
    if (id.blockLength !== 1) return undefined; // a tag of more octets (high number)
  }
  const len = new asn1js.BaseBlock().lenBlock;
  if (len.fromBER(b, offset + 1, limit - offset - 1) < 0 || len.isIndefiniteForm || len.blockLength - 1 > 4) return undefined;
  if (der && len.warnings.length) return undefined; // "Needlessly long encoded length", "Unnecessary usage of long length form"
  return { tag: b[offset]!, headerLength: 1 + len.blockLength, length: len.length };
}
