import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, type webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { formatCertificate, formatCrl } from "../cli/inspect-format.js";
import { isJpkiError } from "../errors.js";
import { integer } from "../pki/der.js";
import { toPem } from "../pki/pem.js";
import { describeCertificate, describeCrl, detectAndDecode, openForInspection } from "./describe.js";
import {
  authorityKeyIdentifier,
  certificatePolicies,
  crlDistributionPoints,
  generalNamesDirName,
  keyIdentifier,
  keyUsage,
  subjectKeyIdentifier,
} from "./extensions.js";
import { crlPartitionName, encodeName, ISSUER_ALT_NAME } from "./names.js";
import { EXT_OID, POLICY_OID } from "./oids.js";
import { encodeFourItemsSan } from "./san.js";

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/jlis/${name}`, import.meta.url));

const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
let sigCert: Buffer;
let crl: Buffer;

// One key pair, generated once: the signature certificate is self-issued by it and the CRL signed by it.
beforeAll(async () => {
  x509.cryptoProvider.set(globalThis.crypto);
  const keys = (await globalThis.crypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const spki = Buffer.from(await globalThis.crypto.subtle.exportKey("spki", keys.publicKey));
  const kid = keyIdentifier(spki);
  const ext = (id: string, critical: boolean, v: Buffer) => new x509.Extension(id, critical, v);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "3a0f1e2d3c4b5a69788796a5b4c3d2e1",
    issuer: "C=JP, O=JPKI, OU=JPKI for digital signature, OU=Tokyo-to",
    subject: "C=JP, L=Tokyo-to, L=Chiyoda-ku, CN=2024040110203000042A12345678",
    notBefore: new Date("2024-04-01T00:00:00Z"),
    notAfter: new Date("2027-03-31T14:59:59Z"),
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: alg,
    extensions: [
      ext(EXT_OID.keyUsage, true, keyUsage(["digitalSignature", "nonRepudiation"])),
      ext(EXT_OID.certificatePolicies, false, certificatePolicies(POLICY_OID.signature, "https://jpki.example.jp/cps")),
      ext(EXT_OID.subjectAltName, false, encodeFourItemsSan({ name: "髙橋　𠮷男", address: "東京都千代田区千代田１番１号", birthDate: "1989-01-07", gender: "female" })),
      ext(EXT_OID.issuerAltName, false, generalNamesDirName(encodeName(ISSUER_ALT_NAME))),
      ext(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(encodeName(crlPartitionName("Tokyo-to", "Chiyoda-ku", "signature")), ["http://crl.example.jp/13/131016.crl"])),
      ext(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(kid)),
      ext(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(kid)),
    ],
  });
  sigCert = Buffer.from(cert.rawData);
  const list = await x509.X509CrlGenerator.create({
    issuer: "C=JP, O=JPKI, OU=JPKI for digital signature, OU=CRL Distribution Points, OU=Tokyo-to, CN=Chiyoda-ku",
    thisUpdate: new Date("2024-05-02T00:00:00Z"),
    nextUpdate: new Date("2024-05-04T00:00:00Z"),
    signingKey: keys.privateKey,
    signingAlgorithm: alg,
    extensions: [ext(EXT_OID.cRLNumber, false, integer(12)), ext(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(kid))],
    entries: [
      { serialNumber: "0a0b0c0d0e0f10111213", revocationDate: new Date("2024-05-01T03:00:00Z"), reason: x509.X509CrlReason.affiliationChanged },
      { serialNumber: "1a0b0c0d0e0f10111213", revocationDate: new Date("2024-05-01T04:00:00Z"), reason: x509.X509CrlReason.keyCompromise },
      { serialNumber: "2a0b0c0d0e0f10111213", revocationDate: new Date("2024-05-01T05:00:00Z") },
    ],
  });
  crl = Buffer.from(list.rawData);
});

describe("describeCertificate", () => {
  it("describes J-LIS's signature root", () => {
    const { kind, der } = detectAndDecode(fixture("sign-ca-2023.pem"));
    expect(kind).toBe("certificate");
    const d = describeCertificate(der);
    expect(d.version).toBe(3);
    expect(d.serialNumber).toBe("067c6a21");
    expect(d.signatureAlgorithm).toEqual({ name: "sha256WithRSAEncryption", oid: "1.2.840.113549.1.1.11" });
    expect(d.subject.text).toBe("C=JP, O=JPKI, OU=JPKI for digital signature, OU=Japan Agency for Local Authority Information Systems");
    expect(d.subject.rdns[0]).toEqual({ type: "C", value: "JP" });
    expect(d.issuer.text).toBe(d.subject.text);
    expect(d.validity).toEqual({ notBefore: "2023-07-16T00:50:27.000Z", notAfter: "2033-07-15T14:59:59.000Z" });
    expect(d.publicKey).toEqual({ name: "rsaEncryption", oid: "1.2.840.113549.1.1.1", bits: 2048, exponent: 65537 });
    expect(d.fingerprints.sha256).toBe(createHash("sha256").update(der).digest("hex"));
    const byName = Object.fromEntries(d.extensions.map((e) => [e.name, e]));
    expect(byName.keyUsage).toMatchObject({ critical: true, value: ["keyCertSign", "cRLSign"] });
    expect(byName.basicConstraints).toMatchObject({ critical: true, value: { ca: true } });
    expect(byName.subjectAltName!.value).toEqual([
      expect.objectContaining({ type: "directoryName", value: "C=JP, O=公的個人認証サービス, OU=公的個人認証サービス署名用, OU=地方公共団体情報システム機構" }),
    ]);
    expect(byName.cRLDistributionPoints!.value).toEqual([{ distributionPoint: { fullName: [expect.objectContaining({ type: "directoryName", value: d.subject.text })] } }]);
    expect(byName.subjectKeyIdentifier!.value).toMatch(/^[0-9a-f]{40}$/);
    expect(d.fourItems).toBeUndefined();
    expect(d.profile.kind).toBe("ca");
    expect(d.profile.violations.every((v) => v.severity === "warning")).toBe(true);
    // JSON-serialisable as it stands
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });

  it("describes a signature certificate with the four items in readable Japanese", () => {
    const d = describeCertificate(sigCert);
    expect(d.serialNumber).toBe("3a0f1e2d3c4b5a69788796a5b4c3d2e1");
    expect(d.fourItems).toEqual({
      name: "高橋　吉男",
      nameSubstituteFlags: "10010",
      gender: "female",
      genderLabel: "女",
      birthDate: "1989-01-07",
      era: 3,
      eraName: "昭和",
      address: "東京都千代田区千代田１番１号",
      addressSubstituteFlags: "00000000000000",
      flagsMatch: { name: true, address: true },
      wellFormed: true,
    });
    const byName = Object.fromEntries(d.extensions.map((e) => [e.name, e]));
    expect(byName.certificatePolicies!.value).toEqual([
      { oid: POLICY_OID.signature, name: expect.stringContaining("署名用電子証明書"), cps: ["https://jpki.example.jp/cps"] },
    ]);
    const cdp = byName.cRLDistributionPoints!.value as Array<{ distributionPoint: { fullName: Array<{ type: string; value: string }> } }>;
    expect(cdp[0]!.distributionPoint.fullName.map((g) => g.type)).toEqual(["directoryName", "uri"]);
    expect((byName.authorityKeyIdentifier!.value as { keyIdentifier: string }).keyIdentifier).toBe(byName.subjectKeyIdentifier!.value);
    const san = byName.subjectAltName!.value as Array<{ type: string; label?: string; value?: string }>;
    expect(san.map((g) => g.label)).toEqual(["氏名 name", "生年月日 birth date", "性別 gender", "住所 address", "氏名代替文字フラグ name substitute flags", "住所代替文字フラグ address substitute flags"]);
    // @peculiar/x509 writes names as it pleases (PrintableString where it can): the checker warns, nothing more
    expect(d.profile.kind).toBe("signature");
    expect(d.profile.violations.filter((v) => v.severity === "error")).toEqual([]);
  });

  it("throws ERR_DER_MALFORMED for a name value of a type it cannot have (npm run fuzz: was asn1-schema's Error from the profile check)", () => {
    // a certificate of ours whose issuer countryName holds a UTCTime (tag 17) instead of a PrintableString
    const der = readFileSync(new URL("../../test/vectors/fuzz/inspect-certificate/name-value-utctime.der", import.meta.url));
    let thrown: unknown;
    try {
      describeCertificate(der);
    } catch (e) {
      thrown = e;
    }
    expect(isJpkiError(thrown, "ERR_DER_MALFORMED"), String(thrown)).toBe(true);
    expect((thrown as Error).message).toMatch(/attribute value/);
  });

  it("throws ERR_DER_MALFORMED for garbage", () => {
    expect(() => describeCertificate(Buffer.from("nonsense"))).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});

describe("describeCrl", () => {
  it("lists entries with reason names, bounded by maxEntries", () => {
    const d = describeCrl(crl);
    expect(d.version).toBe(2);
    expect(d.issuer.text).toContain("OU=CRL Distribution Points");
    expect(d.thisUpdate).toBe("2024-05-02T00:00:00.000Z");
    expect(d.nextUpdate).toBe("2024-05-04T00:00:00.000Z");
    expect(d.crlNumber).toBe("12");
    expect(d.authorityKeyIdentifier).toMatch(/^[0-9a-f]{40}$/);
    expect(d.entryCount).toBe(3);
    expect(d.entries[0]).toEqual({ serialNumber: "0a0b0c0d0e0f10111213", revocationDate: "2024-05-01T03:00:00.000Z", reason: "affiliationChanged" });
    expect(d.entries[1]!.reason).toBe("keyCompromise");
    expect(d.entries[2]!.reason).toBeUndefined();
    expect(d.entriesTruncated).toBe(false);
    // @peculiar/x509 writes an empty crlEntryExtensions for the entry without reason: that one warning only
    expect(d.profile).toEqual({ kind: "crl", violations: [{ rule: "crl.entry.extensions.empty", severity: "warning", message: "1 entry: crlEntryExtensions is present but empty: with no extension it must be absent (SEQUENCE SIZE (1..MAX)) (first: entry #3)" }] });
    const short = describeCrl(crl, { maxEntries: 1 });
    expect(short.entryCount).toBe(3);
    expect(short.entries).toHaveLength(1);
    expect(short.entriesTruncated).toBe(true);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });
});

describe("detectAndDecode", () => {
  it("tells certificates from CRLs by structure, in PEM or DER", () => {
    expect(detectAndDecode(sigCert).kind).toBe("certificate");
    expect(detectAndDecode(crl).kind).toBe("crl");
    expect(detectAndDecode(Buffer.from(toPem(crl, "X509 CRL"))).kind).toBe("crl");
    const pem = detectAndDecode(Buffer.from(toPem(sigCert, "CERTIFICATE")));
    expect(pem.kind).toBe("certificate");
    expect(pem.der.equals(sigCert)).toBe(true);
    // the label is advisory; the structure decides
    expect(detectAndDecode(Buffer.from(toPem(crl, "CERTIFICATE"))).kind).toBe("crl");
  });

  it.each([
    ["text", Buffer.from("hello")],
    ["empty", Buffer.alloc(0)],
    ["a PEM of another kind", Buffer.from("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")],
    ["a SEQUENCE that is neither", Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])],
    ["trailing bytes", Buffer.from([0x30, 0x00, 0x00])],
  ])("%s → ERR_DER_MALFORMED", (_w, bytes) => {
    try {
      detectAndDecode(bytes);
      throw new Error("expected a throw");
    } catch (e) {
      expect(isJpkiError(e, "ERR_DER_MALFORMED"), String(e)).toBe(true);
    }
  });

  it("rejects a truncated certificate", () => {
    expect(() => detectAndDecode(sigCert.subarray(0, 200))).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});

describe("openForInspection: large files that are no certificate or CRL", () => {
  const codeOf = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return isJpkiError(e) ? `${e.code}: ${e.message}` : `not a JpkiError: ${String(e)}`;
    }
    return "no error";
  };
  // Sparse files: gigabytes long, no disk used.
  const sparse = (name: string, head: string | Buffer, size: number) => {
    const f = join(mkdtempSync(join(tmpdir(), "jpki-inspect-")), name);
    writeFileSync(f, head);
    truncateSync(f, size);
    return f;
  };

  it("3 GiB of zeros is told from its first bytes not to be DER: was read whole, and past 2 GiB failed as unreadable", () => {
    expect(codeOf(() => openForInspection(sparse("zeros", "", 3 * 2 ** 30), "input file zeros"))).toBe("ERR_DER_MALFORMED: input: DER must start with a SEQUENCE");
  });

  it("a DER header that claims more or less than the file is refused before the file is read", () => {
    const long = Buffer.from([0x30, 0x84, 0x40, 0x00, 0x00, 0x00, 0x30, 0x03, 0x02, 0x01, 0x01]);
    expect(codeOf(() => openForInspection(sparse("long", long, 2 ** 31), "input file long"))).toMatch(/^ERR_DER_MALFORMED: input: the DER length \(1073741830 bytes\) does not match the input \(2147483648 bytes\)/);
  });

  it("a PEM file too long to be decoded as text is ERR_FILE_UNUSABLE, not a string-length Error with a stack trace", () => {
    const f = sparse("big.pem", "-----BEGIN X509 CRL-----\n", 600 * 2 ** 20);
    expect(codeOf(() => openForInspection(f, "input file big.pem"))).toMatch(/^ERR_FILE_UNUSABLE: input file big.pem: a PEM file of 629145600 bytes/);
  });
});

describe("inspect text format", () => {
  it("shows the four items with Japanese labels and ends with the profile", () => {
    const text = formatCertificate(describeCertificate(sigCert));
    expect(text).toContain("氏名 name: 高橋　吉男");
    expect(text).toContain("性別 gender: 女 (female)");
    expect(text).toContain("生年月日 birth date: 1989-01-07 (昭和)");
    expect(text).toContain("住所 address: 東京都千代田区千代田１番１号");
    expect(text).toContain("氏名代替文字フラグ name substitute flags: 10010");
    expect(text).toContain("keyUsage (2.5.29.15): critical");
    expect(text).toMatch(/Profile: \d+ deviations?/);
    expect(text.trimEnd().split("\n").at(-1)).toMatch(/^\s*\[(warning|error)\]|^Profile:/);
  });

  it("lists a root's single deviation", () => {
    const text = formatCertificate(describeCertificate(detectAndDecode(fixture("auth-ca-2015.pem")).der));
    expect(text).toContain("Subject: C=JP, O=JPKI, OU=JPKI for user authentication");
    expect(text).toContain("Profile: 1 deviation (kind: ca)");
    expect(text).toContain("[warning] cert.serial.entropy");
  });

  it("formats a CRL", () => {
    const text = formatCrl(describeCrl(crl, { maxEntries: 2 }));
    expect(text).toContain("CRL Number: 12");
    expect(text).toContain("Revoked Certificates: 3");
    expect(text).toContain("0a0b0c0d0e0f10111213  2024-05-01T03:00:00.000Z  affiliationChanged");
    expect(text).toContain("… 1 more");
    expect(text).toContain("Profile: 1 deviation (kind: crl)"); // the empty crlEntryExtensions @peculiar/x509 writes
  });
});
