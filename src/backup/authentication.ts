/**
 * A backup manifest's authentication: an HMAC-SHA256 of the manifest under a key derived from the CA passphrase
 * (PBKDF2-HMAC-SHA256, 600,000 iterations, a salt of its own, as the CA keys are wrapped: pki/key-wrap.ts).
 *
 * Why: the manifest's hashes find damage (a truncated copy, bit rot, a file a sync tool added), but whoever can
 * write the backup can change the store file — drop a revocation, put back a revoked certificate — and write the
 * hashes that match. The passphrase is what such a writer does not hold (the backup has the CA keys only
 * encrypted under it), so a manifest authenticated under it can be neither rewritten nor made anew.
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
import { MAX_ITERATIONS, MIN_ITERATIONS, PBKDF2_ITERATIONS } from "../pki/key-wrap.js";
import { canonicalJson } from "../store/audit-log.js";

export const MANIFEST_MAC_ALG = "HMAC-SHA256";
export const MANIFEST_KDF = "PBKDF2-HMAC-SHA256";

/** manifest.json's `authentication` member. */
export interface ManifestAuthentication {
  readonly alg: typeof MANIFEST_MAC_ALG;
  readonly kdf: typeof MANIFEST_KDF;
  readonly iterations: number;
  /** the PBKDF2 salt, base64 (16 random octets) */
  readonly salt: string;
  /** the HMAC, hex */
  readonly mac: string;
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

/** The authentication of `manifest` (without one) under `passphrase`, in its NFC form as new CA keys are wrapped. */
export async function authenticateManifest(manifest: object, passphrase: string): Promise<ManifestAuthentication> {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "no passphrase to authenticate the backup's manifest with");
  const salt = randomBytes(16);
  const key = await deriveKey(passphrase.normalize("NFC"), salt, PBKDF2_ITERATIONS);
  const mac = createHmac("sha256", key).update(manifestMacInput(manifest)).digest("hex");
  return { alg: MANIFEST_MAC_ALG, kdf: MANIFEST_KDF, iterations: PBKDF2_ITERATIONS, salt: salt.toString("base64"), mac };
}

/** Whether `a` has the shape of an authentication member (readManifest refuses a manifest whose member has not). */
export function isManifestAuthentication(a: unknown): a is ManifestAuthentication {
  const x = a as Partial<ManifestAuthentication> | null;
  return (
    typeof x === "object" &&
    x !== null &&
    x.alg === MANIFEST_MAC_ALG &&
    x.kdf === MANIFEST_KDF &&
    Number.isSafeInteger(x.iterations) &&
    // an altered count would stall the check for hours (or weaken it): refused as the stored CA keys' are
    x.iterations! >= MIN_ITERATIONS &&
    x.iterations! <= MAX_ITERATIONS &&
    typeof x.salt === "string" &&
    /^[A-Za-z0-9+/]{22}==$/.test(x.salt) &&
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
  const salt = Buffer.from(a.salt, "base64");
  for (const form of passphraseForms(passphrase)) {
    const mac = createHmac("sha256", await deriveKey(form, salt, a.iterations)).update(input).digest();
    if (timingSafeEqual(mac, expected)) return true;
  }
  return false;
}
