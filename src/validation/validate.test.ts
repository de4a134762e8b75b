/**
 * validatePath's result value and revocation modes, on PKITS certificates (test/vectors/pkits/README.md).
 */
import { describe, expect, test } from "vitest";
import { PKITS_AT, pkitsCert, pkitsCrl } from "../../test/pkits.js";
import { errorCodeOf } from "../../test/error-code.js";
import { buildPath, validatePath } from "./validate.js";

const cert = pkitsCert;
const crl = pkitsCrl;
const AT = PKITS_AT;
const TA = [cert("TrustAnchorRootCertificate.crt")];

describe("validatePath", () => {
  test("a valid path: status valid, the policies it is valid for, no warnings", () => {
    const r = validatePath({ trustAnchors: TA, chain: [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")], crls: [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")], at: AT });
    expect(r).toEqual({ status: "valid", policies: ["2.16.840.1.101.3.2.1.48.1"], revocationWarnings: [] });
  });

  test("revocationChecks: listed for each certificate when revocationSources is given, absent otherwise", () => {
    const p = { trustAnchors: TA, chain: [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")], crls: [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")], at: AT };
    const asked = validatePath({ ...p, revocationSources: ["crl"] });
    expect(asked.status).toBe("valid");
    expect(asked.revocationChecks).toEqual([
      { index: 1, source: "crl", status: "good" },
      { index: 0, source: "crl", status: "good" },
    ]);
    const plain = validatePath(p);
    expect(plain.status).toBe("valid");
    expect("revocationChecks" in plain).toBe(false);
  });

  test("a revoked end entity: revocation time and reason, index 0", () => {
    const r = validatePath({ trustAnchors: TA, chain: [cert("InvalidRevokedEETest3EE.crt"), cert("GoodCACert.crt")], crls: [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")], at: AT });
    expect(r).toMatchObject({ status: "revoked", reason: "revoked", index: 0, revocation: { reason: "keyCompromise", time: new Date("2010-01-01T08:30:01Z") } });
  });

  test("a revoked intermediate is named by its index", () => {
    const r = validatePath({
      trustAnchors: TA,
      chain: [cert("InvalidRevokedCATest2EE.crt"), cert("RevokedsubCACert.crt"), cert("GoodCACert.crt")],
      crls: [crl("GoodCACRL.crl"), crl("RevokedsubCACRL.crl"), crl("TrustAnchorRootCRL.crl")],
      at: AT,
    });
    expect(r).toMatchObject({ status: "revoked", index: 1 });
  });

  test("no CRL: hard-fail fails, soft-fail passes with a warning, off does not look", () => {
    const base = { trustAnchors: TA, chain: [cert("InvalidMissingCRLTest1EE.crt"), cert("NoCRLCACert.crt")], crls: [crl("TrustAnchorRootCRL.crl")], at: AT };
    expect(validatePath({ ...base, revocation: "hard-fail" })).toMatchObject({ status: "revocation-unknown", reason: "revocation-unknown", index: 0 });
    const soft = validatePath({ ...base, revocation: "soft-fail" });
    expect(soft.status).toBe("valid");
    expect(soft.status === "valid" && soft.revocationWarnings.map((w) => w.index)).toEqual([0]);
    expect(validatePath({ ...base, revocation: "off" })).toMatchObject({ status: "valid", revocationWarnings: [] });
  });

  test("time: expired and not-yet-valid, each at the certificate that fails", () => {
    const chain = [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")];
    expect(validatePath({ trustAnchors: TA, chain, at: new Date("2031-06-01Z"), revocation: "off" })).toMatchObject({ status: "expired", index: 1 });
    expect(validatePath({ trustAnchors: TA, chain, at: new Date("2009-06-01Z"), revocation: "off" })).toMatchObject({ status: "not-yet-valid", index: 1 });
  });

  test("a bad signature, a missing anchor and garbage are untrusted, not exceptions", () => {
    expect(validatePath({ trustAnchors: TA, chain: [cert("InvalidEESignatureTest3EE.crt"), cert("GoodCACert.crt")], at: AT, revocation: "off" })).toMatchObject({ status: "untrusted", reason: "signature-invalid", index: 0 });
    expect(validatePath({ trustAnchors: [], chain: [cert("GoodCACert.crt")], at: AT })).toMatchObject({ status: "untrusted", reason: "no-trust-anchor", index: 0 });
    expect(validatePath({ trustAnchors: TA, chain: [Buffer.from("not a certificate")], at: AT })).toMatchObject({ status: "untrusted", reason: "malformed-certificate", index: 0 });
    expect(validatePath({ trustAnchors: TA, chain: [], at: AT })).toMatchObject({ status: "untrusted", reason: "no-trust-anchor" });
  });

  test("a chain in the wrong order fails name chaining", () => {
    expect(validatePath({ trustAnchors: TA, chain: [cert("GoodCACert.crt"), cert("ValidCertificatePathTest1EE.crt")], at: AT, revocation: "off" })).toMatchObject({ status: "untrusted" });
  });

  test("initial policy settings (§6.1.1(c)–(f)) are honoured", () => {
    const chain = [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")];
    const p1 = "2.16.840.1.101.3.2.1.48.1";
    expect(validatePath({ trustAnchors: TA, chain, at: AT, revocation: "off", policy: { initialPolicySet: [p1], initialExplicitPolicy: true } })).toMatchObject({ status: "valid", policies: [p1] });
    expect(validatePath({ trustAnchors: TA, chain, at: AT, revocation: "off", policy: { initialPolicySet: ["2.16.840.1.101.3.2.1.48.2"], initialExplicitPolicy: true } })).toMatchObject({ status: "profile-violation", reason: "no-valid-policy" });
  });
});

describe("buildPath", () => {
  test("orders a pool from the end entity up to the anchor", () => {
    const chain = buildPath({ endEntity: cert("InvalidRevokedCATest2EE.crt"), intermediates: [cert("GoodCACert.crt"), cert("RevokedsubCACert.crt")], trustAnchors: TA });
    expect(chain?.map((c) => c.equals(cert("RevokedsubCACert.crt")))).toEqual([false, true, false]);
  });

  test("no path: undefined", () => {
    expect(buildPath({ endEntity: cert("InvalidRevokedCATest2EE.crt"), intermediates: [], trustAnchors: TA })).toBeUndefined();
  });
});

describe("damaged input", () => {
  test("truncated and bit-flipped certificates and CRLs give a result, never an exception", () => {
    const ee = cert("ValidCertificatePathTest1EE.crt");
    const ca = cert("GoodCACert.crt");
    const crls = [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")];
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let k = 0; k < 200; k++) {
      const victim = k % 3;
      const bytes = Buffer.from([ee, ca, crls[0]!][victim]!);
      const damaged = k % 2 ? bytes.subarray(0, rnd(bytes.length)) : (bytes[rnd(bytes.length)]! ^= 1 << rnd(8), bytes);
      const r = validatePath({
        trustAnchors: TA,
        chain: [victim === 0 ? damaged : ee, victim === 1 ? damaged : ca],
        crls: [victim === 2 ? damaged : crls[0]!, crls[1]!],
        at: AT,
      });
      expect(typeof r.status).toBe("string");
    }
  });
});

describe("the trust anchor at the end of the chain", () => {
  test("is dropped from the path, with the same verdict", () => {
    const chain = [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")];
    const crls = [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")];
    expect(validatePath({ trustAnchors: TA, chain: [...chain, TA[0]!], crls, at: AT })).toEqual(validatePath({ trustAnchors: TA, chain, crls, at: AT }));
  });
});

describe("certificates shared across calls", () => {
  const crls = [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")];

  test("the end entity's signature is verified on every call, however often its CA is seen", () => {
    const ee = cert("ValidCertificatePathTest1EE.crt");
    const ca = cert("GoodCACert.crt");
    for (let k = 0; k < 3; k++) expect(validatePath({ trustAnchors: TA, chain: [ee, ca], crls, at: AT }).status).toBe("valid");
    const forged = Buffer.from(ee);
    forged[forged.length - 1]! ^= 1;
    expect(validatePath({ trustAnchors: TA, chain: [forged, ca], crls, at: AT })).toMatchObject({ status: "untrusted", reason: "signature-invalid", index: 0 });
  });

  test("a CA certificate changed in place is read and verified again; equal bytes in another Buffer share the verdict", () => {
    const ee = cert("ValidCertificatePathTest1EE.crt");
    const ca = Buffer.from(cert("GoodCACert.crt"));
    expect(validatePath({ trustAnchors: TA, chain: [ee, ca], crls, at: AT }).status).toBe("valid");
    ca[ca.length - 1]! ^= 1;
    expect(validatePath({ trustAnchors: TA, chain: [ee, ca], crls, at: AT })).toMatchObject({ status: "untrusted", reason: "signature-invalid", index: 1 });
    expect(validatePath({ trustAnchors: TA, chain: [ee, Buffer.from(ca)], crls, at: AT })).toMatchObject({ status: "untrusted", reason: "signature-invalid", index: 1 });
    ca[ca.length - 1]! ^= 1;
    expect(validatePath({ trustAnchors: TA, chain: [ee, ca], crls, at: AT }).status).toBe("valid");
    expect(validatePath({ trustAnchors: TA, chain: [ee, Buffer.from(ca)], crls, at: AT }).status).toBe("valid");
  });
});

describe("parameters", () => {
  test("a bad validation time, revocation mode or initial policy set is ERR_USAGE, at once", () => {
    const base = { trustAnchors: TA, chain: [cert("ValidCertificatePathTest1EE.crt"), cert("GoodCACert.crt")] };
    expect(errorCodeOf(() => validatePath({ ...base, at: new Date("not a date") }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => validatePath({ ...base, at: AT, revocation: "maybe" as never }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => validatePath({ ...base, at: AT, policy: { initialPolicySet: [] } }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => validatePath({ ...base, at: AT, policy: { initialPolicySet: ["anyPolicy"] } }))).toBe("ERR_USAGE");
    expect(errorCodeOf(() => validatePath({ ...base, at: AT, revocation: "off" }))).toBe("accepted");
  });
});
