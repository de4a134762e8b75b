/**
 * An independent reading of a TLV header, to test ours (src/pki/der.ts headAt) against: asn1js's identification and
 * length blocks (its BER decoder, which shares no code with ours), with the limits this project sets on top of
 * X.690 — at most four length octets, no indefinite length — and with `der` also no high tag number and no
 * non-shortest length (asn1js warns of those, it does not refuse them). Lenient, a high tag number's octets are
 * part of the header (at most four after the first octet); our readers give the first octet as the tag.
 */
import * as asn1js from "asn1js";

export interface RefHead {
  readonly tag: number;
  readonly headerLength: number;
  readonly length: number;
}

export function asn1jsHead(b: Uint8Array, offset: number, limit: number, der: boolean): RefHead | undefined {
  if (limit - offset < 2) return undefined;
  const id = new asn1js.BaseBlock().idBlock;
  // its other refusals (a constructed INTEGER…) are no header rule: only how far it read is asked (nothing: cut short)
  id.fromBER(b, offset, limit - offset);
  if (id.blockLength === 0) return undefined;
  if (id.blockLength > (der ? 1 : 5)) return undefined; // a high tag number: none in DER, at most four octets lenient
  const len = new asn1js.BaseBlock().lenBlock;
  const at = offset + id.blockLength;
  if (at >= limit || len.fromBER(b, at, limit - at) < 0 || len.isIndefiniteForm || len.blockLength - 1 > 4) return undefined;
  if (der && len.warnings.length) return undefined; // "Needlessly long encoded length", "Unnecessary usage of long length form"
  return { tag: b[offset]!, headerLength: id.blockLength + len.blockLength, length: len.length };
}
