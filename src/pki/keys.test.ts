/**
 * requireRsa2048: the card's key is RSA-2048, e = 65537, in DER. Hand-built vectors for each way a key can
 * be encoded wrongly (X.690 §10 DER restrictions, RFC 3279 §2.3.1 rsaEncryption) and keys made by openssl.
 */
import { execFileSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bitString, integer, nul, oid, seq, tlv } from "./der.js";
import { decryptPrivateKey, encryptPrivateKey, requireRsa2048 } from "./keys.js";
import { newKeyWrapParams, wrapPrivateKey } from "./key-wrap.js";
import { toPem } from "./pem.js";
import { errorCodeOf } from "../../test/error-code.js";

const RSA = "1.2.840.113549.1.1.1";
const good = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
const jwk = createPublicKey({ key: good, format: "der", type: "spki" }).export({ format: "jwk" });
const n = BigInt("0x" + Buffer.from(jwk.n!, "base64url").toString("hex"));
const nHex = Buffer.from(jwk.n!, "base64url");

const rawInt = (content: Uint8Array) => tlv(0x02, content);
/** An SPKI from given parts; defaults give the canonical encoding of `good`. */
function spki(o: { alg?: Buffer; n?: Buffer; e?: Buffer; bits?: (rsaKey: Buffer) => Buffer } = {}): Buffer {
  const rsaKey = seq(o.n ?? integer(n), o.e ?? integer(65537));
  return seq(o.alg ?? seq(oid(RSA), nul()), (o.bits ?? bitString)(rsaKey));
}
const code = errorCodeOf;
/** Replaces the first occurrence of a byte sequence. */
const patch = (buf: Buffer, from: string, to: string) => {
  const i = buf.indexOf(Buffer.from(from, "hex"));
  expect(i).toBeGreaterThanOrEqual(0);
  return Buffer.concat([buf.subarray(0, i), Buffer.from(to, "hex"), buf.subarray(i + from.length / 2)]);
};

describe("requireRsa2048", () => {
  it("accepts a 2048-bit key with e = 65537 and returns its bytes and exponent", () => {
    expect(spki().equals(good)).toBe(true); // our vector builder reproduces the canonical encoding
    const info = requireRsa2048(good);
    expect(info).toMatchObject({ bits: 2048, exponent: 65537n });
    expect(info.spki.equals(good)).toBe(true);
  });

  it("accepts keys made by openssl (e = 65537), refuses openssl's e = 3", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-keys-"));
    const pub = (extra: string[]) => {
      const key = join(dir, `k${extra.length}.pem`);
      execFileSync("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", ...extra, "-out", key], { stdio: "ignore" });
      return execFileSync("openssl", ["pkey", "-in", key, "-pubout", "-outform", "DER"]);
    };
    expect(requireRsa2048(pub([])).exponent).toBe(65537n);
    expect(code(() => requireRsa2048(pub(["-pkeyopt", "rsa_keygen_pubexp:3"])))).toBe("ERR_KEY_UNSUPPORTED");
  });

  it.each([
    ["exponent 3", () => spki({ e: integer(3) })],
    ["exponent 17", () => spki({ e: integer(17) })],
    ["exponent 2^64 + 1", () => spki({ e: integer((1n << 64n) + 1n) })],
    ["RSA-1024", () => spki({ n: integer((n >> 1024n) | 1n) })],
    ["RSA-3072", () => spki({ n: integer((n << 1024n) | 1n) })],
    ["RSA-2047", () => spki({ n: integer(n >> 1n | 1n) })],
    ["an EC key", () => generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" })],
    ["an RSASSA-PSS key", () => generateKeyPairSync("rsa-pss", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" })],
  ])("refuses %s as unsupported", (_name, make) => {
    expect(code(() => requireRsa2048(make()))).toBe("ERR_KEY_UNSUPPORTED");
  });

  it.each([
    ["a non-minimal exponent (02 04 00 01 00 01)", () => spki({ e: rawInt(Buffer.from("00010001", "hex")) })],
    ["a non-minimal modulus (extra leading 00)", () => spki({ n: rawInt(Buffer.concat([Buffer.from([0, 0]), nHex])) })],
    ["a negative modulus (no 00 before the top bit)", () => spki({ n: rawInt(nHex) })],
    ["an empty exponent", () => spki({ e: rawInt(Buffer.alloc(0)) })],
    ["an even modulus", () => spki({ n: integer(n ^ 1n) })],
    ["a zero modulus", () => spki({ n: integer(0) })],
    ["trailing bytes after the key", () => Buffer.concat([good, Buffer.from([0])])],
    ["trailing bytes inside the BIT STRING", () => spki({ bits: (k) => bitString(Buffer.concat([k, Buffer.from([0])])) })],
    ["a long-form length where the short form suffices", () => patch(good, "300d06092a864886f70d010101", "30810d06092a864886f70d010101")],
    ["a length with a leading zero byte", () => patch(good, "30820122", "3083000122")],
    ["an indefinite length", () => Buffer.concat([Buffer.from("3080", "hex"), good.subarray(4), Buffer.from("0000", "hex")])],
    ["a constructed BIT STRING", () => spki({ bits: (k) => tlv(0x23, bitString(k)) })],
    ["unused bits in the BIT STRING", () => spki({ bits: (k) => tlv(0x03, Buffer.concat([Buffer.from([1]), k])) })],
    ["rsaEncryption without NULL parameters", () => spki({ alg: seq(oid(RSA)) })],
    ["rsaEncryption with other parameters", () => spki({ alg: seq(oid(RSA), integer(0)) })],
    ["an RSAPublicKey with a third INTEGER", () => spki({ bits: (k) => bitString(seq(integer(n), integer(65537), integer(1))) })],
    ["not a SEQUENCE at all", () => Buffer.from("0400", "hex")],
    ["a truncated key", () => good.subarray(0, 100)],
  ])("refuses %s as malformed", (_name, make) => {
    expect(code(() => requireRsa2048(make()))).toBe("ERR_KEY_MALFORMED");
  });

  // The common case is a byte comparison against the one shape such a key has (prefix, 256-byte modulus with
  // the top bit set and odd, exponent). Every byte outside the modulus is fixed: changing any of them must
  // be refused, and changing the modulus must be accepted exactly when it stays 2048 bits and odd.
  it("refuses a change to any byte outside the modulus, and judges modulus changes by size and parity only", () => {
    const modulusAt = good.length - 5 - 256;
    for (let i = 0; i < good.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const k = Buffer.from(good);
        k[i]! ^= flip;
        const inModulus = i >= modulusAt && i < modulusAt + 256;
        const stillValid = inModulus && (k[modulusAt]! & 0x80) !== 0 && (k[modulusAt + 255]! & 1) === 1;
        if (stillValid) expect(requireRsa2048(k).spki.equals(k), `byte ${i} ^ ${flip}`).toBe(true);
        else expect(code(() => requireRsa2048(k)), `byte ${i} ^ ${flip}`).toMatch(/^ERR_KEY_(MALFORMED|UNSUPPORTED)$/);
      }
    }
  });
});

describe("decryptPrivateKey with a wrong passphrase", () => {
  // The message sent every operator to JPKI_PASSPHRASE, also one who gave --passphrase-file or typed it.
  it("is ERR_PASSPHRASE_WRONG naming every place the passphrase comes from, and not the passphrase", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = encryptPrivateKey(privateKey, "right one", newKeyWrapParams());
    try {
      decryptPrivateKey(pem, "wrong one", "the key of CA 13-sig");
      expect.unreachable();
    } catch (e) {
      expect((e as { code?: string }).code).toBe("ERR_PASSPHRASE_WRONG");
      const m = (e as Error).message;
      for (const where of ["--passphrase-file", "JPKI_PASSPHRASE", "prompt"]) expect(m).toContain(where);
      expect(m).not.toContain("wrong one");
      expect(m).not.toContain("right one");
    }
  });
});

describe("a passphrase typed decomposed or precomposed", () => {
  // が as one code point (NFC, most input methods) and as か + the combining voiced mark (NFD, macOS file names):
  // the same passphrase on screen, different bytes to PBKDF2.
  const nfc = "パスフレーズが長い";
  const nfd = nfc.normalize("NFD");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const modulus = privateKey.export({ format: "jwk" }).n;

  it("differs in its code points (the premise)", () => expect(nfd).not.toBe(nfc));

  it("wraps a new key under the NFC form: openssl opens it with the NFC bytes, and either typing opens it here", () => {
    const pem = encryptPrivateKey(privateKey, nfd, newKeyWrapParams());
    const dir = mkdtempSync(join(tmpdir(), "jpki-nfc-"));
    const out = execFileSync("openssl", ["pkey", "-passin", `pass:${nfc}`, "-noout", "-text"], { input: pem, cwd: dir }).toString();
    expect(out).toContain("Private-Key: (2048 bit");
    for (const typed of [nfc, nfd]) expect(decryptPrivateKey(pem, typed).export({ format: "jwk" }).n).toBe(modulus);
  });

  it("opens a key an earlier release wrapped under the decomposed bytes, typed either way", () => {
    const params = newKeyWrapParams();
    const pem = toPem(wrapPrivateKey(privateKey, nfd, params), "ENCRYPTED PRIVATE KEY");
    for (const typed of [nfc, nfd]) expect(decryptPrivateKey(pem, typed).export({ format: "jwk" }).n).toBe(modulus);
  });

  it("still refuses another passphrase, as ERR_PASSPHRASE_WRONG", () => {
    const pem = encryptPrivateKey(privateKey, nfc, newKeyWrapParams());
    expect(code(() => decryptPrivateKey(pem, "パスフレーズか長い"))).toBe("ERR_PASSPHRASE_WRONG");
  });
});
