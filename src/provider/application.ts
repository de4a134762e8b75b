/**
 * The customer's side of enrolment (the seed's slide 3(4) ②, 電子証明書発行申請): an application signed with the key
 * of the public signature certificate (署名用電子証明書), as a CMS SignedData (RFC 5652 §5) with the content attached —
 * the form provider/enrol.ts accepts and `openssl cms -sign -nodetach` also makes.
 *
 * The signature goes through a `Signer` (pki/signer.ts), the interface the card, a token and a software key all
 * implement: the key never reaches this module. One SignerInfo, version 1 (issuerAndSerialNumber), SHA-256
 * (RFC 5754), sha256WithRSAEncryption, signed attributes contentType, signingTime and messageDigest (§11.1–11.3),
 * in DER order (a SET OF is sorted by its encodings, X.690 §11.6), the signer's certificate included.
 */
import { createHash } from "node:crypto";
import { certificateParts, explicit, headerLengthAt, integer, oid, octetString, seq, set, tlv, time } from "../pki/der.js";
import type { Signer } from "../pki/signer.js";
import { ALG_OID } from "../profile/oids.js";
import { CMS_OID } from "../validation/cms.js";

export interface SignApplicationParams {
  /** what is signed: a PKCS#10 request (PEM or DER) for the customer's new key, or an application document */
  readonly content: Uint8Array;
  /** the public signature certificate (DER) whose key `signer` holds */
  readonly certificate: Uint8Array;
  readonly signer: Signer;
  /** the signing-time attribute: when the customer signs (injected) */
  readonly signingTime: Date;
}

const SHA256_ALG = seq(oid(ALG_OID.sha256));

/** DER SET OF: its elements sorted by their encodings (X.690 §11.6). */
function setOf(items: Buffer[]): Buffer {
  return set(...[...items].sort(Buffer.compare));
}

/** A CMS SignedData (DER ContentInfo) over `content`, signed by `signer` for `certificate`. */
export async function signApplication(p: SignApplicationParams): Promise<Buffer> {
  const cert = Buffer.from(p.certificate);
  const parts = certificateParts(cert);
  const digest = createHash("sha256").update(p.content).digest();
  const attrs = setOf([
    seq(oid(CMS_OID.contentType), set(oid(CMS_OID.data))),
    seq(oid(CMS_OID.signingTime), set(time(new Date(Math.floor(p.signingTime.getTime() / 1000) * 1000)))),
    seq(oid(CMS_OID.messageDigest), set(octetString(digest))),
  ]);
  // §5.4: the signature is over the DER of the SET OF attributes; in the SignerInfo they go under [0] IMPLICIT.
  const signature = await p.signer.sign(attrs);
  const signedAttrs = tlv(0xa0, attrs.subarray(headerLengthAt(attrs)));
  const signerInfo = seq(
    integer(1),
    seq(Buffer.from(parts.issuer), Buffer.from(parts.serial)),
    SHA256_ALG,
    signedAttrs,
    p.signer.algorithmIdentifier,
    octetString(signature),
  );
  const signedData = seq(
    integer(1),
    set(SHA256_ALG),
    seq(oid(CMS_OID.data), explicit(0, octetString(p.content))),
    explicit(0, cert),
    set(signerInfo),
  );
  return seq(oid(CMS_OID.signedData), explicit(0, signedData));
}
