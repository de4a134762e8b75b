/**
 * PKCS#10 certification requests (RFC 2986) made by the card: decoded, signature checked, public key
 * extracted. Nothing else in the request is trusted: the four items always come from the registry.
 */
import { verify as nodeVerify, createPublicKey } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { JpkiError } from "../errors.js";
import { children } from "../pki/der.js";
import { pemOrDer } from "../pki/pem.js";

/** RSA PKCS#1 v1.5 signature algorithms a card may use for its request. */
const SIGNATURE_HASH: Record<string, string> = {
  "1.2.840.113549.1.1.11": "sha256",
  "1.2.840.113549.1.1.12": "sha384",
  "1.2.840.113549.1.1.13": "sha512",
  "1.2.840.113549.1.1.5": "sha1",
};

/** Returns the request's SubjectPublicKeyInfo DER after checking its self-signature. */
export function verifyCsr(input: Uint8Array): Buffer {
  const der = (() => {
    try {
      return pemOrDer(input, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"], "certificate request");
    } catch (e) {
      throw new JpkiError("ERR_CSR_MALFORMED", (e as Error).message, { cause: e });
    }
  })();
  let csr: CertificationRequest;
  let info: Buffer;
  try {
    csr = AsnConvert.parse(der, CertificationRequest);
    info = children(der)[0]!;
  } catch (e) {
    throw new JpkiError("ERR_CSR_MALFORMED", "the certificate request is not valid PKCS#10 DER: regenerate it on the card", { cause: e });
  }
  const spki = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo));
  const hash = SIGNATURE_HASH[csr.signatureAlgorithm.algorithm];
  if (!hash) {
    throw new JpkiError("ERR_CSR_MALFORMED", `the certificate request is signed with ${csr.signatureAlgorithm.algorithm}; JPKI requests use RSA PKCS#1 v1.5 with SHA-256`);
  }
  let ok = false;
  try {
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    ok = nodeVerify(hash, info, key, Buffer.from(csr.signature));
  } catch (e) {
    throw new JpkiError("ERR_CSR_MALFORMED", "the certificate request's public key or signature cannot be decoded", { cause: e });
  }
  if (!ok) {
    throw new JpkiError("ERR_CSR_SIGNATURE", "the certificate request's signature does not verify with its own key: it was altered or signed by another key");
  }
  return spki;
}

/** Accepts a SubjectPublicKeyInfo as PEM "PUBLIC KEY" or DER. */
export function readSpki(input: Uint8Array): Buffer {
  try {
    return pemOrDer(input, ["PUBLIC KEY"], "public key");
  } catch (e) {
    throw new JpkiError("ERR_KEY_MALFORMED", (e as Error).message, { cause: e });
  }
}
