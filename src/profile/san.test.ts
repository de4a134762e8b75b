import type { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import * as x509 from "@peculiar/x509";
import { isJpkiError } from "../errors.js";
import { explicit, ia5, implicitPrimitive, oid, seq, tlv, utf8 } from "../pki/der.js";
import { FOUR_ITEMS_OID } from "./oids.js";
import { decodeFourItemsSan, encodeFourItemsSan, otherName } from "./san.js";
import type { FourItems } from "./types.js";

const yamada: FourItems = { name: "山田　太郎", address: "東京都千代田区", birthDate: "1980-12-31", gender: "male" };

/**
 * Written by hand from X.690, independent of pki/der.ts: GeneralNames SEQUENCE (30 81 a6) of six otherName
 * [0] (a0) entries, each OID 1.2.392.200149.8.5.5.n (06 0a 2a 83 08 8c 9b 55 08 05 05 0n) then
 * [0] EXPLICIT (a0) UTF8String (0c), in the order .1, .4, .3, .5, .2, .6.
 */
const EXPECTED_HEX = [
  "3081a6",
  // .1 name 山田　太郎 (15 UTF-8 bytes)
  "a01f" + "060a2a83088c9b5508050501" + "a011" + "0c0f" + "e5b1b1e794b0e38080e5a4aae9838e",
  // .4 birth date 319801231
  "a019" + "060a2a83088c9b5508050504" + "a00b" + "0c09" + "333139383031323331",
  // .3 gender 1
  "a011" + "060a2a83088c9b5508050503" + "a003" + "0c01" + "31",
  // .5 address 東京都千代田区 (21 UTF-8 bytes)
  "a025" + "060a2a83088c9b5508050505" + "a017" + "0c15" + "e69db1e4baace983bde58d83e4bba3e794b0e58cba",
  // .2 name flags 00000
  "a015" + "060a2a83088c9b5508050502" + "a007" + "0c05" + "3030303030",
  // .6 address flags 0000000
  "a017" + "060a2a83088c9b5508050506" + "a009" + "0c07" + "30303030303030",
].join("");

describe("encodeFourItemsSan", () => {
  it("matches the hand-written DER byte for byte", () => {
    expect(encodeFourItemsSan(yamada).toString("hex")).toBe(EXPECTED_HEX);
  });

  it("round-trips, including substitutes and their flags", () => {
    const items: FourItems = { name: "髙橋　𠮷男", address: "大阪府大阪市北区中之島1-3-20", birthDate: "2019-05-01", gender: "unknown" };
    const der = encodeFourItemsSan(items);
    const d = decodeFourItemsSan(der)!;
    expect(d.wellFormed).toBe(true);
    expect(d.problems).toEqual([]);
    expect(d.name).toBe("高橋　吉男");
    expect(d.nameSubstituteFlags).toBe("10010");
    expect(d.address).toBe("大阪府大阪市北区中之島１－３－２０");
    expect(d.addressSubstituteFlags).toBe("0".repeat(17));
    expect(d.birthDate).toBe("2019-05-01");
    expect(d.era).toBe(5);
    expect(d.gender).toBe("unknown");
    expect(d.flagsMatch).toEqual({ name: true, address: true });
    expect(d.raw.birthDate).toBe("520190501");
    // Substitution is idempotent, but the flags cannot be recovered from the certified text: re-encoding
    // the decoded items gives the same text with all-zero flags. The registry keeps the true form.
    const again = decodeFourItemsSan(encodeFourItemsSan({ name: d.name!, address: d.address!, birthDate: d.birthDate!, gender: d.gender! }))!;
    expect(again.name).toBe(d.name);
    expect(again.address).toBe(d.address);
    expect(again.nameSubstituteFlags).toBe("00000");
  });
});

describe("decodeFourItemsSan", () => {
  const entry = (field: keyof typeof FOUR_ITEMS_OID, v: string) => otherName(FOUR_ITEMS_OID[field], v);
  const all = {
    name: entry("name", "山田　太郎"),
    nameSubstituteFlags: entry("nameSubstituteFlags", "00000"),
    gender: entry("gender", "1"),
    birthDate: entry("birthDate", "319801231"),
    address: entry("address", "東京都"),
    addressSubstituteFlags: entry("addressSubstituteFlags", "000"),
  };

  it("keys by OID, never by position", () => {
    const d = decodeFourItemsSan(seq(all.addressSubstituteFlags, all.gender, all.address, all.name, all.birthDate, all.nameSubstituteFlags))!;
    expect(d.wellFormed).toBe(true);
    expect(d.name).toBe("山田　太郎");
    expect(d.address).toBe("東京都");
    expect(d.gender).toBe("male");
    expect(d.birthDate).toBe("1980-12-31");
  });

  it("ignores other general names around the four items", () => {
    const d = decodeFourItemsSan(seq(implicitPrimitive(2, Buffer.from("example.jp")), ...Object.values(all), implicitPrimitive(6, Buffer.from("https://x"))))!;
    expect(d.wellFormed).toBe(true);
  });

  it("returns null when none of the six are present", () => {
    expect(decodeFourItemsSan(seq(implicitPrimitive(2, Buffer.from("example.jp"))))).toBeNull();
    expect(decodeFourItemsSan(seq(otherName("1.2.3.4", "x")))).toBeNull();
  });

  it("reports problems by field without quoting values", () => {
    const d = decodeFourItemsSan(
      seq(
        entry("name", "山田太郎"),
        entry("nameSubstituteFlags", "000"),
        entry("gender", "9"),
        entry("birthDate", "419801231"),
        entry("address", "髙"),
        entry("address", "東京都"),
      ),
    )!;
    expect(d.wellFormed).toBe(false);
    const fields = d.problems.map((p) => p.field);
    expect(fields).toEqual(expect.arrayContaining(["name", "nameSubstituteFlags", "gender", "birthDate", "address", "addressSubstituteFlags"]));
    expect(d.flagsMatch.name).toBe(false);
    for (const p of d.problems) {
      expect(p.message).not.toContain("山田");
      expect(p.message).not.toContain("髙");
      expect(p.message).not.toContain("419801231");
    }
  });

  it("rejects a value that is not a UTF8String", () => {
    const bad = explicit(0, Buffer.concat([oid(FOUR_ITEMS_OID.gender), explicit(0, ia5("1"))]));
    const d = decodeFourItemsSan(seq(all.name, all.nameSubstituteFlags, bad, all.birthDate, all.address, all.addressSubstituteFlags))!;
    expect(d.problems).toEqual([{ field: "gender", message: "gender is not a UTF8String" }]);
    expect(d.raw.gender).toBeUndefined();
  });

  it("throws ERR_DER_MALFORMED when the GeneralNames do not decode", () => {
    const noValue = tlv(0xa0, oid(FOUR_ITEMS_OID.name)); // otherName without its [0] value
    const noTypeId = tlv(0xa0, explicit(0, utf8("x")));
    for (const bytes of [
      Buffer.from("garbage"),
      Buffer.from([0x30, 0x05, 0xa0]),
      tlv(0x04, utf8("x")),
      Buffer.concat([seq(all.name), Buffer.from([0])]), // trailing bytes
      seq(all.name, tlv(0x30, utf8("x"))), // a universal tag where a GeneralName choice belongs
      seq(all.name, tlv(0x89, Buffer.from("x"))), // [9]: no such choice
      seq(noValue),
      seq(noTypeId),
      seq(Buffer.concat([all.name, Buffer.from([0x01])])).subarray(0, -1), // the last GeneralName overruns
    ]) {
      try {
        decodeFourItemsSan(bytes);
        throw new Error("expected a throw");
      } catch (e) {
        expect(isJpkiError(e, "ERR_DER_MALFORMED")).toBe(true);
      }
    }
  });
});

describe("in a certificate built by @peculiar/x509", () => {
  it("survives as a raw subjectAltName extension", async () => {
    x509.cryptoProvider.set(globalThis.crypto);
    const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
    const keys = (await globalThis.crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "0102030405060708090a",
      name: "C=JP, CN=test",
      notBefore: new Date("2024-04-01T00:00:00Z"),
      notAfter: new Date("2027-04-01T00:00:00Z"),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.Extension("2.5.29.17", false, encodeFourItemsSan(yamada))],
    });
    const parsed = new x509.X509Certificate(cert.rawData);
    const ext = parsed.extensions.find((e) => e.type === "2.5.29.17")!;
    expect(Buffer.from(ext.value).toString("hex")).toBe(EXPECTED_HEX);
    const d = decodeFourItemsSan(new Uint8Array(ext.value))!;
    expect(d.name).toBe("山田　太郎");
    expect(d.wellFormed).toBe(true);
  });
});
