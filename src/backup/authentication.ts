/**
 * A backup manifest's authentication: an HMAC-SHA256 of the manifest under a key derived from the CA passphrase.
 *
 * Why: the manifest's hashes find damage (a truncated copy, bit rot, a file a sync tool added), but whoever can
 * write the backup can change the store file — drop a revocation, put back a revoked certificate — and write the
 * hashes that match. The passphrase is what such a writer does not hold (the backup has the CA keys only
 * encrypted under it), so a manifest authenticated under it can be neither rewritten nor made anew.
 *
 * The key, in the form written now (kdf MANIFEST_KDF): HKDF-SHA256 (own random salt, info MANIFEST_HKDF_INFO)
 * of the key-encryption key the CA keys are wrapped with — PBKDF2-HMAC-SHA256 of the passphrase under the
 * workspace's key-wrap salt and count (pki/key-wrap.ts), which `jpki backup` has just derived to check that the
 * passphrase opens a CA key. One 600,000-iteration PBKDF2 per backup instead of two. Sound because:
 * - forging a MAC still takes the passphrase: the key is a one-way function of PBKDF2(passphrase, salt, count);
 * - guessing the passphrase costs what it did: the salt and count are those of the wrapped CA keys the backup
 *   holds anyway, which already let an offline guesser test each guess at that price (a salt of its own added none);
 * - the KEK is never used as the HMAC key: HKDF with its own info label makes an unrelated key (key-wrap.ts
 *   kekSubkey), and the MAC tells nothing of the KEK.
 * A workspace with no software key in that form (a token's, or older 2048-iteration keys) gets fresh parameters:
 * the same form at the former price. Manifests in the earlier form (MANIFEST_KDF_PBKDF2: the PBKDF2 output as
 * the HMAC key, a salt of its own) still verify.
 *
 * What it covers: the manifest as canonical JSON (store/audit-log.ts canonicalJson: keys sorted, no spaces)
 * without its `authentication` member — so every file's size and SHA-256, the store kind and schema, when the
 * backup was taken and the CRL numbers the restore moves past.
 *
 * Stripping the member makes a manifest that is merely not authenticated, as every backup taken without a
 * passphrase is: so a restore that holds the passphrase refuses one unless told it was taken so
 * (manifest.ts authenticateBackup's acceptUnauthenticated; the CLI's --accept-unauthenticated).
 */
import { createHmac, pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { JpkiError } from "../errors.js";
import { passphraseForms } from "../pki/keys.js";
import { kekSubkey, MAX_ITERATIONS, MIN_ITERATIONS, newKeyWrapParams, type KeyWrapParams } from "../pki/key-wrap.js";
import { canonicalJson } from "../store/audit-log.js";

export const MANIFEST_MAC_ALG = "HMAC-SHA256";
/** The form written: HKDF-SHA256 of the key-encryption key PBKDF2-HMAC-SHA256 gives (key-wrap.ts). */
export const MANIFEST_KDF = "PBKDF2-HMAC-SHA256+HKDF-SHA256";
/** The earlier form, still verified: the PBKDF2-HMAC-SHA256 output itself is the HMAC key. */
export const MANIFEST_KDF_PBKDF2 = "PBKDF2-HMAC-SHA256";
/** HKDF's info: this key and no other (the KEK's other subkeys would have labels of their own). */
export const MANIFEST_HKDF_INFO = "jpki backup manifest authentication v1";

/** manifest.json's `authentication` member. */
export type ManifestAuthentication = ManifestAuthenticationKek | ManifestAuthenticationPbkdf2;

interface ManifestAuthenticationBase {
  readonly alg: typeof MANIFEST_MAC_ALG;
  /** the PBKDF2 count */
  readonly iterations: number;
  /** the PBKDF2 salt, base64 */
  readonly salt: string;
  /** the HMAC, hex */
  readonly mac: string;
}

/** The form written: salt and iterations are the CA keys' key-wrap parameters, hkdfSalt the backup's own. */
export interface ManifestAuthenticationKek extends ManifestAuthenticationBase {
  readonly kdf: typeof MANIFEST_KDF;
  /** HKDF's salt, base64 (16 random octets) */
  readonly hkdfSalt: string;
}

/** The earlier form: salt (16 random octets) is the manifest's own. */
export interface ManifestAuthenticationPbkdf2 extends ManifestAuthenticationBase {
  readonly kdf: typeof MANIFEST_KDF_PBKDF2;
}

/** The octets the HMAC covers: the manifest without its authentication, as canonical JSON in UTF-8. */
export function manifestMacInput(manifest: object): Buffer {
  const { authentication: _, ...rest } = manifest as { authentication?: unknown };
  return Buffer.from(canonicalJson(rest), "utf8");
}

function deriveKey(passphrase: string, salt: Buffer, iterations: number): Promise<Buffer> {
  // On the thread pool: 600,000 iterations take ≈ 0.1–0.3 s, which the event loop (a progress line, a signal) need not wait for.
  return new Promise((resolve, reject) => pbkdf2(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256", (e, k) => (e ? reject(e) : resolve(k))));
}

/** The HMAC key of `a` under one form of the passphrase. */
function macKey(a: ManifestAuthentication, form: string): Promise<Buffer> {
  const salt = Buffer.from(a.salt, "base64");
  if (a.kdf === MANIFEST_KDF_PBKDF2) return deriveKey(form, salt, a.iterations);
  return kekSubkey(form, { salt, iterations: a.iterations }, Buffer.from(a.hkdfSalt, "base64"), MANIFEST_HKDF_INFO);
}

/**
 * The authentication of `manifest` (without one) under `passphrase`, in its NFC form as new CA keys are wrapped.
 * `keyWrap`: the key-wrap parameters of the workspace's CA keys (keys.ts strongKeyWrapParams), whose KEK the
 * caller derived when it checked the passphrase; without them, fresh ones (one PBKDF2 more).
 */
export async function authenticateManifest(manifest: object, passphrase: string, keyWrap: KeyWrapParams = newKeyWrapParams()): Promise<ManifestAuthenticationKek> {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "no passphrase to authenticate the backup's manifest with");
  const a = { alg: MANIFEST_MAC_ALG, kdf: MANIFEST_KDF, iterations: keyWrap.iterations, salt: Buffer.from(keyWrap.salt).toString("base64"), hkdfSalt: randomBytes(16).toString("base64") } as const;
  const mac = createHmac("sha256", await macKey({ ...a, mac: "" }, passphrase.normalize("NFC"))).update(manifestMacInput(manifest)).digest("hex");
  return { ...a, mac };
}

/** Whether `s` is base64 (with its padding) of `min`–`max` octets. */
function isBase64(s: unknown, min: number, max: number): s is string {
  if (typeof s !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return false;
  const n = Buffer.from(s, "base64").length;
  return n >= min && n <= max;
}

/** Whether `a` has the shape of an authentication member (readManifest refuses a manifest whose member has not). */
export function isManifestAuthentication(a: unknown): a is ManifestAuthentication {
  const x = a as Partial<ManifestAuthenticationKek> | Partial<ManifestAuthenticationPbkdf2> | null;
  if (typeof x !== "object" || x === null) return false;
  const salts =
    x.kdf === MANIFEST_KDF_PBKDF2
      ? isBase64(x.salt, 16, 16)
      : // the key-wrap salt, as key-wrap.ts readWrappedKey takes one (jpki writes 16 octets)
        x.kdf === MANIFEST_KDF && isBase64(x.salt, 8, 64) && isBase64((x as Partial<ManifestAuthenticationKek>).hkdfSalt, 16, 16);
  return (
    salts &&
    x.alg === MANIFEST_MAC_ALG &&
    Number.isSafeInteger(x.iterations) &&
    // an altered count would stall the check for hours (or weaken it): refused as the stored CA keys' are
    x.iterations! >= MIN_ITERATIONS &&
    x.iterations! <= MAX_ITERATIONS &&
    typeof x.mac === "string" &&
    /^[0-9a-f]{64}$/.test(x.mac)
  );
}

/**
 * Whether the manifest's authentication verifies under `passphrase`, tried as given and in its NFC and NFD forms
 * (as CA keys are opened: pki/keys.ts passphraseForms). A wrong passphrase and an altered manifest look alike.
 */
export async function manifestAuthenticates(manifest: object & { authentication: ManifestAuthentication }, passphrase: string): Promise<boolean> {
  const a = manifest.authentication;
  const input = manifestMacInput(manifest);
  const expected = Buffer.from(a.mac, "hex");
  for (const form of passphraseForms(passphrase)) {
    const mac = createHmac("sha256", await macKey(a, form)).update(input).digest();
    if (timingSafeEqual(mac, expected)) return true;
  }
  return false;
}
