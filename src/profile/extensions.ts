/**
 * Encoders for the certificate extensions of the JPKI profile (RFC 5280 §4.2), producing extnValue
 * contents. The issuer assembles them into templates once per CA, so per-certificate work is small.
 */
import { hash } from "node:crypto";
import { bool, explicit, ia5, implicitPrimitive, integer, namedBits, octetString, oid, readHeader, seq } from "../pki/der.js";
import { AIA_OID } from "./oids.js";

export const KEY_USAGE_BIT = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export type KeyUsageName = keyof typeof KEY_USAGE_BIT;

export function keyUsage(names: readonly KeyUsageName[]): Buffer {
  return namedBits(names.map((n) => KEY_USAGE_BIT[n]));
}

export function basicConstraints(ca: boolean, pathLen?: number): Buffer {
  return ca ? seq(bool(true), ...(pathLen !== undefined ? [integer(pathLen)] : [])) : seq();
}

/** Key identifier, RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Uint8Array): Buffer {
  // One-shot hash: no Hash object per certificate on the issuing path.
  return hash("sha1", subjectPublicKeyOctets(spki), "buffer");
}

/**
 * keyIdentifier as 40 hexadecimal digits, for the end-entity TBS writer (ca/certificate.ts), which writes them into
 * its buffer as octets. A digest node returns as a Buffer is a Buffer made in C++: ≈ 3.6 K instructions more a call
 * than the same digest as hex (callgrind, SHA-256 of a 294-octet key alone), on the thread that feeds the signers.
 */
export function keyIdentifierHex(spki: Uint8Array): string {
  return hash("sha1", subjectPublicKeyOctets(spki), "hex");
}

/** The subjectPublicKey BIT STRING's value (after its unused-bits octet). */
function subjectPublicKeyOctets(spki: Uint8Array): Uint8Array {
  // SPKI ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const outer = readHeader(spki, 0);
  let off = outer.headerLength;
  const alg = readHeader(spki, off);
  off += alg.headerLength + alg.length;
  const bits = readHeader(spki, off);
  return spki.subarray(off + bits.headerLength + 1, off + bits.headerLength + bits.length);
}

export function subjectKeyIdentifier(keyId: Uint8Array): Buffer {
  return octetString(keyId);
}

/** AuthorityKeyIdentifier with keyIdentifier [0] only. */
export function authorityKeyIdentifier(keyId: Uint8Array): Buffer {
  return seq(implicitPrimitive(0, keyId));
}

/** GeneralNames holding one directoryName. */
export function generalNamesDirName(nameDer: Buffer): Buffer {
  return seq(explicit(4, nameDer));
}

/** certificatePolicies with one policy and, when given, a CPS pointer qualifier. */
export function certificatePolicies(policyOid: string, cpsUri?: string): Buffer {
  const qualifiers = cpsUri ? [seq(seq(oid(AIA_OID.cpsQualifier), ia5(cpsUri)))] : [];
  return seq(seq(oid(policyOid), ...qualifiers));
}

/**
 * cRLDistributionPoints with one DistributionPoint whose fullName lists a directoryName and,
 * optionally, URIs (RFC 5280 §4.2.1.13).
 */
export function crlDistributionPoints(dirName: Buffer | undefined, uris: readonly string[]): Buffer {
  const names = [...(dirName ? [explicit(4, dirName)] : []), ...uris.map((u) => implicitPrimitive(6, Buffer.from(u, "ascii")))];
  // DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName }; fullName [0] IMPLICIT GeneralNames
  return seq(seq(explicit(0, explicit(0, Buffer.concat(names)))));
}

/** authorityInfoAccess with caIssuers and/or OCSP URIs. */
export function authorityInfoAccess(opts: { caIssuers?: string; ocsp?: string }): Buffer {
  const ads: Buffer[] = [];
  if (opts.ocsp) ads.push(seq(oid(AIA_OID.ocsp), implicitPrimitive(6, Buffer.from(opts.ocsp, "ascii"))));
  if (opts.caIssuers) ads.push(seq(oid(AIA_OID.caIssuers), implicitPrimitive(6, Buffer.from(opts.caIssuers, "ascii"))));
  return seq(...ads);
}


/** extendedKeyUsage (RFC 5280 §4.2.1.12): the key purposes, by OID. */
export function extKeyUsage(purposes: readonly string[]): Buffer {
  return seq(...purposes.map((p) => oid(p)));
}
