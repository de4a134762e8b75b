/**
 * The stores' lookup keys (rows.ts derIdKey, certificateIdKey, certifiedKeyOf): one definition each, in the octets
 * the stores keep and in the hex text the SQLite issuing commit binds; both forms must name the same key, computed
 * here the long way (createHash, node's X.509 key), or a row written by one path is not found by the other.
 */
import { createHash, X509Certificate } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { certificateIdKey, certifiedKeyOf, derIdKey } from "./rows.js";

const dir = new URL("../../test/vectors/inspect/certs/", import.meta.url);
const certs = readdirSync(dir).map((f) => new X509Certificate(readFileSync(new URL(f, dir))));
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest();

describe("lookup keys: one definition, two encodings", () => {
  it("a certificate id's key: 8 octets of the DER's SHA-256, as octets or hex, from the DER or from the id", () => {
    for (const x of certs) {
      const want = sha256(x.raw).subarray(0, 8);
      const id = sha256(x.raw).toString("hex");
      expect(derIdKey(x.raw)).toEqual(want);
      expect(derIdKey(x.raw, "buffer")).toEqual(want);
      expect(derIdKey(x.raw, "hex")).toBe(want.toString("hex"));
      expect(certificateIdKey(id, "buffer")).toEqual(want);
      expect(certificateIdKey(id, "hex")).toBe(want.toString("hex"));
    }
  });

  it("a certified key: 8 octets of the SHA-256 of the subjectPublicKeyInfo, as octets or hex; null in both where there is none", () => {
    for (const x of certs) {
      const want = sha256(x.publicKey.export({ type: "spki", format: "der" })).subarray(0, 8);
      expect(certifiedKeyOf(x.raw)).toEqual(want);
      expect(certifiedKeyOf(x.raw, "hex")).toBe(want.toString("hex"));
    }
    const none = Buffer.from("3003020105", "hex");
    expect(certifiedKeyOf(none)).toBeNull();
    expect(certifiedKeyOf(none, "hex")).toBeNull();
  });
});
