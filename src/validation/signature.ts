/**
 * Signature checks for certificates and CRLs (RFC 5280 §6.1.3(a)(1), §6.3.3(g)), over the exact signed bytes,
 * with the working public key of §6.1 — including DSA parameters inherited from the issuer (§6.1.4(f)).
 */
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { seq } from "../pki/der.js";
import { decodeOid, items, type Tlv } from "./asn1.js";
import type { SubjectPublicKey } from "./certificate.js";

const DSA_KEY = "1.2.840.10040.4.1";

/** signatureAlgorithm OID → Node digest name (null: the key fixes it, as for EdDSA) */
const SIGNATURE_DIGEST: Record<string, string | null> = {
  "1.2.840.113549.1.1.5": "sha1",
  "1.2.840.113549.1.1.14": "sha224",
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.10040.4.3": "sha1",
  "2.16.840.1.101.3.4.3.1": "sha224",
  "2.16.840.1.101.3.4.3.2": "sha256",
  "1.2.840.10045.4.1": "sha1",
  "1.2.840.10045.4.3.1": "sha224",
  "1.2.840.10045.4.3.2": "sha256",
  "1.2.840.10045.4.3.3": "sha384",
  "1.2.840.10045.4.3.4": "sha512",
  "1.3.101.112": null,
  "1.3.101.113": null,
};

/** The working public key: the key with the parameters it inherits when its own are absent (§6.1.4(d)–(f)). */
export interface WorkingKey {
  readonly spki: SubjectPublicKey;
  /** parameters in force: the key's own, or inherited from the issuer for the same algorithm */
  readonly parameters?: Tlv;
}

export function workingKeyOf(spki: SubjectPublicKey, previous?: WorkingKey): WorkingKey {
  if (spki.parameters) return { spki, parameters: spki.parameters };
  if (previous && previous.spki.algorithm === spki.algorithm) return { spki, parameters: previous.parameters };
  return { spki };
}

function keyObject(k: WorkingKey): KeyObject {
  if (k.spki.algorithm === DSA_KEY && !k.spki.parameters && k.parameters) {
    // Rebuild the SubjectPublicKeyInfo with the inherited Dss-Parms so the key is usable.
    const [, bits] = items(k.spki.der);
    const der = seq(seq(Buffer.from([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]), k.parameters.der), bits!.der);
    return createPublicKey({ key: der, format: "der", type: "spki" });
  }
  return createPublicKey({ key: k.spki.der, format: "der", type: "spki" });
}

/** The signature algorithms this engine checks (RSASSA-PSS and others are reported as unsupported). */
export function signatureAlgorithmSupported(algorithm: Tlv): boolean {
  try {
    return SIGNATURE_DIGEST[decodeOid(items(algorithm)[0]!)] !== undefined;
  } catch {
    return false;
  }
}

/** true when `signature` over `data` verifies under the working key; false for a bad or unsupported signature. */
export function verifySignature(data: Buffer, algorithm: Tlv, signature: Buffer, key: WorkingKey): boolean {
  try {
    const oid = decodeOid(items(algorithm)[0]!);
    const digest = SIGNATURE_DIGEST[oid];
    if (digest === undefined) return false;
    return verify(digest, data, keyObject(key), signature);
  } catch {
    return false;
  }
}
