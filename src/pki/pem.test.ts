/** PEM or DER: a DER object that carries PEM text inside it (a CMS with an attached PEM request) is still DER. */
import { describe, expect, it } from "vitest";
import { header, seq, TAG } from "./der.js";
import { looksLikePem, pemOrDer, toPem } from "./pem.js";

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

  it("does not take a truncated DER SEQUENCE for whole", () => {
    expect(looksLikePem(der.subarray(0, der.length - 1))).toBe(true);
  });
});
