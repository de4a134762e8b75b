/**
 * Key generation and encrypted-at-rest storage of CA keys: encrypted PKCS#8 (RFC 5958) with PBES2
 * (PBKDF2-HMAC-SHA256, ≥ 600,000 iterations, AES-256-CBC; built in ./key-wrap.ts), readable by `openssl pkey`;
 * and the check that a subject public key is the RSA-2048 DER key a JPKI card makes.
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { JpkiError } from "../errors.js";
import { bitString, children, integer, readHeader, seq } from "./der.js";
import { MAX_ITERATIONS, MIN_ITERATIONS, newKeyWrapParams, PBKDF2_ITERATIONS, pbkdf2Iterations, prepareKek, readWrappedKey, unwrapPrivateKey, wrapPrivateKey, type KeyWrapParams, type WrappedKey } from "./key-wrap.js";
import { parsePemBlocks, toPem } from "./pem.js";

export type { KeyWrapParams } from "./key-wrap.js";

export async function generateRsaKey(bits = 2048): Promise<KeyObject> {
  return new Promise((resolve, reject) =>
    generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) =>
      err ? reject(err) : resolve(priv),
    ),
  );
}

/**
 * Encrypts a CA key under the passphrase as PEM "ENCRYPTED PRIVATE KEY". `params` carries the workspace's
 * shared salt (see key-wrap.ts), so opening all its CAs derives the key-encryption key once; a fresh random
 * salt when omitted. Synchronous: the PBKDF2 derivation runs once per salt and passphrase in a process.
 */
export function encryptPrivateKey(key: KeyObject, passphrase: string, params: KeyWrapParams = newKeyWrapParams()): string {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "an empty passphrase cannot protect a CA key: set JPKI_PASSPHRASE");
  return toPem(wrapPrivateKey(key, passphrase.normalize("NFC"), params), "ENCRYPTED PRIVATE KEY");
}

/**
 * The forms of a passphrase a stored key is tried with, in order: as given, then its Unicode NFC and NFD forms
 * where they differ. The same Japanese passphrase arrives in different code points by the way it was typed: macOS
 * file names and some input methods give decomposed kana (か + U+3099 for が), most others the precomposed one,
 * and both look alike on the screen. New keys are wrapped under the NFC form (RFC 8265's OpaqueString rule for
 * passwords), so either typing opens them; keys wrapped before that under a decomposed passphrase still open as
 * they were typed, or typed the other way. A passphrase NFC leaves alone (any ASCII one) is tried once.
 */
export function passphraseForms(passphrase: string): string[] {
  const forms = [passphrase];
  for (const f of [passphrase.normalize("NFC"), passphrase.normalize("NFD")]) if (!forms.includes(f)) forms.push(f);
  return forms;
}

/**
 * The PBKDF2 parameters of a key we wrapped with the strong KDF, to share its salt with new keys of the same
 * workspace; undefined for any other form (e.g. OpenSSL's default of 2048 iterations: 'jpki ca rewrap').
 */
export function strongKeyWrapParams(pem: string): KeyWrapParams | undefined {
  const w = wrappedKeyOf(pem);
  return w && w.iterations >= PBKDF2_ITERATIONS ? { salt: w.salt, iterations: w.iterations } : undefined;
}

function wrappedKeyOf(pem: string) {
  try {
    const block = parsePemBlocks(pem).find((b) => b.label === "ENCRYPTED PRIVATE KEY");
    return block ? readWrappedKey(block.der) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a stored key whose form jpki never wrote, before any derivation: not encrypted at all (it would open
 * with any passphrase), not PBES2 with PBKDF2, or a PBKDF2 iteration count outside MIN_ITERATIONS–MAX_ITERATIONS
 * (too weak to have been ours, or so large that deriving it stalls the process). Such a key was altered in the
 * store: ERR_WORKSPACE_CORRUPT, the parameters are never used.
 */
function assertStoredKeyForm(pem: string, what: string): void {
  const refuse = (why: string) =>
    new JpkiError("ERR_WORKSPACE_CORRUPT", `${what} is stored ${why}: jpki never writes that, so the stored key was altered; it was not used (restore the workspace from a backup)`);
  let der: Buffer | undefined;
  try {
    der = parsePemBlocks(pem).find((b) => b.label === "ENCRYPTED PRIVATE KEY")?.der;
  } catch {
    der = undefined;
  }
  if (!der) throw refuse("without encryption, or not as PEM ENCRYPTED PRIVATE KEY");
  let iterations: number | undefined;
  try {
    iterations = pbkdf2Iterations(der);
  } catch {
    throw refuse("as damaged DER");
  }
  if (iterations === undefined) throw refuse("with a key derivation other than PBES2/PBKDF2");
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw refuse(`with ${iterations > MAX_ITERATIONS ? "an absurd" : "a weak"} PBKDF2 iteration count (${iterations}, outside ${MIN_ITERATIONS}–${MAX_ITERATIONS})`);
  }
}

/**
 * Decrypts a CA key. Keys in our form (key-wrap.ts) take the cached key-encryption key and one AES
 * decryption; any other encrypted PKCS#8 (older workspaces) goes to OpenSSL. Synchronous on purpose:
 * callers open CAs in constructors and factories, and only the first key of a workspace pays for PBKDF2.
 */
export function decryptPrivateKey(pem: string, passphrase: string, what = "the CA key"): KeyObject {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", `no passphrase for ${what}: set JPKI_PASSPHRASE or pass --passphrase-file`);
  assertStoredKeyForm(pem, what);
  const wrapped = wrappedKeyOf(pem);
  let failure: unknown;
  for (const form of passphraseForms(passphrase)) {
    const r = wrapped ? openWrapped(wrapped, form) : openOther(pem, form);
    if (r.key) return r.key;
    failure = r.failure ?? failure;
  }
  throw wrongPassphrase(what, failure);
}

/**
 * decryptPrivateKey with every PBKDF2 on the thread pool (see prepareKek), form after form as far as needed: the
 * event loop stays free, also for a passphrase typed in the other normalisation or a wrong one (up to three
 * derivations, where the synchronous fallback ran all but the first on the loop).
 */
export async function unlockPrivateKey(pem: string, passphrase: string, what = "the CA key"): Promise<KeyObject> {
  if (passphrase) assertStoredKeyForm(pem, what);
  const wrapped = passphrase ? wrappedKeyOf(pem) : undefined;
  if (!wrapped) return decryptPrivateKey(pem, passphrase, what);
  let failure: unknown;
  for (const form of passphraseForms(passphrase)) {
    await prepareKek(form, wrapped);
    const r = openWrapped(wrapped, form);
    if (r.key) return r.key;
    failure = r.failure ?? failure;
  }
  throw wrongPassphrase(what, failure);
}

function wrongPassphrase(what: string, cause?: unknown): JpkiError {
  return new JpkiError(
    "ERR_PASSPHRASE_WRONG",
    `the passphrase does not decrypt ${what}: check the one given (--passphrase-file, JPKI_PASSPHRASE or the prompt; or the key file is damaged)`,
    cause === undefined ? undefined : { cause },
  );
}

/** A key in our form under one form of the passphrase (the KEK from the cache when prepared). */
function openWrapped(wrapped: WrappedKey, form: string): { key?: KeyObject; failure?: unknown } {
  const pkcs8 = unwrapPrivateKey(wrapped, form);
  if (!pkcs8) return {};
  try {
    return { key: createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }) };
  } catch (e) {
    // the padding check passes for a wrong key-encryption key about once in 256 tries
    return { failure: e };
  } finally {
    pkcs8.fill(0);
  }
}

/** Any other encrypted PKCS#8 (older workspaces), through OpenSSL. */
function openOther(pem: string, form: string): { key?: KeyObject; failure?: unknown } {
  try {
    return { key: createPrivateKey({ key: pem, format: "pem", passphrase: form }) };
  } catch (e) {
    return { failure: e };
  }
}

export interface RsaPublicKeyInfo {
  readonly spki: Buffer;
  readonly bits: number;
  readonly exponent: bigint;
}

/** rsaEncryption with NULL parameters (RFC 3279 §2.3.1: the parameters MUST be NULL). */
const RSA_ALGORITHM_ID = Buffer.from("300d06092a864886f70d0101010500", "hex");
const RSA_ENCRYPTION_OID = RSA_ALGORITHM_ID.subarray(2, 13);
/** The public exponent a JPKI card uses (F4); anything else is not a card key. */
const F4 = 65537n;

/**
 * Decodes and checks a subject public key: RSA-2048 with exponent 65537, in DER, as the JPKI card generates.
 * Decoded here rather than through OpenSSL: this runs once per certificate on the issuing hot path, and
 * OpenSSL tolerates BER variants. After decoding, the key is re-encoded canonically from (n, e) and must
 * equal the input byte for byte, so any non-minimal length or INTEGER, indefinite length, constructed BIT
 * STRING or trailing byte is refused, and what we put into a certificate is always DER.
 *   ERR_KEY_UNSUPPORTED: another algorithm, modulus size or exponent.  ERR_KEY_MALFORMED: bad encoding.
 */
export function requireRsa2048(spkiDer: Uint8Array, what = "the subject public key"): RsaPublicKeyInfo {
  const der = Buffer.isBuffer(spkiDer) ? spkiDer : Buffer.from(spkiDer);
  if (isCanonicalRsa2048F4(der)) return { spki: der, bits: 2048, exponent: F4 };
  return slowRequireRsa2048(der, what);
}

/**
 * The DER of an RSA-2048 key with exponent 65537 has one shape only (every length is fixed once the modulus has
 * exactly 2048 bits, so its INTEGER is 0x00 and 256 bytes with the top bit set), which makes the common case a
 * byte comparison: the prefix up to the modulus, the modulus's first byte and parity, and the exponent. Anything
 * else goes through the full decode below, which says what is wrong; both accept exactly the same keys (tests).
 */
const RSA2048_F4_PREFIX = Buffer.from("30820122300d06092a864886f70d01010105000382010f003082010a0282010100", "hex");
const RSA2048_F4_SUFFIX = Buffer.from("0203010001", "hex");
const RSA2048_F4_LENGTH = RSA2048_F4_PREFIX.length + 256 + RSA2048_F4_SUFFIX.length;

function isCanonicalRsa2048F4(der: Buffer): boolean {
  const p = RSA2048_F4_PREFIX.length;
  return (
    der.length === RSA2048_F4_LENGTH &&
    der.compare(RSA2048_F4_PREFIX, 0, p, 0, p) === 0 &&
    (der[p]! & 0x80) !== 0 &&
    (der[p + 255]! & 1) === 1 &&
    der.compare(RSA2048_F4_SUFFIX, 0, RSA2048_F4_SUFFIX.length, p + 256) === 0
  );
}

function slowRequireRsa2048(der: Buffer, what: string): RsaPublicKeyInfo {
  const malformed = (why: string, cause?: unknown) =>
    new JpkiError("ERR_KEY_MALFORMED", `${what} is not a DER SubjectPublicKeyInfo (${why}): give the card's public key as PEM "PUBLIC KEY" or DER`, cause === undefined ? undefined : { cause });
  const unsupported = (why: string) => new JpkiError("ERR_KEY_UNSUPPORTED", `${what} ${why}, but JPKI certificates carry RSA-2048 keys with exponent 65537`);
  let n: bigint, e: bigint;
  try {
    const outer = readHeader(der);
    if (outer.tag !== 0x30 || outer.headerLength + outer.length !== der.length) throw malformed("not one SEQUENCE");
    const parts = children(der);
    if (parts.length !== 2) throw malformed("SubjectPublicKeyInfo has two fields");
    const [alg, bits] = parts as [Buffer, Buffer];
    if (alg[0] !== 0x30) throw malformed("the algorithm is not a SEQUENCE");
    const algOid = children(alg)[0];
    if (!algOid || algOid[0] !== 0x06) throw malformed("the algorithm has no OBJECT IDENTIFIER");
    if (!algOid.equals(RSA_ENCRYPTION_OID)) throw unsupported("is not an RSA key");
    if (!alg.equals(RSA_ALGORITHM_ID)) throw malformed("rsaEncryption needs NULL parameters");
    if (bits[0] !== 0x03) throw malformed("subjectPublicKey is not a primitive BIT STRING");
    const bh = readHeader(bits);
    if (bh.length < 1 || bits[bh.headerLength] !== 0) throw malformed("unused bits in an RSA key");
    const rsa = bits.subarray(bh.headerLength + 1);
    const rh = readHeader(rsa);
    if (rh.tag !== 0x30 || rh.headerLength + rh.length !== rsa.length) throw malformed("RSAPublicKey is not one SEQUENCE");
    const ints = children(rsa);
    if (ints.length !== 2 || ints[0]![0] !== 0x02 || ints[1]![0] !== 0x02) throw malformed("RSAPublicKey is not two INTEGERs");
    const value = (t: Buffer, name: string) => {
      const c = t.subarray(readHeader(t).headerLength);
      if (c.length === 0 || (c[0]! & 0x80) !== 0) throw malformed(`the ${name} is empty or negative`);
      return BigInt("0x" + c.toString("hex"));
    };
    n = value(ints[0]!, "modulus");
    e = value(ints[1]!, "public exponent");
  } catch (err) {
    if (err instanceof JpkiError) throw err;
    throw malformed("it cannot be decoded", err);
  }
  if (!seq(RSA_ALGORITHM_ID, bitString(seq(integer(n), integer(e)))).equals(der)) {
    throw malformed("a length or INTEGER is not in its minimal form, or bytes follow the key");
  }
  if (n % 2n === 0n) throw malformed("the RSA modulus is even or zero");
  const modulusBits = n.toString(2).length;
  if (modulusBits !== 2048) throw unsupported(`is RSA-${modulusBits}`);
  if (e !== F4) throw unsupported(`has the RSA public exponent ${e < 1n << 32n ? e.toString() : "(a large number)"}`);
  return { spki: der, bits: 2048, exponent: e };
}
