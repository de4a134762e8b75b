/**
 * The manifest's HMAC (authentication.ts): what it covers and which forms of the passphrase it takes. End to end
 * (a forged backup refused, a stripped one refused with the passphrase) in test/integration/backup.test.ts.
 */
import { describe, expect, it } from "vitest";
import { authenticateManifest, isManifestAuthentication, manifestAuthenticates, manifestMacInput } from "./authentication.js";

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
    await expect(authenticateManifest(manifest, "")).rejects.toMatchObject({ code: "ERR_PASSPHRASE_MISSING" });
  });
});
