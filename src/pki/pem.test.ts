/** PEM or DER: a DER object that carries PEM text inside it (a CMS with an attached PEM request) is still DER. */
import { describe, expect, it } from "vitest";
import { header, seq, TAG } from "./der.js";
import { looksLikePem, parsePemBlocks, pemOrDer, toPem } from "./pem.js";

describe("looksLikePem", () => {
  const inner = Buffer.from(toPem(Buffer.from([0x30, 0x00]), "CERTIFICATE REQUEST"));
  const der = seq(Buffer.concat([header(TAG.OCTET_STRING, inner.length), inner]));

  it("takes a whole DER SEQUENCE for DER even when PEM text is inside it", () => {
    expect(looksLikePem(der)).toBe(false);
    expect(pemOrDer(der, ["CMS"], "CMS signature")).toEqual(der);
  });

  it("still reads PEM, and PEM with text before it", () => {
    const pem = Buffer.from(`note\n${toPem(der, "CERTIFICATE")}`);
    expect(looksLikePem(pem)).toBe(true);
    expect(pemOrDer(pem, ["CERTIFICATE"], "certificate")).toEqual(der);
  });

  it("reads PEM after more than 4 KiB of text: `openssl x509 -text` output, a signature certificate's dump (was taken for DER)", () => {
    const pem = Buffer.from(`Certificate:\n${"    Data: ...\n".repeat(400)}${toPem(der, "CERTIFICATE")}`);
    expect(pem.indexOf("-----BEGIN ")).toBeGreaterThan(4096);
    expect(looksLikePem(pem)).toBe(true);
    expect(pemOrDer(pem, ["CERTIFICATE"], "certificate")).toEqual(der);
  });

  it("does not take a truncated DER SEQUENCE for whole", () => {
    expect(looksLikePem(der.subarray(0, der.length - 1))).toBe(true);
  });
});

const a = Buffer.from("first block");
const b = Buffer.from("second block, a little longer");

describe("parsePemBlocks (RFC 7468)", () => {
  it("finds every block in order, each BEGIN with the first END of its label after it", () => {
    const text = `junk\n${toPem(a, "CERTIFICATE")}between\n${toPem(b, "X509 CRL")}`;
    expect(parsePemBlocks(text)).toEqual([
      { label: "CERTIFICATE", der: a },
      { label: "X509 CRL", der: b },
    ]);
    // A BEGIN without its END is skipped; the block after it is still found.
    expect(parsePemBlocks(`-----BEGIN PUBLIC KEY-----\nQUJD\n${toPem(a, "CERTIFICATE")}`)).toEqual([{ label: "CERTIFICATE", der: a }]);
    // An END of another label does not close a block.
    expect(parsePemBlocks("-----BEGIN CERTIFICATE-----\nQUJD\n-----END X509 CRL-----\n")).toEqual([]);
    expect(parsePemBlocks("no pem here")).toEqual([]);
    expect(() => parsePemBlocks("-----BEGIN CERTIFICATE-----\nQU!D\n-----END CERTIFICATE-----")).toThrow(/outside base64/);
  });

  it("takes base64 with whitespace anywhere and at most two = at the end, nothing else", () => {
    const block = (body: string) => `-----BEGIN CERTIFICATE-----${body}-----END CERTIFICATE-----`;
    const der = (body: string) => parsePemBlocks(block(body))[0]!.der;
    // CRLF lines, tabs and spaces (RFC 7468 §3) are skipped; "QUJDRA==" is "ABCD".
    expect(der("\r\nQUJD\r\n\tRA =\r\n=\r\n")).toEqual(Buffer.from("ABCD"));
    expect(der("\nQUJD\n")).toEqual(Buffer.from("ABC"));
    for (const bad of ["QUJDRA===", "QUJDRA= =\n=", "QU=JD", "QUJDRA=\n=Q", "QUJDRA==QQ", "QUJ\u00e9", "QUJ\u3042", "QUJD\v", "QUJD-"]) {
      expect(() => parsePemBlocks(block(`\n${bad}\n`)), bad).toThrow(/outside base64/);
    }
  });

  it("reads each text from its start, whatever the call before it stopped at (its expressions are shared between calls)", () => {
    const two = `${toPem(a, "CERTIFICATE")}${toPem(b, "CERTIFICATE")}`;
    const both = [
      { label: "CERTIFICATE", der: a },
      { label: "CERTIFICATE", der: b },
    ];
    expect(parsePemBlocks(two)).toEqual(both);
    // A call that threw with its scan half-way through a longer text, then shorter texts: each found whole.
    expect(() => parsePemBlocks(`${"x".repeat(4096)}${toPem(a, "CERTIFICATE")}-----BEGIN CERTIFICATE-----\nQU!D\n-----END CERTIFICATE-----`)).toThrow(/outside base64/);
    expect(parsePemBlocks(toPem(a, "CERTIFICATE"))).toEqual([{ label: "CERTIFICATE", der: a }]);
    expect(parsePemBlocks(two)).toEqual(both);
  });

  it("takes linear time on BEGIN lines without their END (a hostile signed-file body)", () => {
    // Quadratic before: 400 kB of BEGIN lines took ~2 s, a 2 MiB body ~50 s on the server's one thread.
    // No clock here: at 150 000 such lines a quadratic scan would run for minutes, past the test's timeout.
    const text = "-----BEGIN CMS-----\n".repeat(150_000) + toPem(a, "CERTIFICATE");
    expect(parsePemBlocks(text)).toEqual([{ label: "CERTIFICATE", der: a }]);
  });
});
