/**
 * Password-based key wrapping of CA keys: EncryptedPrivateKeyInfo (RFC 5958 §3) with PBES2 (RFC 8018 §6.2),
 * PBKDF2-HMAC-SHA256 (RFC 8018 §5.2, §B.1.2) and AES-256-CBC (RFC 8018 §B.2.5, IV as the parameter).
 *
 *   EncryptedPrivateKeyInfo ::= SEQUENCE {
 *     encryptionAlgorithm  { id-PBES2, PBES2-params {
 *                              keyDerivationFunc { id-PBKDF2, PBKDF2-params { salt OCTET STRING, iterationCount,
 *                                                  prf { id-hmacWithSHA256, NULL } } },
 *                              encryptionScheme  { aes256-CBC, iv OCTET STRING (16) } } },
 *     encryptedData        OCTET STRING }             -- AES-256-CBC(PKCS#8 PrivateKeyInfo), PKCS#7 padding
 *
 * `openssl pkey -passin` reads it. We build it ourselves because Node's `KeyObject.export({cipher})` always
 * uses OpenSSL's default of 2048 PBKDF2 iterations. keyLength is omitted (AES-256 has one key size), as
 * OpenSSL does, so the same parser also reads the keys Node/OpenSSL wrote before.
 *
 * Cost: ≥ 600,000 iterations (OWASP 2023 for PBKDF2-HMAC-SHA256) take ~0.1–0.3 s. All CA keys of a workspace
 * share one salt, so the key-encryption key (KEK) is derived once per (salt, iterations, passphrase) and
 * process and kept in memory; each CA then costs one AES decryption. Every key still has its own random IV.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import { children, integer, nul, octetString, oid, readHeader, seq } from "./der.js";

export const PBKDF2_ITERATIONS = 600_000;
/**
 * The PBKDF2 iteration counts a stored key may ask for. Below: weaker than anything jpki or OpenSSL's default
 * (2048, the older keys 'jpki ca rewrap' upgrades) ever wrote. Above: deriving would stall the process for
 * minutes to hours (the count is a 32-bit field). Either way the stored key was altered: refused, not derived.
 */
export const MIN_ITERATIONS = 2048;
export const MAX_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;

const OID = {
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  hmacWithSHA256: "1.2.840.113549.2.9",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
} as const;

/** The PBKDF2 parameters a wrapped key was made with; shared by every CA key of a workspace. */
export interface KeyWrapParams {
  readonly salt: Uint8Array;
  readonly iterations: number;
}

/** Fresh parameters for a new workspace (or a rewrap): a random salt and the strong iteration count. */
export function newKeyWrapParams(): KeyWrapParams {
  return { salt: randomBytes(SALT_BYTES), iterations: PBKDF2_ITERATIONS };
}

/** A parsed EncryptedPrivateKeyInfo in the form above. */
export interface WrappedKey extends KeyWrapParams {
  readonly iv: Buffer;
  readonly encryptedData: Buffer;
}

function encode(w: WrappedKey): Buffer {
  return seq(
    seq(
      oid(OID.pbes2),
      seq(
        seq(oid(OID.pbkdf2), seq(octetString(w.salt), integer(w.iterations), seq(oid(OID.hmacWithSHA256), nul()))),
        seq(oid(OID.aes256Cbc), octetString(w.iv)),
      ),
    ),
    octetString(w.encryptedData),
  );
}

/**
 * Reads an EncryptedPrivateKeyInfo (DER) if it is exactly in the form above, else undefined (scrypt,
 * another PRF or cipher, BER...: left to OpenSSL). Parsed loosely, then re-encoded and compared byte for byte.
 */
export function readWrappedKey(der: Uint8Array): WrappedKey | undefined {
  try {
    const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
    const [alg, data] = children(buf);
    const [, pbes2] = children(alg!);
    const [kdf, enc] = children(pbes2!);
    const [, kdfParams] = children(kdf!);
    const [salt, iter] = children(kdfParams!);
    const [, iv] = children(enc!);
    const content = (t: Buffer) => t.subarray(readHeader(t).headerLength);
    const iterBytes = content(iter!);
    if (iterBytes.length === 0 || iterBytes.length > 4) return undefined;
    const iterations = iterBytes.readUIntBE(0, iterBytes.length);
    if (iterations < 1 || iterations > MAX_ITERATIONS) return undefined;
    const w: WrappedKey = { salt: content(salt!), iterations, iv: content(iv!), encryptedData: content(data!) };
    if (w.iv.length !== 16 || w.salt.length < 8 || w.salt.length > 64 || w.encryptedData.length % 16 !== 0) return undefined;
    return encode(w).equals(buf) ? w : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The PBKDF2 iteration count of an EncryptedPrivateKeyInfo in any PBES2/PBKDF2 form (any PRF, cipher or
 * salt encoding), or undefined when it is not PBES2 with PBKDF2 (scrypt, PBES1, PKCS#12 PBE: nothing jpki
 * ever wrote, and scrypt's cost parameters would stall OpenSSL as a huge count does). Throws RangeError on bad DER.
 */
export function pbkdf2Iterations(der: Uint8Array): number | undefined {
  const [alg] = children(der);
  const [algOid, pbes2] = children(alg!);
  if (!algOid!.equals(oid(OID.pbes2)) || !pbes2) return undefined;
  const [kdf] = children(pbes2);
  const [kdfOid, kdfParams] = children(kdf!);
  if (!kdfOid!.equals(oid(OID.pbkdf2)) || !kdfParams) return undefined;
  const iter = children(kdfParams)[1];
  if (!iter || iter[0] !== 0x02) return undefined;
  const content = iter.subarray(readHeader(iter).headerLength);
  // a negative or over-long INTEGER is no count: say so with a count outside the range
  if (content.length === 0 || content[0]! & 0x80) return 0;
  return content.length > 6 ? Number.MAX_SAFE_INTEGER : content.readUIntBE(0, content.length);
}

// The KEK cache. Keyed by an HMAC of the passphrase under a per-process random key, so the map holds no
// plain digest of the passphrase; bounded, since a process works with one workspace (one or two entries).
const CACHE_LIMIT = 8;
const cacheKeyKey = randomBytes(32);
const kekCache = new Map<string, Buffer>();

/** Zero-fills and drops every cached KEK: for a process done with its CA keys, and for tests. */
export function forgetKeks(): void {
  for (const k of kekCache.values()) k.fill(0);
  kekCache.clear();
}

function cacheId(passphrase: string, p: KeyWrapParams): string {
  return createHmac("sha256", cacheKeyKey).update(Buffer.from(p.salt)).update(`\0${p.iterations}\0`).update(passphrase, "utf8").digest("hex");
}

function remember(id: string, k: Buffer): Buffer {
  if (kekCache.size >= CACHE_LIMIT) kekCache.delete(kekCache.keys().next().value!);
  kekCache.set(id, k);
  return k;
}

function kek(passphrase: string, p: KeyWrapParams): Buffer {
  const id = cacheId(passphrase, p);
  const cached = kekCache.get(id);
  if (cached) return cached;
  derivedParams = { salt: Buffer.from(p.salt), iterations: p.iterations };
  return remember(id, pbkdf2Sync(Buffer.from(passphrase, "utf8"), p.salt, p.iterations, 32, "sha256"));
}

/** Derivations running on the thread pool, by cache id: a second caller waits for the first's. */
const deriving = new Map<string, Promise<void>>();

/**
 * The file in a workspace naming its key-wrap parameters (salt and count, not secret), which the launcher reads to
 * start the PBKDF2 before the program has loaded (bin/early-kek.cjs). Written by the workspace (rememberKeyWrap).
 */
export const KEY_WRAP_HINT_FILE = "key-wrap-params.json";

/** What the launcher left: a KEK being derived for these parameters and the passphrase whose HMAC is `check`. */
interface EarlyKek {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly nonce: Buffer;
  readonly check: Buffer;
  readonly kek: Promise<Buffer | undefined>;
}
const EARLY_KEK = Symbol.for("jpki.early-kek");

/** The launcher's derivation when it is for exactly these parameters and this passphrase, else undefined. */
function earlyKek(passphrase: string, p: KeyWrapParams): Promise<Buffer | undefined> | undefined {
  const e = (globalThis as { [EARLY_KEK]?: EarlyKek })[EARLY_KEK];
  if (!e || e.iterations !== p.iterations || !Buffer.from(p.salt).equals(e.salt)) return undefined;
  const check = createHmac("sha256", e.nonce).update(passphrase, "utf8").digest();
  if (check.length !== e.check.length || !timingSafeEqual(check, e.check)) return undefined;
  // Taken once: from here the KEK cache holds it (and forgetKeks, which zero-fills the cache, must not leave a
  // zeroed key behind for the next unlock to take).
  delete (globalThis as { [EARLY_KEK]?: EarlyKek })[EARLY_KEK];
  return e.kek;
}

/** The parameters of the last KEK this process derived itself (not found cached, not the launcher's). */
let derivedParams: KeyWrapParams | undefined;

/**
 * The key-wrap parameters this process had to derive a KEK for, if any: what the workspace's hint should name so
 * that the next run's launcher starts the right derivation. Cleared by the call.
 */
export function takeDerivedKeyWrap(): KeyWrapParams | undefined {
  const p = derivedParams;
  derivedParams = undefined;
  return p;
}

/**
 * Derives the key-encryption key on libuv's thread pool and caches it, so the unwrap that follows is one AES
 * decryption: a caller with other work (reading a CRL's entries) does it while PBKDF2 runs. Callers that ask for
 * the same key while it is being derived share that one derivation (`jpki crl generate` opens its CAs' keys in
 * parallel, all under one salt: each ran its own 600,000-iteration PBKDF2 before).
 */
export function prepareKek(passphrase: string, p: KeyWrapParams): Promise<void> {
  const id = cacheId(passphrase, p);
  if (kekCache.has(id)) return Promise.resolve();
  let running = deriving.get(id);
  if (!running) {
    const derive = () =>
      new Promise<void>((resolve, reject) =>
        pbkdf2(Buffer.from(passphrase, "utf8"), p.salt, p.iterations, 32, "sha256", (err, key) => {
          deriving.delete(id);
          if (err) return reject(err);
          if (!kekCache.has(id)) remember(id, key);
          derivedParams = { salt: Buffer.from(p.salt), iterations: p.iterations };
          resolve();
        }),
      );
    const early = earlyKek(passphrase, p);
    running = early
      ? early.then((key) => {
          if (!key) return derive();
          deriving.delete(id);
          if (!kekCache.has(id)) remember(id, key);
        })
      : derive();
    deriving.set(id, running);
  }
  return running;
}

/**
 * A key for another purpose under the passphrase: HKDF-SHA256 (RFC 5869) of the key-encryption key of
 * (passphrase, params), with the caller's salt and its own info label, so that a process which already derived
 * the KEK (it opened a CA key) does not run PBKDF2 again. The KEK stays in this module; HKDF is one-way, so the
 * subkey (an HMAC key, say) tells nothing of the KEK, and another info label gives an unrelated key.
 */
export async function kekSubkey(passphrase: string, p: KeyWrapParams, salt: Uint8Array, info: string): Promise<Buffer> {
  await prepareKek(passphrase, p);
  // evicted (or forgotten) since it was prepared, which needs eight other KEKs in between: derived again
  const k = kekCache.get(cacheId(passphrase, p)) ?? kek(passphrase, p);
  return Buffer.from(hkdfSync("sha256", k, salt, info, 32));
}

/** Wraps a private key (as PKCS#8) under the passphrase; returns the DER EncryptedPrivateKeyInfo. */
export function wrapPrivateKey(key: KeyObject, passphrase: string, params: KeyWrapParams): Buffer {
  if (params.iterations < PBKDF2_ITERATIONS) throw new RangeError(`PBKDF2 needs at least ${PBKDF2_ITERATIONS} iterations`);
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const iv = randomBytes(16);
  const cipher = createCipheriv("aes-256-cbc", kek(passphrase, params), iv);
  const encryptedData = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  pkcs8.fill(0);
  return encode({ salt: Buffer.from(params.salt), iterations: params.iterations, iv, encryptedData });
}

/**
 * Decrypts a wrapped key to its PKCS#8 PrivateKeyInfo DER, or undefined when the padding is wrong (the
 * passphrase, in all likelihood). The caller still parses the result: a wrong KEK passes the padding
 * check about once in 256 tries.
 */
export function unwrapPrivateKey(w: WrappedKey, passphrase: string): Buffer | undefined {
  try {
    const decipher = createDecipheriv("aes-256-cbc", kek(passphrase, w), w.iv);
    return Buffer.concat([decipher.update(w.encryptedData), decipher.final()]);
  } catch {
    return undefined;
  }
}
