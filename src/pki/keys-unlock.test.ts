/**
 * unlockPrivateKey derives every key-encryption key on libuv's thread pool (key-wrap.ts prepareKek), never on the
 * event loop: `jpki serve` opens OCSP signing keys and verifier keys this way while it answers requests, and a
 * 600,000-iteration PBKDF2 on the loop stalls every answer for ~0.2 s. pbkdf2Sync is watched here (passed through).
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, pbkdf2, pbkdf2Sync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { newKeyWrapParams, prepareKek } from "./key-wrap.js";
import { encryptPrivateKey, unlockPrivateKey } from "./keys.js";

vi.mock("node:crypto", async (importOriginal) => {
  const m = await importOriginal<typeof import("node:crypto")>();
  return { ...m, pbkdf2Sync: vi.fn(m.pbkdf2Sync), pbkdf2: vi.fn(m.pbkdf2) };
});

// が precomposed (NFC) and as か + U+3099 (NFD): the same passphrase typed on two machines
const nfc = "パスフレーズが長い";
const nfd = nfc.normalize("NFD");
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const modulus = privateKey.export({ format: "jwk" }).n;

/** The key wrapped by openssl (our form: PBES2, PBKDF2-HMAC-SHA256 600,000, AES-256-CBC) under `passphrase`'s bytes: nothing derived in this process. */
function wrappedByOpenssl(passphrase: string): string {
  const dir = mkdtempSync(join(tmpdir(), "jpki-unlock-"));
  const pass = join(dir, "pass");
  writeFileSync(pass, passphrase, { mode: 0o600 });
  return execFileSync("openssl", ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", "600000", "-passout", `file:${pass}`], {
    input: privateKey.export({ type: "pkcs8", format: "pem" }),
  }).toString();
}

describe("unlockPrivateKey with a passphrase typed in the other normalisation", () => {
  it("opens a key wrapped under the NFC bytes, typed NFD, without deriving on the event loop", async () => {
    const pem = wrappedByOpenssl(nfc);
    vi.mocked(pbkdf2Sync).mockClear();
    const key = await unlockPrivateKey(pem, nfd);
    expect(key.export({ format: "jwk" }).n).toBe(modulus);
    expect(vi.mocked(pbkdf2Sync)).not.toHaveBeenCalled();
  });

  it("opens one wrapped under the NFD bytes, typed NFC, the same way", async () => {
    const pem = wrappedByOpenssl(nfd);
    vi.mocked(pbkdf2Sync).mockClear();
    expect((await unlockPrivateKey(pem, nfc)).export({ format: "jwk" }).n).toBe(modulus);
    expect(vi.mocked(pbkdf2Sync)).not.toHaveBeenCalled();
  });

  it("refuses another passphrase as ERR_PASSPHRASE_WRONG, still off the event loop", async () => {
    const pem = wrappedByOpenssl(nfc);
    vi.mocked(pbkdf2Sync).mockClear();
    await expect(unlockPrivateKey(pem, "パスフレーズか長い")).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
    expect(vi.mocked(pbkdf2Sync)).not.toHaveBeenCalled();
  });
});

describe("unlocks in parallel", () => {
  it("of keys under one salt (a workspace's CA keys) derive the key-encryption key once, not once each", async () => {
    const params = newKeyWrapParams();
    const pems = Array.from({ length: 4 }, () => encryptPrivateKey(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey, "parallel", params));
    // Wrapping cached the KEK: push it out of the process's cache (8 entries) with cheap derivations of other keys.
    for (let i = 0; i < 8; i++) await prepareKek(`other ${i}`, { salt: randomBytes(16), iterations: 1 });
    vi.mocked(pbkdf2).mockClear();
    const keys = await Promise.all(pems.map((pem) => unlockPrivateKey(pem, "parallel")));
    expect(keys).toHaveLength(4);
    expect(vi.mocked(pbkdf2)).toHaveBeenCalledTimes(1);
    // and once derived, none more
    await unlockPrivateKey(pems[0]!, "parallel");
    expect(vi.mocked(pbkdf2)).toHaveBeenCalledTimes(1);
  });
});
