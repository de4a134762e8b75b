import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { extension, oid, readHeader } from "../pki/der.js";
import { encodeFourItems } from "../profile/four-items.js";
import { authenticationSubject, encodeName, signatureSubject } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { encodeFourItemsGeneralNames } from "../profile/san.js";
import { keyIdentifier, keyIdentifierHex, keyUsage, subjectKeyIdentifier } from "../profile/extensions.js";
import { SHA256_WITH_RSA } from "../pki/signer.js";
import { assembleCertificate, encodeTbs, writeCertificate, writeEndEntityTbs } from "./certificate.js";

// The one-allocation writer of the issuing path must produce exactly the DER the general encoder does.
describe("writeEndEntityTbs", () => {
  const issuer = encodeName(authenticationSubject("Issuer CA"));
  const spki = Buffer.concat([Buffer.from([0x30, 0x81, 0x9f]), Buffer.alloc(0x9f, 7)]);
  const before = extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"]));
  const after = Buffer.concat([extension(EXT_OID.issuerAltName, false, Buffer.from([0x30, 0])), extension(EXT_OID.authorityKeyIdentifier, false, Buffer.from([0x30, 0]))]);
  const keyId = Buffer.from("00112233445566778899aabbccddeeff8090a0b0", "hex"); // each octet its own: order and case show
  const items = { name: "𠮷田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "female" as const };
  const long = { ...items, address: "東京都千代田区千代田" + "１".repeat(180) }; // lengths past 255 bytes
  const cases = [
    { serial: Buffer.from("7f0102030405060708090a0b0c0d0e0f", "hex"), nb: new Date(Date.UTC(2025, 0, 2, 3, 4, 5)), na: new Date(Date.UTC(2049, 11, 31, 14, 59, 59)), fourItems: items },
    { serial: Buffer.from("00008102", "hex"), nb: new Date(Date.UTC(2049, 11, 31, 23, 59, 59)), na: new Date(Date.UTC(2050, 0, 1)), fourItems: long },
    { serial: Buffer.from("80", "hex"), nb: new Date(Date.UTC(1999, 8, 9)), na: new Date(Date.UTC(10000 - 1, 0, 1)), fourItems: undefined },
  ];
  for (const [i, c] of cases.entries()) {
    it(`writes what encodeTbs does (case ${i + 1})`, () => {
      const cn = "2025010212040500001131016000";
      const rdns = c.fourItems ? signatureSubject("Tokyo-to", "Chiyoda-ku", cn) : authenticationSubject(cn);
      const head = encodeName(rdns.slice(0, -1));
      const encoded = c.fourItems ? encodeFourItems(c.fourItems) : undefined;
      const expected = encodeTbs({
        serial: c.serial,
        signatureAlgorithm: SHA256_WITH_RSA,
        issuer,
        notBefore: c.nb,
        notAfter: c.na,
        subject: encodeName(rdns),
        spki,
        extensions: [
          before,
          ...(encoded ? [extension(EXT_OID.subjectAltName, false, encodeFourItemsGeneralNames(encoded))] : []),
          after,
          extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(keyId)),
        ],
      });
      const got = writeEndEntityTbs({
        serial: c.serial,
        signatureAlgorithm: SHA256_WITH_RSA,
        issuer,
        notBefore: c.nb,
        notAfter: c.na,
        subjectHead: head.subarray(readHeader(head).headerLength),
        commonName: cn,
        spki,
        extensionsBefore: before,
        fourItems: encoded,
        extensionsAfter: after,
        keyIdHex: keyId.toString("hex"),
      });
      expect(got.toString("hex")).toBe(expected.toString("hex"));
      const sig = Buffer.alloc(256, 0x5a);
      expect(writeCertificate(got, SHA256_WITH_RSA, sig).equals(assembleCertificate(expected, SHA256_WITH_RSA, sig))).toBe(true);
    });
  }
  it("keeps the OID encoding it relies on", () => expect(oid(EXT_OID.subjectKeyIdentifier).toString("hex")).toBe("0603551d0e"));
});

// The issuing path writes the subject key identifier from its hex digits (keyIdentifierHex): the same 20 octets.
describe("keyIdentifierHex", () => {
  it("is SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1) in hex, what keyIdentifier gives as octets", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const spki = publicKey.export({ type: "spki", format: "der" });
    // an RSA key's subjectPublicKey BIT STRING holds its PKCS#1 RSAPublicKey
    const expected = createHash("sha1").update(publicKey.export({ type: "pkcs1", format: "der" })).digest("hex");
    expect(keyIdentifierHex(spki)).toBe(expected);
    expect(keyIdentifier(spki).toString("hex")).toBe(expected);
  });
});
