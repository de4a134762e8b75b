/**
 * CA keys at rest: PBES2 with PBKDF2-HMAC-SHA256 (≥ 600,000 iterations) and AES-256-CBC (RFC 8018 §6.2) as
 * encrypted PKCS#8 (RFC 5958), checked with the real openssl binary.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createCipheriv, createPublicKey, generateKeyPairSync, pbkdf2Sync, randomBytes, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PBKDF2_ITERATIONS, newKeyWrapParams, readWrappedKey } from "./key-wrap.js";
import { decryptPrivateKey, encryptPrivateKey, strongKeyWrapParams, unlockPrivateKey } from "./keys.js";
import { integer, nul, octetString, oid, seq } from "./der.js";
import { parsePemBlocks, toPem } from "./pem.js";
import { errorCodeOf } from "../../test/error-code.js";

const dir = mkdtempSync(join(tmpdir(), "jpki-wrap-"));
const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const spkiOf = (k: KeyObject) => createPublicKey(k).export({ type: "spki", format: "der" });
const code = errorCodeOf;
const derOf = (pem: string) => parsePemBlocks(pem)[0]!.der;
writeFileSync(join(dir, "good.txt"), "correct horse\n");
writeFileSync(join(dir, "bad.txt"), "battery staple\n");

describe("CA key wrapping", () => {
  const params = newKeyWrapParams();
  const pem = encryptPrivateKey(key, "correct horse", params);

  it("writes encrypted PKCS#8 that openssl pkey opens with the passphrase and refuses without it", () => {
    const file = join(dir, "ca.key.pem");
    writeFileSync(file, pem);
    const pub = execFileSync("openssl", ["pkey", "-in", file, "-passin", `file:${join(dir, "good.txt")}`, "-pubout", "-outform", "DER"]);
    expect(pub.equals(spkiOf(key))).toBe(true);
    const wrong = spawnSync("openssl", ["pkey", "-in", file, "-passin", `file:${join(dir, "bad.txt")}`, "-noout"]);
    expect(wrong.status).not.toBe(0);
  });

  it("uses PBES2, PBKDF2 with hmacWithSHA256 and ≥ 600,000 iterations, and AES-256-CBC (read by openssl asn1parse)", () => {
    const file = join(dir, "ca.key.der");
    writeFileSync(file, derOf(pem));
    const lines = execFileSync("openssl", ["asn1parse", "-inform", "DER", "-in", file], { encoding: "utf8" }).split("\n");
    const objects = lines.filter((l) => l.includes("OBJECT")).map((l) => l.split(":").at(-1)!.trim());
    expect(objects).toEqual(["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"]);
    const afterKdf = lines.slice(lines.findIndex((l) => l.endsWith(":PBKDF2")));
    const iterLine = afterKdf.find((l) => l.includes("prim: INTEGER"))!;
    const iterations = parseInt(iterLine.split(":").at(-1)!.trim(), 16);
    expect(iterations).toBeGreaterThanOrEqual(600_000);
    expect(iterations).toBe(PBKDF2_ITERATIONS);
  });

  it("decrypts with the passphrase; a wrong or empty one has its own code", () => {
    expect(spkiOf(decryptPrivateKey(pem, "correct horse")).equals(spkiOf(key))).toBe(true);
    expect(code(() => decryptPrivateKey(pem, "battery staple"))).toBe("ERR_PASSPHRASE_WRONG");
    expect(code(() => decryptPrivateKey(pem, ""))).toBe("ERR_PASSPHRASE_MISSING");
    expect(code(() => encryptPrivateKey(key, ""))).toBe("ERR_PASSPHRASE_MISSING");
  });

  it("shares the workspace salt between keys, with a fresh IV and ciphertext each", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const pem2 = encryptPrivateKey(other, "correct horse", params);
    const a = readWrappedKey(derOf(pem))!;
    const b = readWrappedKey(derOf(pem2))!;
    expect(Buffer.from(a.salt).equals(Buffer.from(b.salt))).toBe(true);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(spkiOf(decryptPrivateKey(pem2, "correct horse")).equals(spkiOf(other))).toBe(true);
    expect(Buffer.from(strongKeyWrapParams(pem2)!.salt).equals(Buffer.from(params.salt))).toBe(true);
    // without params each key gets its own salt
    expect(Buffer.from(readWrappedKey(derOf(encryptPrivateKey(key, "correct horse")))!.salt).equals(Buffer.from(a.salt))).toBe(false);
  });

  it("still opens older keys (OpenSSL's default PBES2 with 2048 iterations) and other encrypted PKCS#8", () => {
    const old = key.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "correct horse" }) as string;
    expect(strongKeyWrapParams(old)).toBeUndefined();
    expect(readWrappedKey(derOf(old))?.iterations).toBe(2048);
    expect(spkiOf(decryptPrivateKey(old, "correct horse")).equals(spkiOf(key))).toBe(true);
    expect(code(() => decryptPrivateKey(old, "battery staple"))).toBe("ERR_PASSPHRASE_WRONG");
    // not our form (AES-128, a SHA-1 PRF): read by OpenSSL
    const plain = join(dir, "plain.pem");
    writeFileSync(plain, key.export({ type: "pkcs8", format: "pem" }));
    const other = execFileSync("openssl", ["pkcs8", "-topk8", "-in", plain, "-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1", "-passout", `file:${join(dir, "good.txt")}`], { encoding: "utf8" });
    expect(readWrappedKey(derOf(other))).toBeUndefined();
    expect(spkiOf(decryptPrivateKey(other, "correct horse")).equals(spkiOf(key))).toBe(true);
    expect(code(() => decryptPrivateKey(other, "battery staple"))).toBe("ERR_PASSPHRASE_WRONG");
  });
});

/**
 * A key wrapped in our form with any iteration count. `derive: false` only writes the count into the
 * parameters (a stored key edited by hand), so an absurd count costs nothing to make.
 */
function wrappedWith(k: KeyObject, passphrase: string, iterations: number, derive = true): string {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const kek = derive ? pbkdf2Sync(passphrase, salt, iterations, 32, "sha256") : randomBytes(32);
  const cipher = createCipheriv("aes-256-cbc", kek, iv);
  const data = Buffer.concat([cipher.update(k.export({ type: "pkcs8", format: "der" })), cipher.final()]);
  const der = seq(
    seq(
      oid("1.2.840.113549.1.5.13"),
      seq(
        seq(oid("1.2.840.113549.1.5.12"), seq(octetString(salt), integer(iterations), seq(oid("1.2.840.113549.2.9"), nul()))),
        seq(oid("2.16.840.1.101.3.4.1.42"), octetString(iv)),
      ),
    ),
    octetString(data),
  );
  return toPem(der, "ENCRYPTED PRIVATE KEY");
}

describe("a stored key whose protection was altered is refused, its parameters never used", () => {
  it("a weak iteration count: a key really wrapped with 1 or 1000 iterations does not open, even with the right passphrase", async () => {
    for (const n of [1, 1000]) {
      const weak = wrappedWith(key, "correct horse", n);
      expect(code(() => decryptPrivateKey(weak, "correct horse"))).toBe("ERR_WORKSPACE_CORRUPT");
      await expect(unlockPrivateKey(weak, "correct horse")).rejects.toMatchObject({ code: "ERR_WORKSPACE_CORRUPT" });
    }
    // the lowest count an older workspace has (OpenSSL's default) still opens, for 'jpki ca rewrap'
    expect(spkiOf(decryptPrivateKey(wrappedWith(key, "correct horse", 2048), "correct horse")).equals(spkiOf(key))).toBe(true);
  });

  it("an absurd iteration count (up to the 32-bit field's 2^31 - 1, and beyond) is refused before any derivation", async () => {
    for (const n of [10_000_001, 2 ** 31 - 1, 2 ** 40]) {
      // deriving 2^31 - 1 iterations takes the better part of an hour: this returns only if it is never tried
      const absurd = wrappedWith(key, "correct horse", n, false);
      expect(code(() => decryptPrivateKey(absurd, "correct horse"))).toBe("ERR_WORKSPACE_CORRUPT");
      await expect(unlockPrivateKey(absurd, "correct horse")).rejects.toMatchObject({ code: "ERR_WORKSPACE_CORRUPT" });
    }
  });

  it("a key stored without encryption, or with scrypt, is refused whatever the passphrase", () => {
    const plain = key.export({ type: "pkcs8", format: "pem" }) as string;
    expect(code(() => decryptPrivateKey(plain, "anything at all"))).toBe("ERR_WORKSPACE_CORRUPT");
    const pkcs1 = key.export({ type: "pkcs1", format: "pem" }) as string;
    expect(code(() => decryptPrivateKey(pkcs1, "anything at all"))).toBe("ERR_WORKSPACE_CORRUPT");
    const plainFile = join(dir, "plain-for-scrypt.pem");
    writeFileSync(plainFile, plain);
    const scrypt = execFileSync("openssl", ["pkcs8", "-topk8", "-in", plainFile, "-scrypt", "-passout", `file:${join(dir, "good.txt")}`], { encoding: "utf8" });
    expect(code(() => decryptPrivateKey(scrypt, "correct horse"))).toBe("ERR_WORKSPACE_CORRUPT");
  });

  it("the message names the key and says why, never the passphrase", () => {
    try {
      decryptPrivateKey(wrappedWith(key, "correct horse", 1), "correct horse", "the key of CA 13-sig");
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toContain("the key of CA 13-sig");
      expect((e as Error).message).toContain("weak PBKDF2 iteration count");
      expect((e as Error).message).not.toContain("correct horse");
    }
  });
});
