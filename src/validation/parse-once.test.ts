/**
 * The end entity is parsed once per validation (signature.ts parsedOncePerValidation): validateJpki reads it for its
 * JPKI facts, path building (pathCandidates) for its issuer and path processing (validatePath) for §6.1, and each
 * used to parse it afresh — three parses of the same octets, each ≈ 7–9 % of a validation on the validation API's
 * engine thread. Counted at parseCertificate, by the octets it is given, on PKITS certificates
 * (test/vectors/pkits/README.md). A file of its own: it mocks ./certificate.js.
 */
import { describe, expect, test, vi } from "vitest";

const seen = vi.hoisted(() => ({ der: [] as Buffer[] }));
vi.mock("./certificate.js", async (importOriginal) => {
  const m = await importOriginal<typeof import("./certificate.js")>();
  return {
    ...m,
    parseCertificate: (der: Uint8Array) => {
      seen.der.push(Buffer.from(der));
      return m.parseCertificate(der);
    },
  };
});

const { PKITS_AT, pkitsCert, pkitsCrl } = await import("../../test/pkits.js");
const { parseCertificate } = await import("./certificate.js");
const { validatePath } = await import("./validate.js");
const { parsedOncePerValidation, perCallCopiesCleared, withinOneValidation } = await import("./signature.js");
const { validateJpki } = await import("./jpki.js");

const TA = [pkitsCert("TrustAnchorRootCertificate.crt")];
const CA = pkitsCert("GoodCACert.crt");
const CRLS = [pkitsCrl("GoodCACRL.crl"), pkitsCrl("TrustAnchorRootCRL.crl")];
const VALID = pkitsCert("ValidCertificatePathTest1EE.crt");
const REVOKED = pkitsCert("InvalidRevokedEETest3EE.crt");

/** How often `der`'s octets were parsed during `f`. */
function parsesOf(der: Buffer, f: () => unknown): number {
  seen.der.length = 0;
  f();
  return seen.der.filter((d) => d.equals(der)).length;
}

describe("the end entity", () => {
  test("is parsed once by validateJpki, which reads it, builds the path and validates it", () => {
    const r = () => validateJpki({ certificate: VALID, purpose: "signature", trustAnchors: TA, intermediates: [CA], crls: CRLS, at: PKITS_AT });
    // PKITS is no JPKI hierarchy, so the JPKI checks refuse it; the path itself was built and validated.
    expect(r()).toMatchObject({ chain: [{ subject: expect.stringMatching(/Valid EE Certificate Test1/) }, { subject: expect.stringMatching(/Good CA/) }] });
    for (let k = 0; k < 3; k++) expect(parsesOf(VALID, r)).toBe(1);
    const revoked = () => validateJpki({ certificate: REVOKED, purpose: "signature", trustAnchors: TA, intermediates: [CA], crls: CRLS, at: PKITS_AT });
    expect(revoked()).toMatchObject({ status: "revoked", index: 0 });
    expect(parsesOf(REVOKED, revoked)).toBe(1);
  });

  test("is parsed again on the next validation, and once by validatePath alone", () => {
    for (let k = 0; k < 3; k++) expect(parsesOf(VALID, () => expect(validatePath({ trustAnchors: TA, chain: [VALID, CA], crls: CRLS, at: PKITS_AT }).status).toBe("valid"))).toBe(1);
  });
});

describe("parsedOncePerValidation", () => {
  test("gives the same parse for the same Buffer or the parse's own der within one validation, a new one outside", () => {
    const der = Buffer.from(VALID);
    withinOneValidation(() => {
      const a = parsedOncePerValidation(der, parseCertificate);
      expect(parsedOncePerValidation(der, parseCertificate)).toBe(a);
      expect(parsedOncePerValidation(a.der, parseCertificate)).toBe(a);
      // equal bytes in another Buffer: not the one it was read from, parsed on its own
      expect(parsedOncePerValidation(Buffer.from(VALID), parseCertificate)).not.toBe(a);
    });
    expect(parsedOncePerValidation(der, parseCertificate)).not.toBe(parsedOncePerValidation(der, parseCertificate));
  });

  test("keeps its copy of the octets (a resident's certificate) only while the validation runs", () => {
    withinOneValidation(() => {
      parsedOncePerValidation(Buffer.from(VALID), parseCertificate);
      parsedOncePerValidation(Buffer.from(REVOKED), parseCertificate);
      expect(perCallCopiesCleared()).toBe(false);
    });
    expect(perCallCopiesCleared()).toBe(true);
    expect(validatePath({ trustAnchors: TA, chain: [VALID, CA], crls: CRLS, at: PKITS_AT }).status).toBe("valid");
    expect(perCallCopiesCleared()).toBe(true);
  });

  test("parses again when the Buffer's bytes changed in place", () => {
    const der = Buffer.from(VALID);
    withinOneValidation(() => {
      const a = parsedOncePerValidation(der, parseCertificate);
      const other = Buffer.from(REVOKED);
      // the same Buffer now holding another certificate of the same length, or the first one's bytes altered
      if (other.length === der.length) other.copy(der);
      else der.writeUInt8(der[der.length - 1]! ^ 1, der.length - 1);
      const b = parsedOncePerValidation(der, parseCertificate);
      expect(b).not.toBe(a);
      expect(b.der.equals(der)).toBe(true);
    });
  });
});
