/**
 * CA keys at rest: PBES2 with PBKDF2-HMAC-SHA256 (≥ 600,000 iterations) and AES-256-CBC (RFC 8018 §6.2) as
 * encrypted PKCS#8 (RFC 5958), checked with the real openssl binary.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PBKDF2_ITERATIONS, newKeyWrapParams, readWrappedKey } from "./key-wrap.js";
import { decryptPrivateKey, encryptPrivateKey, strongKeyWrapParams } from "./keys.js";
import { parsePemBlocks } from "./pem.js";
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
