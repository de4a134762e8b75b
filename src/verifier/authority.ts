/**
 * The verifier CA: the workspace's own CA for the client certificates registered signature verifiers
 * (署名検証者) present over mutual TLS (RFC 8446 §4.3.2, §4.4.2). It is not a JPKI CA: nothing it signs is
 * published or chains to a prefecture CA, and `jpki serve` trusts it for client authentication only. Its key
 * is RSA-2048, encrypted at rest under the workspace passphrase exactly as the CA keys are (pki/keys.ts), and
 * lives in the store (so `jpki store copy` moves it and every host of a PostgreSQL workspace shares it).
 *
 * Client certificate profile (ours): subject CN = the verifier id, O = its registered name; EKU clientAuth;
 * keyUsage digitalSignature; validity `days` (default 397, the longest browsers accept for TLS certificates).
 */
import { X509Certificate, createPublicKey, type KeyObject } from "node:crypto";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { JpkiError } from "../errors.js";
import { certificateParts, extension, oid, seq } from "../pki/der.js";
import { encryptPrivateKey, generateRsaKey, unlockPrivateKey, type KeyWrapParams } from "../pki/keys.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { authorityKeyIdentifier, basicConstraints, keyIdentifier, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import type { VerifierCaRecord } from "../store/types.js";

/** id-kp-clientAuth, RFC 5280 §4.2.1.12. */
const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
export const VERIFIER_CA_YEARS = 10;
export const DEFAULT_CLIENT_CERT_DAYS = 397;

/** Whole seconds: X.509 times carry no fractions. */
const seconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

export async function createVerifierCa(opts: { passphrase: string; now: Date; keyWrap?: KeyWrapParams }): Promise<VerifierCaRecord> {
  const key = await generateRsaKey(2048);
  const signer = new SoftwareSigner(key);
  const name = encodeName([["countryName", "JP"], ["organizationName", "jpki"], ["commonName", "jpki verifier CA"]]);
  const nb = seconds(opts.now);
  const na = new Date(nb);
  na.setUTCFullYear(na.getUTCFullYear() + VERIFIER_CA_YEARS);
  const keyId = keyIdentifier(signer.spki);
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: name,
    notBefore: nb,
    notAfter: na,
    subject: name,
    spki: signer.spki,
    extensions: [
      extension(EXT_OID.basicConstraints, true, basicConstraints(true, 0)),
      extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyId)),
    ],
  });
  const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
  return { certificateDer: der, encryptedKeyPem: encryptPrivateKey(key, opts.passphrase, opts.keyWrap), createdAt: nb };
}

export interface ClientCertificate {
  readonly der: Buffer;
  readonly notAfter: Date;
}

/** Signs a verifier's client certificate for `spki` (DER SubjectPublicKeyInfo), and checks what it signed. */
export async function issueClientCertificate(
  ca: VerifierCaRecord,
  opts: { passphrase: string; verifierId: string; name: string; spki: Buffer; now: Date; days?: number },
): Promise<ClientCertificate> {
  const caKey: KeyObject = await unlockPrivateKey(ca.encryptedKeyPem, opts.passphrase, "the verifier CA key");
  const signer = new SoftwareSigner(caKey);
  const caCert = new X509Certificate(ca.certificateDer);
  const nb = seconds(opts.now);
  const days = opts.days ?? DEFAULT_CLIENT_CERT_DAYS;
  const notAfter = new Date(Math.min(nb.getTime() + days * 86_400_000, new Date(caCert.validTo).getTime()));
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: signer.algorithmIdentifier,
    issuer: certificateParts(ca.certificateDer).subject,
    notBefore: nb,
    notAfter,
    subject: encodeName([["countryName", "JP"], ["organizationName", opts.name], ["commonName", opts.verifierId]]),
    spki: opts.spki,
    extensions: [
      extension(EXT_OID.basicConstraints, true, basicConstraints(false)),
      extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"])),
      extension(EXT_OID.extKeyUsage, false, seq(oid(CLIENT_AUTH))),
      extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyIdentifier(opts.spki))),
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(keyIdentifier(signer.spki))),
    ],
  });
  const der = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
  // Check what we signed (STYLE.md §9): it parses, verifies under the CA key and names the verifier.
  const x = new X509Certificate(der);
  if (!x.verify(createPublicKey(caKey)) || !x.checkIssued(caCert) || !x.subject.includes(`CN=${opts.verifierId}`)) {
    throw new JpkiError("ERR_INTERNAL", "the verifier client certificate just signed does not verify: nothing was registered");
  }
  return { der, notAfter };
}
