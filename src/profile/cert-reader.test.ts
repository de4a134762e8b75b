import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { asn1x509, asnConvert, type Certificate } from "./asn1.js";
import { readCertificate, readGeneralNames } from "./cert-reader.js";
import { extValue, integerHex, readName, timeInfo } from "./x509-reader.js";
import { parsePemBlocks } from "../pki/pem.js";

const ROOT = resolve(import.meta.dirname, "../..");

function load(path: string): Buffer {
  const bytes = readFileSync(path);
  return bytes[0] === 0x30 ? bytes : parsePemBlocks(bytes.toString("utf8"))[0]!.der;
}

/** Every kind of certificate we issue (test/vectors/inspect/certs) and J-LIS's roots. */
const OURS = [
  ...readdirSync(join(ROOT, "test/vectors/inspect/certs")).map((f) => join(ROOT, "test/vectors/inspect/certs", f)),
  ...readdirSync(join(ROOT, "fixtures/jlis"))
    .filter((f) => f.endsWith(".pem"))
    .map((f) => join(ROOT, "fixtures/jlis", f)),
];

/** What check.ts and describe.ts read of a certificate, as plain values. */
function facts(c: Certificate): unknown {
  const t = c.tbsCertificate;
  return {
    version: t.version,
    serial: integerHex(t.serialNumber),
    signature: [t.signature.algorithm, c.signatureAlgorithm.algorithm],
    issuer: readName(t.issuer),
    subject: readName(t.subject),
    validity: [timeInfo(t.validity.notBefore), timeInfo(t.validity.notAfter)],
    key: [t.subjectPublicKeyInfo.algorithm.algorithm, Buffer.from(t.subjectPublicKeyInfo.subjectPublicKey).toString("hex")],
    extensions: (t.extensions ?? []).map((e) => [e.extnID, e.critical, Buffer.from(extValue(e)).toString("hex")]),
  };
}

describe("cert-reader", () => {
  it("reads every kind of certificate we issue itself, into what asn1-x509 reads from it", () => {
    expect(OURS.length).toBeGreaterThan(15);
    for (const path of OURS) {
      const der = load(path);
      const own = readCertificate(der);
      expect(own, path).toBeDefined();
      expect(facts(own!), path).toEqual(facts(asnConvert().parse(der, asn1x509().Certificate)));
    }
  });

  it("leaves to asn1-x509 what is not strict DER or holds a string type it does not decode", () => {
    const der = load(join(ROOT, "test/vectors/inspect/certs/signature-13.pem"));
    // BER: the outer length in a long form where the short one would do is still a certificate to asn1-x509
    const [, , l1, l2] = der;
    expect(der[1]).toBe(0x82);
    const ber = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, l1!, l2!]), der.subarray(4)]);
    expect(readCertificate(ber)).toBeUndefined();
    // a subjectAltName with an iPAddress (asn1-x509 writes it as text its own way)
    expect(readGeneralNames(Buffer.from("3006870401020304", "hex"))).toBeUndefined();
    expect(readGeneralNames(Buffer.from("30068204612e6a70", "hex"))).toEqual([{ dNSName: "a.jp" }]);
    // a BMPString in the subject
    const cn = der.indexOf(Buffer.from("0603550403", "hex"));
    const bmp = Buffer.from(der);
    bmp[cn + 5] = 0x1e; // the CN's UTF8String retagged: an odd length is no BMPString at all, an even one is
    expect(readCertificate(bmp)).toBeUndefined();
  });
});
