/**
 * PKCS#10 certification requests (RFC 2986) made by the card: decoded, signature checked, public key
 * extracted. Nothing else in the request is trusted: the four items always come from the registry.
 */
import { verify as nodeVerify, createPublicKey } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { JpkiError } from "../errors.js";
import { children, oid, readHeader, seq } from "../pki/der.js";
import { assertDer } from "../pki/der-strict.js";
import { requireRsa2048 } from "../pki/keys.js";
import { pemOrDer } from "../pki/pem.js";
import { ALG_OID } from "../profile/oids.js";
import { SHA256_WITH_RSA } from "../pki/signer.js";

/**
 * The one signature algorithm a JPKI request may carry: sha256WithRSAEncryption (RSA PKCS#1 v1.5, SHA-256).
 * RFC 4055 §5 says its parameters MUST be NULL and that implementations MUST accept them absent as well,
 * so both encodings are accepted; any other parameters are malformed.
 */
const SHA256_WITH_RSA_FORMS = [SHA256_WITH_RSA, seq(oid(ALG_OID.sha256WithRSAEncryption))];

/** Names for the refusal message; the OID itself is shown for anything else. */
const ALGORITHM_NAMES: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
};

/**
 * Returns the request's SubjectPublicKeyInfo DER after checking that the request is DER, signed with
 * sha256WithRSAEncryption, carries an RSA-2048 key with exponent 65537 (requireRsa2048), and that its
 * self-signature verifies. The SPKI returned is the request's own bytes, never a re-encoding.
 */
export function verifyCsr(input: Uint8Array): Buffer {
  const der = (() => {
    try {
      return pemOrDer(input, ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"], "certificate request");
    } catch (e) {
      throw new JpkiError("ERR_CSR_MALFORMED", (e as Error).message, { cause: e });
    }
  })();
  let csr: CertificationRequest;
  let info: Buffer, alg: Buffer, sigBits: Buffer, spki: Buffer;
  try {
    assertDer(der);
    csr = AsnConvert.parse(der, CertificationRequest);
    const parts = children(der);
    if (parts.length !== 3) throw new RangeError("a request has three fields");
    [info, alg, sigBits] = parts as [Buffer, Buffer, Buffer];
    const infoParts = children(info);
    if (infoParts.length !== 4 || !infoParts[0]!.equals(Buffer.from([0x02, 0x01, 0x00]))) throw new RangeError("CertificationRequestInfo is version 1 with four fields");
    spki = infoParts[2]!;
    if (sigBits[0] !== 0x03 || sigBits[readHeader(sigBits).headerLength] !== 0) throw new RangeError("the signature is a BIT STRING without unused bits");
  } catch (e) {
    throw new JpkiError("ERR_CSR_MALFORMED", `the certificate request is not valid PKCS#10 DER (${(e as Error).message}): regenerate it on the card`, { cause: e });
  }
  const algorithm = csr.signatureAlgorithm.algorithm;
  if (algorithm !== ALG_OID.sha256WithRSAEncryption) {
    throw new JpkiError(
      "ERR_CSR_UNSUPPORTED",
      `the certificate request is signed with ${ALGORITHM_NAMES[algorithm] ?? algorithm}; JPKI requests use RSA PKCS#1 v1.5 with SHA-256 (sha256WithRSAEncryption): regenerate it on the card`,
    );
  }
  if (!SHA256_WITH_RSA_FORMS.some((f) => f.equals(alg))) {
    throw new JpkiError("ERR_CSR_MALFORMED", "the request's sha256WithRSAEncryption carries parameters other than NULL (RFC 4055 §5): regenerate it on the card");
  }
  requireRsa2048(spki, "the request's public key");
  let ok = false;
  try {
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    ok = nodeVerify("sha256", info, key, sigBits.subarray(readHeader(sigBits).headerLength + 1));
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
