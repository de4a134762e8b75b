import { describe, expect, it } from "vitest";
import { parseValidateBody, VALIDATE_ERRORS } from "./validate-route.js";

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
