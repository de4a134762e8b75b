import { describe, expect, it } from "vitest";
import { BASE64, parseValidateBody, VALIDATE_ERRORS } from "./validate-route.js";
import { parseSignatureBody } from "./verify-signature-route.js";

const codeOf = (body: unknown): string | undefined => {
  try {
    parseValidateBody(body);
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe("POST /v1/validate body (parseValidateBody)", () => {
  it("refuses each malformed part with its typed code", () => {
    expect(codeOf(null)).toBe("body-invalid");
    expect(codeOf("x")).toBe("body-invalid");
    expect(codeOf({ purpose: "signature" })).toBe("certificate-missing");
    expect(codeOf({ certificate: 42, purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: "not base64!", purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: Buffer.alloc(64, 0x30).toString("base64"), purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: "x", purpose: "signature", __proto__: { y: 1 }, evil: 1 })).toBe("field-unknown");
    for (const code of ["body-invalid", "certificate-missing", "certificate-malformed", "field-unknown"]) expect(VALIDATE_ERRORS).toHaveProperty([code]);
  });
});

describe("base64 fields (BASE64)", () => {
  it("take whitespace anywhere and padding at the end, and refuse anything else", () => {
    for (const ok of ["QUJD", "QUJD\nRA==\n", "QU JD RA =\r\n=", " QUJDRA== "]) expect(BASE64.test(ok), JSON.stringify(ok)).toBe(true);
    for (const bad of ["", "QUJD!", "QU=JD", "QUJD===", "=QUJD", "QUJD==x"]) expect(BASE64.test(bad), JSON.stringify(bad)).toBe(false);
  });

  it("are checked in linear time: a run of whitespace before a stray character no longer stalls the server", () => {
    // Quadratic before: 40 000 spaces took seconds on the server's one thread (a 2 MiB signed-file body, hours).
    // No clock here: at 400 000 spaces a quadratic check would run for minutes, past the test's timeout, while the
    // linear one takes milliseconds.
    const evil = "A" + " ".repeat(400_000) + "!";
    expect(codeOf({ certificate: evil, purpose: "signature" })).toBe("certificate-malformed");
    expect(() => parseSignatureBody({ signedData: evil })).toThrow();
    expect(() => parseSignatureBody({ signedData: "QUJD", content: evil })).toThrow();
  });
});
