/**
 * The manifest's HMAC (authentication.ts): what it covers and which forms of the passphrase it takes. End to end
 * (a forged backup refused, a stripped one refused with the passphrase) in test/integration/backup.test.ts.
 */
import { createHmac, hkdfSync, pbkdf2Sync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { MIN_ITERATIONS, prepareKek, takeDerivedKeyWrap } from "../pki/key-wrap.js";
import { authenticateManifest, isManifestAuthentication, MANIFEST_HKDF_INFO, MANIFEST_KDF, MANIFEST_KDF_PBKDF2, manifestAuthenticates, manifestMacInput } from "./authentication.js";

const manifest = {
  format: "jpki-backup/1",
  jpkiVersion: "0.0.0",
  store: "sqlite",
  schemaVersion: 33,
  takenAt: "2026-12-06T00:00:00.000Z",
  durationMs: 5,
  crlNumbers: [{ caId: "13-sig", scope: "", highest: "7" }],
  files: [{ path: "store/jpki.db", size: 4, sha256: "a".repeat(64) }],
};

describe("a backup manifest's authentication", () => {
  it("covers every member but itself, whatever their order, and is made under the passphrase's NFC form (a decomposed が opens it)", async () => {
    const a = await authenticateManifest(manifest, "パスフレーズが");
    expect(isManifestAuthentication(a)).toBe(true);
    const m = { ...manifest, authentication: a };
    // key order and the member itself do not change what is covered
    const reordered = Object.fromEntries(Object.entries(m).reverse());
    expect(manifestMacInput(reordered)).toEqual(manifestMacInput(manifest));
    expect(await manifestAuthenticates(m, "パスフレーズが")).toBe(true);
    expect(await manifestAuthenticates(m, "パスフレーズが".normalize("NFD"))).toBe(true);
    expect(await manifestAuthenticates(m, "another")).toBe(false);
    // any member changed: a CRL number, a file's hash, when it was taken
    for (const changed of [
      { ...m, crlNumbers: [{ caId: "13-sig", scope: "", highest: "6" }] },
      { ...m, files: [{ path: "store/jpki.db", size: 4, sha256: "b".repeat(64) }] },
      { ...m, takenAt: "2026-12-07T00:00:00.000Z" },
    ]) {
      expect(await manifestAuthenticates(changed, "パスフレーズが")).toBe(false);
    }
  });

  it("refuses a member whose shape is not ours: an iteration count out of bounds would stall the check or weaken it", async () => {
    const a = await authenticateManifest(manifest, "x");
    expect(isManifestAuthentication({ ...a, iterations: 10_000_001 })).toBe(false);
    expect(isManifestAuthentication({ ...a, iterations: 1 })).toBe(false);
    expect(isManifestAuthentication({ ...a, alg: "HMAC-SHA1" })).toBe(false);
    expect(isManifestAuthentication({ ...a, mac: "00" })).toBe(false);
    expect(isManifestAuthentication({ ...a, salt: "not base64!" })).toBe(false);
    const { hkdfSalt: _, ...withoutHkdfSalt } = a;
    expect(isManifestAuthentication(withoutHkdfSalt)).toBe(false);
    expect(isManifestAuthentication({ ...a, hkdfSalt: "AAAA" })).toBe(false);
    await expect(authenticateManifest(manifest, "")).rejects.toMatchObject({ code: "ERR_PASSPHRASE_MISSING" });
  });

  // Cheap key-wrap parameters (the lowest count a stored key may have): what is tested is which key is derived
  // from what, not PBKDF2's cost.
  const keyWrap = { salt: randomBytes(16), iterations: MIN_ITERATIONS };

  it("is keyed by HKDF-SHA256 of the CA keys' KEK under their own salt and count, which it does not derive again", async () => {
    await prepareKek("correct horse", keyWrap);
    expect(takeDerivedKeyWrap()).toMatchObject({ iterations: MIN_ITERATIONS });
    const a = await authenticateManifest(manifest, "correct horse", keyWrap);
    // the KEK the passphrase check derived served: no derivation of its own
    expect(takeDerivedKeyWrap()).toBeUndefined();
    expect(a).toMatchObject({ kdf: MANIFEST_KDF, iterations: MIN_ITERATIONS, salt: keyWrap.salt.toString("base64") });
    // the key, computed here from the definitions: HKDF(PBKDF2(passphrase, key-wrap salt, count), own salt, info)
    const kek = pbkdf2Sync("correct horse", keyWrap.salt, MIN_ITERATIONS, 32, "sha256");
    const key = Buffer.from(hkdfSync("sha256", kek, Buffer.from(a.hkdfSalt, "base64"), MANIFEST_HKDF_INFO, 32));
    expect(a.mac).toBe(createHmac("sha256", key).update(manifestMacInput(manifest)).digest("hex"));
    // never the KEK itself as the HMAC key
    expect(a.mac).not.toBe(createHmac("sha256", kek).update(manifestMacInput(manifest)).digest("hex"));
    const m = { ...manifest, authentication: a };
    expect(await manifestAuthenticates(m, "correct horse")).toBe(true);
    expect(await manifestAuthenticates(m, "correct horse ")).toBe(false);
    const slower = { ...m, durationMs: 6 };
    expect(await manifestAuthenticates(slower, "correct horse")).toBe(false);
    // each backup its own HKDF salt, so its own key
    expect((await authenticateManifest(manifest, "correct horse", keyWrap)).hkdfSalt).not.toBe(a.hkdfSalt);
  });

  it("still verifies a manifest in the earlier form (PBKDF2-HMAC-SHA256 of its own salt as the HMAC key), and not under another passphrase", async () => {
    const salt = randomBytes(16);
    const legacy = {
      alg: "HMAC-SHA256",
      kdf: MANIFEST_KDF_PBKDF2,
      iterations: MIN_ITERATIONS,
      salt: salt.toString("base64"),
      mac: createHmac("sha256", pbkdf2Sync("パスフレーズが", salt, MIN_ITERATIONS, 32, "sha256")).update(manifestMacInput(manifest)).digest("hex"),
    } as const;
    expect(isManifestAuthentication(legacy)).toBe(true);
    const m = { ...manifest, authentication: legacy };
    expect(await manifestAuthenticates(m, "パスフレーズが")).toBe(true);
    expect(await manifestAuthenticates(m, "パスフレーズが".normalize("NFD"))).toBe(true);
    expect(await manifestAuthenticates(m, "another")).toBe(false);
    const later = { ...m, takenAt: "2026-12-07T00:00:00.000Z" };
    expect(await manifestAuthenticates(later, "パスフレーズが")).toBe(false);
    // the earlier form with the new form's key: the kdf member decides, so relabelling does not verify
    expect(await manifestAuthenticates({ ...m, authentication: { ...legacy, kdf: MANIFEST_KDF, hkdfSalt: randomBytes(16).toString("base64") } }, "パスフレーズが")).toBe(false);
  });
});
