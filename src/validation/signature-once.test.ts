/**
 * The end entity's signature is verified once per validation (signature.ts withinOneValidation): path building
 * (build.ts) and path processing (path.ts §6.1.3) both ask about it under the same issuer key, and each used to
 * verify it — two RSA verifications where one answers. Counted at node:crypto's verify, by the octets it is
 * given, on PKITS certificates (test/vectors/pkits/README.md). A file of its own: it mocks node:crypto.
 */
import { describe, expect, test, vi } from "vitest";

const seen = vi.hoisted(() => ({ tbs: [] as Buffer[] }));
vi.mock("node:crypto", async (importOriginal) => {
  const m = await importOriginal<typeof import("node:crypto")>();
  return {
    ...m,
    verify: (...args: Parameters<typeof m.verify>) => {
      if (typeof args[4] !== "function") seen.tbs.push(Buffer.from(args[1] as Uint8Array));
      return (m.verify as (...a: unknown[]) => unknown)(...args);
    },
  };
});

const { PKITS_AT, pkitsCert, pkitsCrl } = await import("../../test/pkits.js");
const { parseCertificate } = await import("./certificate.js");
const { validatePath } = await import("./validate.js");
const { withSignatureVerdicts } = await import("./signature.js");
const { validateJpki } = await import("./jpki.js");
const { preverifyEndEntity } = await import("./validate.js");

const TA = [pkitsCert("TrustAnchorRootCertificate.crt")];
const CA = pkitsCert("GoodCACert.crt");
const CRLS = [pkitsCrl("GoodCACRL.crl"), pkitsCrl("TrustAnchorRootCRL.crl")];
const VALID = pkitsCert("ValidCertificatePathTest1EE.crt");
const BAD = pkitsCert("InvalidEESignatureTest3EE.crt");

/** How often node verified `ee`'s signed octets during `f`. */
function verificationsOf(ee: Buffer, f: () => unknown): number {
  const tbs = parseCertificate(ee).tbs;
  seen.tbs.length = 0;
  f();
  return seen.tbs.filter((t) => t.equals(tbs)).length;
}

describe("the end entity's signature", () => {
  test("is verified once by validateJpki, which builds the path and then validates it", () => {
    const r = () => validateJpki({ certificate: VALID, purpose: "signature", trustAnchors: TA, intermediates: [CA], crls: CRLS, at: PKITS_AT });
    // PKITS is no JPKI hierarchy, so the JPKI checks refuse it; the path itself was built and validated.
    expect(r()).toMatchObject({ chain: [{ subject: expect.stringMatching(/Valid EE Certificate Test1/) }, { subject: expect.stringMatching(/Good CA/) }] });
    for (let k = 0; k < 3; k++) expect(verificationsOf(VALID, r)).toBe(1);
    const broken = () => validateJpki({ certificate: BAD, purpose: "signature", trustAnchors: TA, intermediates: [CA], crls: CRLS, at: PKITS_AT });
    expect(broken()).toMatchObject({ status: "untrusted" });
    expect(verificationsOf(BAD, broken)).toBe(1);
  });

  test("is verified once per validation, and again on the next call", () => {
    for (let k = 0; k < 3; k++) {
      expect(verificationsOf(VALID, () => expect(validatePath({ trustAnchors: TA, chain: [VALID, CA], crls: CRLS, at: PKITS_AT }).status).toBe("valid"))).toBe(1);
    }
  });

  test("a broken one is found broken with one verification", () => {
    expect(verificationsOf(BAD, () => expect(validatePath({ trustAnchors: TA, chain: [BAD, CA], crls: CRLS, at: PKITS_AT })).toMatchObject({ status: "untrusted", index: 0 }))).toBe(1);
  });

  test("a caller's verdict is taken instead, without verifying here", async () => {
    const verdicts = await preverifyEndEntity(VALID, [CA]);
    expect(verdicts.map((v) => v.ok)).toEqual([true]);
    expect(verificationsOf(VALID, () => withSignatureVerdicts(verdicts, () => validatePath({ trustAnchors: TA, chain: [VALID, CA], crls: CRLS, at: PKITS_AT })))).toBe(0);
    expect(withSignatureVerdicts([{ ...verdicts[0]!, ok: false }], () => validatePath({ trustAnchors: TA, chain: [VALID, CA], crls: CRLS, at: PKITS_AT }))).toMatchObject({ status: "untrusted", index: 0 });
  });
});
