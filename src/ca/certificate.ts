/**
 * Certificate assembly, RFC 5280 §4.1: TBSCertificate from pre-encoded parts, then the signed
 * Certificate. The issuer's name, algorithm and constant extensions are encoded once per CA.
 */
import { bitString, encodeTree, explicit, integer, integerFromUnsigned, seq, TAG, time, tree } from "../pki/der.js";

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
