import { generateKeyPairSync, sign, constants } from "node:crypto";
import { describe, expect, test } from "vitest";
import { explicit, integer, nul, oid, seq } from "../pki/der.js";
import { tlvAt } from "./asn1.js";
import { signatureAlgorithmSupported, verifySignature, workingKeyOf } from "./signature.js";

const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const spkiDer = publicKey.export({ format: "der", type: "spki" });
const key = workingKeyOf({ der: spkiDer, algorithm: "1.2.840.113549.1.1.1", key: Buffer.alloc(0) });
const DATA = Buffer.from("to be signed");
const sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), nul());
const pss = (salt: number, mgfHash = sha256) =>
  tlvAt(seq(oid("1.2.840.113549.1.1.10"), seq(explicit(0, sha256), explicit(1, seq(oid("1.2.840.113549.1.1.8"), mgfHash)), explicit(2, integer(salt)))));

describe("signature checks", () => {
  test("RSASSA-PSS with SHA-256, MGF1-SHA-256 and the salt length the parameters give (RFC 4055)", () => {
    const sig = sign("sha256", DATA, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    expect(signatureAlgorithmSupported(pss(32))).toBe(true);
    expect(verifySignature(DATA, pss(32), sig, key)).toBe(true);
    expect(verifySignature(DATA, pss(20), sig, key)).toBe(false);
    expect(verifySignature(Buffer.from("other"), pss(32), sig, key)).toBe(false);
  });

  test("PSS with a different MGF1 hash is unsupported, not a verdict", () => {
    expect(signatureAlgorithmSupported(pss(32, seq(oid("2.16.840.1.101.3.4.2.3"), nul())))).toBe(false);
  });

  test("sha256WithRSAEncryption, and an unknown algorithm", () => {
    const sig = sign("sha256", DATA, privateKey);
    const alg = tlvAt(seq(oid("1.2.840.113549.1.1.11"), nul()));
    expect(verifySignature(DATA, alg, sig, key)).toBe(true);
    const unknown = tlvAt(seq(oid("1.2.3.4"), nul()));
    expect(signatureAlgorithmSupported(unknown)).toBe(false);
    expect(verifySignature(DATA, unknown, sig, key)).toBe(false);
  });
});
