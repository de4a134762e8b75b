import { describe, expect, it } from "vitest";
import { parsePemBlocks, toPem } from "./pem.js";

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

  it("takes linear time on BEGIN lines without their END (a hostile signed-file body)", () => {
    // Quadratic before: 400 kB of BEGIN lines took ~2 s, a 2 MiB body ~50 s on the server's one thread.
    const text = "-----BEGIN CMS-----\n".repeat(20_000) + toPem(a, "CERTIFICATE");
    const started = performance.now();
    expect(parsePemBlocks(text)).toEqual([{ label: "CERTIFICATE", der: a }]);
    expect(performance.now() - started).toBeLessThan(300);
  });
});
