/**
 * The Signer interface (STYLE.md §8): a software key, a PKCS#11 token and the emulated card all sign
 * through it, so the CA and CRL code never see private key material.
 */
import { createHash, createPublicKey, privateEncrypt, publicDecrypt, sign as nodeSign, constants, type KeyObject } from "node:crypto";
import { JpkiError } from "../errors.js";
import { ALG_OID } from "../profile/oids.js";
import { nul, oid, seq } from "./der.js";

export interface Signer {
  /** DER of the AlgorithmIdentifier this signer produces (sha256WithRSAEncryption). */
  readonly algorithmIdentifier: Buffer;
  /** DER SubjectPublicKeyInfo of the signing key. */
  readonly spki: Buffer;
  /** Signs data (a TBS structure given whole or as consecutive chunks). */
  sign(data: Uint8Array | readonly Uint8Array[]): Promise<Buffer>;
  /**
   * True when every signature is checked against the public key before the signer returns it, so a fault
   * (a miscomputed RSA-CRT half, a token returning garbage) can never come back as a signature. Issuance
   * verifies each certificate's signature itself when this is false.
   */
  readonly selfVerifying: boolean;
  /**
   * Signs the SHA-256 digest of data the caller hashed itself: a streamed CRL is hashed while the key is still
   * being unlocked, so only this step waits for it.
   */
  signDigest(sha256: Uint8Array): Promise<Buffer>;
}

export const SHA256_WITH_RSA: Buffer = seq(oid(ALG_OID.sha256WithRSAEncryption), nul());

/** What a signature by a key will look like, known from its public key alone (before the key is unlocked). */
export interface SignatureShape {
  /** the AlgorithmIdentifier the key's Signer produces */
  readonly algorithmIdentifier: Buffer;
  /** the signature's length in bytes: an RSA PKCS#1 v1.5 signature is as long as the modulus (RFC 8017 §8.2.1) */
  readonly length: number;
}

/** Public keys by SPKI (its bytes as a latin1 string): a run publishes many CRLs per CA, each checked against it. */
const publicKeys = new Map<string, { key: KeyObject; shape: SignatureShape | undefined }>();
const KEYS_KEPT = 1024;

function parsedSpki(spki: Uint8Array): { key: KeyObject; shape: SignatureShape | undefined } {
  // Parsing a key took about 1 ms, three times per CRL (its shape twice, its signature check): with 94 CAs and
  // their partitions, over a thousand parses per ingestion run.
  const bytes = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  const id = bytes.toString("latin1");
  let e = publicKeys.get(id);
  if (!e) {
    e = { key: createPublicKey({ key: bytes, format: "der", type: "spki" }), shape: undefined };
    if (publicKeys.size >= KEYS_KEPT) publicKeys.clear();
    publicKeys.set(id, e);
  }
  return e;
}

/** The public key of a DER SubjectPublicKeyInfo, parsed once per key. */
export function publicKeyOf(spki: Uint8Array): KeyObject {
  return parsedSpki(spki).key;
}

/**
 * Whether `signature` is an RSA PKCS#1 v1.5 signature (RFC 8017 §8.2.2) of the SHA-256 `digest` under `spki`: the
 * key's length, and the whole DigestInfo recovered from it byte for byte (for data its signer hashed elsewhere).
 */
export function signatureOfDigestVerifies(spki: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = publicKeyOf(spki);
    if (signature.length !== Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 0) / 8)) return false;
    return publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature).equals(Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]));
  } catch {
    return false;
  }
}

/** The shape of the signatures a Signer over this SubjectPublicKeyInfo makes (RSA only, as SoftwareSigner). */
export function signatureShape(spki: Uint8Array): SignatureShape {
  const e = parsedSpki(spki);
  if (e.shape) return e.shape;
  const bits = e.key.asymmetricKeyDetails?.modulusLength;
  if (e.key.asymmetricKeyType !== "rsa" || !bits) throw new JpkiError("ERR_KEY_UNSUPPORTED", "a CA signs with an RSA key");
  return (e.shape = Object.freeze({ algorithmIdentifier: SHA256_WITH_RSA, length: Math.ceil(bits / 8) }));
}

/** DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1). */
export const SHA256_DIGEST_INFO_PREFIX: Buffer = Buffer.from("3031300d060960864801650304020105000420", "hex");

/**
 * A software RSA key held as a node KeyObject. Whole-buffer signs go to libuv's thread pool, so a
 * batch with several signatures in flight uses every core without blocking the event loop.
 */
export class SoftwareSigner implements Signer {
  readonly algorithmIdentifier = SHA256_WITH_RSA;
  /**
   * OpenSSL's RSA private operation (rsa_ossl_mod_exp) raises the CRT result to e and compares it with the
   * input before returning it, recomputing without CRT on a mismatch: a software signature is verified by the
   * operation that makes it, so issuance need not verify it again (about a tenth of an RSA sign per certificate).
   */
  readonly selfVerifying = true;
  readonly spki: Buffer;
  readonly #key: KeyObject;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "rsa") {
      throw new JpkiError("ERR_KEY_UNSUPPORTED", "a software signer needs an RSA private key");
    }
    this.#key = privateKey;
    this.spki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  }

  sign(data: Uint8Array | readonly Uint8Array[]): Promise<Buffer> {
    if (data instanceof Uint8Array) {
      return new Promise((resolve, reject) =>
        nodeSign("sha256", data, this.#key, (err, sig) => (err ? reject(err) : resolve(sig))),
      );
    }
    // Chunked data: hash as it comes, then sign the DigestInfo, never joining the chunks.
    const h = createHash("sha256");
    for (const c of data) h.update(c);
    return this.signDigest(h.digest());
  }

  signDigest(sha256: Uint8Array): Promise<Buffer> {
    if (sha256.length !== 32) return Promise.reject(new RangeError("a SHA-256 digest is 32 bytes"));
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO_PREFIX, sha256]);
    return Promise.resolve(privateEncrypt({ key: this.#key, padding: constants.RSA_PKCS1_PADDING }, digestInfo));
  }
}
