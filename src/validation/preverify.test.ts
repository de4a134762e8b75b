/**
 * Signatures verified off the event loop (preverifyEndEntity, signature.ts SignatureVerdict): the verdict is the
 * real check's, and the engine takes it for exactly the signature it records — on PKITS certificates
 * (test/vectors/pkits/README.md): GoodCACert issued ValidCertificatePathTest1EE; InvalidEESignatureTest3EE's
 * signature is broken.
 */
import { describe, expect, test } from "vitest";
import { PKITS_AT, pkitsCert, pkitsCrl } from "../../test/pkits.js";
import { parseCertificate } from "./certificate.js";
import { withSignatureVerdicts } from "./signature.js";
import { preverifyEndEntity, validatePath } from "./validate.js";

const cert = pkitsCert;
const crl = pkitsCrl;
const AT = PKITS_AT;
const TA = cert("TrustAnchorRootCertificate.crt");
const GOOD_CA = cert("GoodCACert.crt");
const VALID = cert("ValidCertificatePathTest1EE.crt");
const BAD_SIGNATURE = cert("InvalidEESignatureTest3EE.crt");
const CRLS = [crl("GoodCACRL.crl"), crl("TrustAnchorRootCRL.crl")];

describe("preverifyEndEntity", () => {
  test("verifies under the CA whose subject is the end entity's issuer, on the thread pool; other anchors are not tried", async () => {
    const v = await preverifyEndEntity(VALID, [TA, GOOD_CA]);
    expect(v).toHaveLength(1);
    expect(v[0]!.ok).toBe(true);
    expect(v[0]!.spki.equals(parseCertificate(GOOD_CA).publicKey.der)).toBe(true);
    expect(v[0]!.tbs.equals(parseCertificate(VALID).tbs)).toBe(true);
  });

  test("a broken signature is a false verdict; no candidate issuer or bytes that are no certificate give none", async () => {
    expect((await preverifyEndEntity(BAD_SIGNATURE, [GOOD_CA])).map((v) => v.ok)).toEqual([false]);
    expect(await preverifyEndEntity(VALID, [TA])).toEqual([]);
    expect(await preverifyEndEntity(Buffer.from("3003020101", "hex"), [GOOD_CA])).toEqual([]);
  });
});

describe("the engine takes a verdict for exactly the signature it records", () => {
  const validate = (ee: Buffer) => validatePath({ trustAnchors: [TA], chain: [ee, GOOD_CA], crls: CRLS, at: AT });

  test("a false verdict for a good signature fails the path (the verdict is used, not re-checked)", async () => {
    const [v] = await preverifyEndEntity(VALID, [GOOD_CA]);
    expect(validate(VALID).status).toBe("valid");
    expect(withSignatureVerdicts([{ ...v!, ok: false }], () => validate(VALID))).toMatchObject({ status: "untrusted", index: 0 });
  });

  test("a true verdict for other bytes, another key or another algorithm does not cover a broken signature", async () => {
    const [good] = await preverifyEndEntity(VALID, [GOOD_CA]);
    const bad = parseCertificate(BAD_SIGNATURE);
    const expected = validate(BAD_SIGNATURE);
    expect(expected.status).not.toBe("valid");
    const forged = [
      good!, // the valid certificate's own verdict
      { ...good!, signature: bad.signature }, // its tbs with the broken certificate's signature
      { ...good!, tbs: bad.tbs }, // the broken certificate's tbs, the valid signature
      { tbs: bad.tbs, algorithm: bad.signatureAlgorithm.der, signature: bad.signature, spki: parseCertificate(TA).publicKey.der, ok: true }, // another key
      { tbs: bad.tbs, algorithm: Buffer.from("300d06092a864886f70d01010d0500", "hex"), signature: bad.signature, spki: good!.spki, ok: true }, // sha512WithRSA
    ];
    for (const f of forged) expect(withSignatureVerdicts([f], () => validate(BAD_SIGNATURE))).toEqual(expected);
    // the exact record, true: taken (what a caller who verified it would pass)
    expect(withSignatureVerdicts([{ tbs: bad.tbs, algorithm: bad.signatureAlgorithm.der, signature: bad.signature, spki: good!.spki, ok: true }], () => validate(BAD_SIGNATURE)).status).toBe("valid");
  });
});
