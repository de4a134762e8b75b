/**
 * The JPKI layer's recognition of authorities: J-LIS's real roots (fixtures/jlis/README.md) as trust anchors, and
 * the names of our prefecture CAs.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { errorCodeOf } from "../../test/error-code.js";
import { pemOrDer } from "../pki/pem.js";
import { encodeName, caSubject } from "../profile/names.js";
import { tlvAt } from "./asn1.js";
import { describeJpkiAnchor, jpkiAuthorityOf, validateJpki } from "./jpki.js";
import { parseName } from "./name.js";

const jlis = (f: string) => pemOrDer(readFileSync(join(import.meta.dirname, "../../fixtures/jlis", f)), ["CERTIFICATE"], "certificate");

describe("describeJpkiAnchor", () => {
  test.each([
    ["sign-ca-2015.pem", "signature", 2015],
    ["sign-ca-2023.pem", "signature", 2023],
    ["auth-ca-2015.pem", "authentication", 2015],
    ["auth-ca-2023.pem", "authentication", 2023],
  ] as const)("J-LIS's %s is the J-LIS %s root of generation %i", (file, purpose, generation) => {
    const a = describeJpkiAnchor(jlis(file));
    expect(a).toMatchObject({ operator: "jlis", purpose, generation, selfSigned: true });
    expect(a?.prefecture).toBeUndefined();
    expect(a?.subject).toMatch(/^C=JP, O=JPKI, OU=JPKI for (digital signature|user authentication), OU=Japan Agency for Local Authority Information Systems$/);
  });

  test("not a certificate: ERR_DER_MALFORMED", () => {
    expect(errorCodeOf(() => describeJpkiAnchor(Buffer.from("30030201", "hex")))).toBe("ERR_DER_MALFORMED");
  });

  test("validateJpki with J-LIS's roots as anchors: a J-LIS root offered as the certificate is no end entity of either purpose", () => {
    const r = validateJpki({ certificate: jlis("sign-ca-2023.pem"), purpose: "signature", trustAnchors: [jlis("sign-ca-2023.pem")], at: new Date("2026-01-01T00:00:00Z"), revocation: "off" });
    expect(r).toMatchObject({ status: "profile-violation", reason: "not-jpki-certificate", issuer: { operator: "jlis", purpose: "signature" } });
  });
});

describe("jpkiAuthorityOf", () => {
  const name = (rdns: Parameters<typeof encodeName>[0]) => parseName(tlvAt(encodeName(rdns)));
  test("our prefecture CAs by romaji, both purposes", () => {
    expect(jpkiAuthorityOf(name(caSubject("Tokyo-to", "signature")))).toMatchObject({ operator: "prefecture", purpose: "signature", prefecture: { code: "13", kanji: "東京都" } });
    expect(jpkiAuthorityOf(name(caSubject("Hokkaido", "authentication")))).toMatchObject({ operator: "prefecture", purpose: "authentication", prefecture: { code: "01" } });
  });
  test("foreign names, an unknown prefecture and an OCSP signer's name are no JPKI CA", () => {
    expect(jpkiAuthorityOf(name(caSubject("Atlantis-ken", "signature")))).toBeUndefined();
    expect(jpkiAuthorityOf(name([["countryName", "JP"], ["organizationName", "Example"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]))).toBeUndefined();
    expect(jpkiAuthorityOf(name([...caSubject("Tokyo-to", "signature"), ["commonName", "OCSP Responder"]]))).toBeUndefined();
  });
});
