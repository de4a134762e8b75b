import { describe, expect, it } from "vitest";
import type { JpkiValidationResult } from "../validation/jpki.js";
import { LEGAL_BASES, LEGAL_BASIS_CODES, isLegalBasisCode, legalBasisAllows, parseLegalBasis } from "./legal-basis.js";
import { PRIVATE_STATUS_OF, governmentView, privateView, viewedPart } from "./views.js";

const at = new Date("2026-04-01T00:00:00Z");
const revoked = {
  status: "revoked",
  reason: "revoked",
  index: 0,
  message: "the certificate is revoked (§6.3)",
  revocation: { time: new Date("2026-03-01T00:00:00Z"), reason: "affiliationChanged", source: "crl" },
  purpose: "signature",
  certificatePurpose: "signature",
  fourItems: { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" },
  chain: [{ subject: "C=JP, CN=x", issuer: "C=JP, O=JPKI", serial: "0a", notBefore: at, notAfter: at }],
} as unknown as JpkiValidationResult;

describe("verifier views (views.ts)", () => {
  it("a private provider sees only valid, revoked or unknown: every other status is unknown", () => {
    expect(new Set(Object.values(PRIVATE_STATUS_OF))).toEqual(new Set(["valid", "revoked", "unknown"]));
    expect(PRIVATE_STATUS_OF.valid).toBe("valid");
    expect(PRIVATE_STATUS_OF.revoked).toBe("revoked");
    for (const s of ["expired", "not-yet-valid", "untrusted", "profile-violation", "revocation-unknown"] as const) expect(PRIVATE_STATUS_OF[s]).toBe("unknown");
  });

  it("the private view of a revoked certificate carries the status and nothing else (no reason, no items, no chain)", () => {
    const v = privateView(revoked, at);
    expect(v).toEqual({ view: "private", status: "revoked", validationTime: at.toISOString() });
    expect(JSON.stringify(v)).not.toMatch(/affiliationChanged|山田|千代田/);
  });

  it("the government view names the reason, the failed certificate and the revocation, and never the certificate's items", () => {
    const v = governmentView(revoked, { at, serial: "0a", issuer: "13-sig" });
    expect(v).toMatchObject({ status: "revoked", reason: "revoked", failedCertificate: { index: 0, serial: "0a" }, revocation: { time: "2026-03-01T00:00:00.000Z", reason: "affiliationChanged" } });
    expect(JSON.stringify(v)).not.toMatch(/山田|千代田/);
  });
});

describe("what crosses from the engine's thread (viewedPart)", () => {
  const ee = { subject: "C=JP, CN=x", issuer: "C=JP, O=JPKI, OU=Tokyo-to", serial: "0a", notBefore: at, notAfter: at };
  const ca = { subject: "C=JP, O=JPKI, OU=Tokyo-to", issuer: "C=JP, O=JPKI, OU=Tokyo-to", serial: "01", notBefore: at, notAfter: at };
  const valid = { status: "valid", purpose: "signature", certificatePurpose: "signature", chain: [ee, ca] } as unknown as JpkiValidationResult;
  const caRevoked = { ...revoked, index: 1, chain: [ee, ca] } as unknown as JpkiValidationResult;
  const eeRevoked = { ...revoked, chain: [ee, ca] } as unknown as JpkiValidationResult;

  it("carries the path's entries up to the one the views read, no further, and no dates", () => {
    expect(viewedPart(valid).chain).toEqual([{ subject: ee.subject, issuer: ee.issuer, serial: ee.serial }]);
    expect(viewedPart(eeRevoked).chain).toEqual([{ subject: ee.subject, issuer: ee.issuer, serial: ee.serial }]);
    expect(viewedPart(caRevoked).chain).toEqual([
      { subject: ee.subject, issuer: ee.issuer, serial: ee.serial },
      { subject: ca.subject, issuer: ca.issuer, serial: ca.serial },
    ]);
  });

  it("gives each view what the whole result gives", () => {
    for (const r of [valid, eeRevoked, caRevoked]) {
      const o = { at, serial: "0a", issuer: "13-sig", legalBasis: "pension" };
      expect(governmentView(viewedPart(r), o)).toEqual(governmentView(r, o));
      expect(privateView(viewedPart(r), at)).toEqual(privateView(r, at));
    }
    expect(governmentView(viewedPart(caRevoked), { at, serial: "0a", issuer: "13-sig" }).failedCertificate).toEqual({ index: 1, subject: ca.subject, issuer: ca.issuer, serial: ca.serial });
  });

  it("writes a government body's answer with its fields in one order: the base, the legal basis, then why it failed", () => {
    const v = governmentView(eeRevoked, { at, serial: "0a", issuer: "13-sig", legalBasis: "pension" });
    expect(Object.keys(v)).toEqual(["view", "status", "purpose", "validationTime", "serial", "issuer", "legalBasis", "reason", "message", "failedCertificate", "revocation"]);
    expect(v).toMatchObject({ legalBasis: "pension", failedCertificate: { index: 0, subject: ee.subject, issuer: ee.issuer, serial: ee.serial }, revocation: { time: "2026-03-01T00:00:00.000Z", reason: "affiliationChanged" } });
    expect(Object.keys(governmentView(valid, { at, serial: "0a", issuer: "13-sig" }))).toEqual(["view", "status", "purpose", "validationTime", "serial", "issuer"]);
    // a failure whose certificate the path does not hold: its index alone
    const noPath = { ...revoked, chain: undefined } as unknown as JpkiValidationResult;
    expect(governmentView(noPath, { at, serial: "0a", issuer: "13-sig" }).failedCertificate).toEqual({ index: 0 });
  });
});

describe("legal bases (legal-basis.ts)", () => {
  it("lists the spec's six affairs, each with its Japanese name, government bodies only", () => {
    expect(LEGAL_BASIS_CODES).toEqual(["pension", "child-allowance", "passport", "real-estate-registration", "construction-licence", "national-exam"]);
    for (const c of LEGAL_BASIS_CODES) {
      expect(LEGAL_BASES[c].ja).toMatch(/事務$/);
      expect(legalBasisAllows(c, "government")).toBe(true);
      expect(legalBasisAllows(c, "private")).toBe(false);
    }
    expect(isLegalBasisCode("toString")).toBe(false);
    expect(() => parseLegalBasis("curiosity")).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
  });
});
