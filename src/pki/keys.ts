/**
 * Key generation and encrypted-at-rest storage of CA keys: encrypted PKCS#8 (RFC 5958) with PBES2
 * (PBKDF2-HMAC-SHA256, AES-256-CBC), readable by `openssl pkey`.
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { JpkiError } from "../errors.js";
import { children, readHeader } from "./der.js";

export async function generateRsaKey(bits = 2048): Promise<KeyObject> {
  return new Promise((resolve, reject) =>
    generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) =>
      err ? reject(err) : resolve(priv),
    ),
  );
}

export function encryptPrivateKey(key: KeyObject, passphrase: string): string {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "an empty passphrase cannot protect a CA key: set JPKI_PASSPHRASE");
  return key.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }) as string;
}

export function decryptPrivateKey(pem: string, passphrase: string, what = "the CA key"): KeyObject {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", `no passphrase for ${what}: set JPKI_PASSPHRASE or pass --passphrase-file`);
  try {
    return createPrivateKey({ key: pem, format: "pem", passphrase });
  } catch (e) {
    throw new JpkiError("ERR_PASSPHRASE_WRONG", `the passphrase does not decrypt ${what}: check JPKI_PASSPHRASE (or the key file is damaged)`, { cause: e });
  }
}

export interface RsaPublicKeyInfo {
  readonly spki: Buffer;
  readonly bits: number;
  readonly exponent: bigint;
}

const RSA_ALGORITHM_ID = Buffer.from("300d06092a864886f70d0101010500", "hex");

/**
 * Decodes and checks a subject public key: RSA with a 2048-bit modulus, as the JPKI card generates.
 * Decoded here in DER rather than through OpenSSL: this runs once per certificate on the issuing hot
 * path, and a strict decoder also refuses BER variants and trailing bytes that OpenSSL would tolerate.
 */
export function requireRsa2048(spkiDer: Uint8Array, what = "the subject public key"): RsaPublicKeyInfo {
  const der = Buffer.isBuffer(spkiDer) ? spkiDer : Buffer.from(spkiDer);
  let alg: Buffer, bits: Buffer, n: Buffer, e: Buffer;
  try {
    const outer = readHeader(der);
    if (outer.tag !== 0x30 || outer.headerLength + outer.length !== der.length) throw new RangeError("not one SEQUENCE");
    const parts = children(der);
    if (parts.length !== 2) throw new RangeError("SubjectPublicKeyInfo has two fields");
    [alg, bits] = parts as [Buffer, Buffer];
    if (bits[0] !== 0x03) throw new RangeError("subjectPublicKey is a BIT STRING");
    if (!alg.equals(RSA_ALGORITHM_ID)) {
      throw new JpkiError("ERR_KEY_UNSUPPORTED", `${what} is not an RSA key, but JPKI certificates carry RSA-2048 keys`);
    }
    const bh = readHeader(bits);
    if (bits[bh.headerLength] !== 0) throw new RangeError("unused bits in an RSA key");
    const rsa = bits.subarray(bh.headerLength + 1);
    const rh = readHeader(rsa);
    if (rh.tag !== 0x30 || rh.headerLength + rh.length !== rsa.length) throw new RangeError("RSAPublicKey is one SEQUENCE");
    const ints = children(rsa);
    if (ints.length !== 2 || ints[0]![0] !== 0x02 || ints[1]![0] !== 0x02) throw new RangeError("RSAPublicKey has two INTEGERs");
    n = ints[0]!.subarray(readHeader(ints[0]!).headerLength);
    e = ints[1]!.subarray(readHeader(ints[1]!).headerLength);
  } catch (err) {
    if (err instanceof JpkiError) throw err;
    throw new JpkiError("ERR_KEY_MALFORMED", `${what} is not a DER SubjectPublicKeyInfo: give the card's public key as PEM "PUBLIC KEY" or DER`, { cause: err });
  }
  // Minimal positive INTEGER: a leading 0x00 only when the next byte has its top bit set.
  const nBytes = n[0] === 0 ? n.subarray(1) : n;
  if (n.length === 0 || (n[0]! & 0x80) !== 0 || (n[0] === 0 && n.length > 1 && (n[1]! & 0x80) === 0)) {
    throw new JpkiError("ERR_KEY_MALFORMED", `${what} has a malformed RSA modulus`);
  }
  const modulusBits = nBytes.length * 8 - Math.clz32(nBytes[0]!) + 24;
  if (modulusBits !== 2048) {
    throw new JpkiError("ERR_KEY_UNSUPPORTED", `${what} is RSA-${modulusBits}, but JPKI certificates carry RSA-2048 keys`);
  }
  const exponent = BigInt("0x" + (e.toString("hex") || "0"));
  if (e.length === 0 || (e[0]! & 0x80) !== 0 || exponent < 3n || exponent % 2n === 0n) {
    throw new JpkiError("ERR_KEY_UNSUPPORTED", `${what} has an unusable RSA public exponent`);
  }
  return { spki: der, bits: 2048, exponent };
}
