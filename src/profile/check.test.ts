import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { pemOrDer } from "../pki/pem.js";
import {
  bitString,
  children,
  enumerated,
  explicit,
  extension,
  generalizedTime,
  integer,
  integerFromUnsigned,
  nul,
  octetString,
  oid,
  seq,
  time,
  tlv,
  TAG,
} from "../pki/der.js";
import { checkCertificate, checkCrl, CrlEntryCheck, type CrlEntryFacts, type Violation } from "./check.js";
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoints,
  generalNamesDirName,
  keyIdentifier,
  keyUsage,
  subjectKeyIdentifier,
  type KeyUsageName,
} from "./extensions.js";
import { authenticationSubject, caSubject, caSubjectJa, crlPartitionName, encodeName, ISSUER_ALT_NAME, opaqueId, signatureSubject, type Rdn } from "./names.js";
import { ALG_OID, EXT_OID, FOUR_ITEMS_OID, POLICY_OID } from "./oids.js";
import { encodeFourItemsSan, otherName } from "./san.js";
import type { FourItems } from "./types.js";

// One RSA-2048 key for the whole file: the checker does not verify signatures, so every certificate
// (CA and end-entity) is signed with it.
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 65537 });
const SPKI = publicKey.export({ type: "spki", format: "der" });
const KEY_ID = keyIdentifier(SPKI);

const holder: FourItems = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" };
const CA_DN = encodeName(caSubject("Tokyo-to", "signature"));
const AUTH_CA_DN = encodeName(caSubject("Tokyo-to", "authentication"));
const OPAQUE = opaqueId(new Date("2024-04-01T01:02:03Z"), 42, "A12345678");

type ExtName = "keyUsage" | "basicConstraints" | "san" | "ian" | "policies" | "cdp" | "aki" | "ski" | "aia";
type Exts = Partial<Record<ExtName, Buffer | null>>;

interface CertSpec {
  version?: number;
  serialTlv?: Buffer;
  outerAlg?: string;
  innerAlg?: string;
  issuer?: Buffer;
  subject?: Buffer;
  notBefore?: Buffer;
  notAfter?: Buffer;
  spki?: Buffer;
  exts?: Exts;
  extra?: Buffer[];
  key?: KeyObject;
}

const algId = (o: string) => seq(oid(o), nul());
const randomishSerial = () => integerFromUnsigned(Buffer.from("1f2e3d4c5b6a79880112233445566778", "hex"));

function ku(names: KeyUsageName[], critical = true): Buffer {
  return extension(EXT_OID.keyUsage, critical, keyUsage(names));
}

function baseExts(kind: "ca" | "signature" | "authentication"): Record<ExtName, Buffer | null> {
  if (kind === "ca") {
    return {
      keyUsage: ku(["keyCertSign", "cRLSign"]),
      san: extension(EXT_OID.subjectAltName, false, generalNamesDirName(encodeName(caSubjectJa("東京都", "signature")))),
      basicConstraints: extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
      cdp: extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(CA_DN, [])),
      ski: extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(KEY_ID)),
      ian: null,
      policies: null,
      aki: null,
      aia: null,
    };
  }
  const sig = kind === "signature";
  return {
    keyUsage: ku(sig ? ["digitalSignature", "nonRepudiation"] : ["digitalSignature"]),
    policies: extension(EXT_OID.certificatePolicies, false, certificatePolicies(sig ? POLICY_OID.signature : POLICY_OID.authentication, "https://jpki.example.jp/cps")),
    san: sig ? extension(EXT_OID.subjectAltName, false, encodeFourItemsSan(holder)) : null,
    ian: extension(EXT_OID.issuerAltName, false, generalNamesDirName(encodeName(ISSUER_ALT_NAME))),
    cdp: extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(encodeName(crlPartitionName("Tokyo-to", "Chiyoda-ku", kind)), ["http://crl.example.jp/13/131016.crl"])),
    aki: extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(KEY_ID)),
    ski: extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(KEY_ID)),
    basicConstraints: null,
    aia: null,
  };
}

function buildCert(kind: "ca" | "signature" | "authentication", s: CertSpec = {}): Buffer {
  const exts = { ...baseExts(kind), ...s.exts };
  const subject =
    s.subject ??
    (kind === "ca" ? CA_DN : kind === "signature" ? encodeName(signatureSubject("Tokyo-to", "Chiyoda-ku", OPAQUE)) : encodeName(authenticationSubject(OPAQUE)));
  const issuer = s.issuer ?? (kind === "authentication" ? AUTH_CA_DN : CA_DN);
  const extList = [...(Object.values(exts).filter((e): e is Buffer => !!e)), ...(s.extra ?? [])];
  const version = s.version ?? 2;
  const tbs = seq(
    ...(version > 0 ? [explicit(0, integer(version))] : []),
    s.serialTlv ?? randomishSerial(),
    algId(s.innerAlg ?? s.outerAlg ?? ALG_OID.sha256WithRSAEncryption),
    issuer,
    seq(s.notBefore ?? time(new Date("2024-04-01T00:00:00Z")), s.notAfter ?? time(new Date("2034-03-31T14:59:59Z"))),
    subject,
    s.spki ?? SPKI,
    ...(extList.length ? [explicit(3, seq(...extList))] : []),
  );
  const signature = sign("sha256", tbs, s.key ?? privateKey);
  return seq(tbs, algId(s.outerAlg ?? ALG_OID.sha256WithRSAEncryption), bitString(signature));
}

const rules = (vs: readonly Violation[]) => vs.map((v) => v.rule);
const errors = (vs: readonly Violation[]) => vs.filter((v) => v.severity === "error");

function expectRule(der: Buffer, rule: string, severity: "error" | "warning" = "error", expect_?: "signature" | "authentication" | "ca"): Violation[] {
  const r = checkCertificate(der, expect_ ? { expect: expect_ } : {});
  const hit = r.violations.find((v) => v.rule === rule);
  expect(hit, `expected ${rule} in ${JSON.stringify(r.violations)}`).toBeDefined();
  expect(hit!.severity).toBe(severity);
  return [...r.violations];
}

function fakeSpki(modulus: Buffer, exponent: number): Buffer {
  return seq(algId(ALG_OID.rsaEncryption), bitString(seq(integerFromUnsigned(modulus), integer(exponent))));
}

describe("J-LIS's real roots (fixtures/jlis)", () => {
  it.each(["sign-ca-2015", "sign-ca-2023", "auth-ca-2015", "auth-ca-2023"])("%s is a CA with at most warnings", (name) => {
    const der = pemOrDer(readFileSync(new URL(`../../fixtures/jlis/${name}.pem`, import.meta.url)), ["CERTIFICATE"], "certificate");
    const r = checkCertificate(der, { expect: "ca" });
    expect(r.kind).toBe("ca");
    expect(errors(r.violations)).toEqual([]);
    // their serials are small: the one deviation from our own (stricter) rule
    expect(rules(r.violations)).toEqual(["cert.serial.entropy"]);
  });
});

describe("well-formed certificates of our profile", () => {
  it.each(["ca", "signature", "authentication"] as const)("%s: no deviations", (kind) => {
    const r = checkCertificate(buildCert(kind));
    expect(r.kind).toBe(kind);
    expect(r.violations).toEqual([]);
  });

  it("reports a kind mismatch against the expected profile", () => {
    expectRule(buildCert("signature"), "cert.kind", "error", "authentication");
    expectRule(buildCert("authentication"), "cert.kind", "error", "ca");
  });

  it("says so when a certificate has no JPKI profile", () => {
    const r = checkCertificate(buildCert("authentication", { exts: { policies: null } }));
    expect(r.kind).toBe("unknown");
    expect(rules(r.violations)).toContain("cert.kind.unknown");
  });

  it("takes a certificate carrying the four items for a signature certificate even without its policy", () => {
    const r = checkCertificate(buildCert("signature", { exts: { policies: null } }));
    expect(r.kind).toBe("signature");
    expect(rules(r.violations)).toEqual(["sig.policy.missing"]);
  });
});

describe("common rules", () => {
  it("v3 only", () => {
    expectRule(buildCert("signature", { version: 1 }), "cert.version");
  });

  it("sha256WithRSAEncryption; sha1 is only a warning (old era)", () => {
    expectRule(buildCert("signature", { outerAlg: ALG_OID.sha1WithRSAEncryption }), "cert.signatureAlgorithm.sha1", "warning");
    expectRule(buildCert("signature", { outerAlg: "1.2.840.113549.1.1.4" }), "cert.signatureAlgorithm");
    expectRule(buildCert("signature", { outerAlg: ALG_OID.sha256WithRSAEncryption, innerAlg: ALG_OID.sha1WithRSAEncryption }), "cert.signatureAlgorithm.mismatch");
  });

  it("RSA-2048 with e=65537", () => {
    const modulus = Buffer.alloc(256, 0xc5);
    expectRule(buildCert("signature", { spki: fakeSpki(modulus, 3) }), "cert.key.exponent");
    expectRule(buildCert("signature", { spki: fakeSpki(Buffer.alloc(128, 0xc5), 65537) }), "cert.key.size", "warning");
    expectRule(buildCert("signature", { spki: fakeSpki(Buffer.alloc(384, 0xc5), 65537) }), "cert.key.size");
    expectRule(buildCert("signature", { spki: seq(seq(oid("1.2.840.10045.2.1"), oid("1.2.840.10045.3.1.7")), bitString(Buffer.alloc(65, 4))) }), "cert.key.algorithm");
  });

  it("serial: positive, at most 20 octets, at least 64 bits", () => {
    expectRule(buildCert("signature", { serialTlv: tlv(TAG.INTEGER, Buffer.from([0xff, 0x01])) }), "cert.serial.positive");
    expectRule(buildCert("signature", { serialTlv: tlv(TAG.INTEGER, Buffer.from([0])) }), "cert.serial.positive");
    expectRule(buildCert("signature", { serialTlv: tlv(TAG.INTEGER, Buffer.alloc(21, 0x11)) }), "cert.serial.length");
    expectRule(buildCert("signature", { serialTlv: integer(123456) }), "cert.serial.entropy");
    expectRule(buildCert("ca", { serialTlv: integer(1) }), "cert.serial.entropy", "warning");
  });

  it("UTCTime before 2050, GeneralizedTime from 2050, notBefore < notAfter", () => {
    expectRule(buildCert("signature", { notAfter: generalizedTime(new Date("2029-01-01T00:00:00Z")) }), "cert.validity.encoding");
    expect(rules(checkCertificate(buildCert("ca", { notAfter: time(new Date("2051-01-01T14:59:59Z")) })).violations)).toEqual([]);
    expectRule(buildCert("signature", { notBefore: time(new Date("2035-01-01T00:00:00Z")) }), "cert.validity.order");
  });

  it("extensions: no duplicates, no unknown critical ones", () => {
    expectRule(buildCert("signature", { extra: [extension(EXT_OID.subjectKeyIdentifier, false, subjectKeyIdentifier(KEY_ID))] }), "cert.extensions.duplicate");
    expectRule(buildCert("signature", { extra: [extension("1.2.3.4.5", true, nul())] }), "cert.extensions.unknownCritical");
  });

  it("extensions, when present, hold one at least (SIZE (1..MAX), §4.1.2.9): an empty [3] SEQUENCE is an error; a CRL's crlExtensions likewise (§5.1)", () => {
    const [tbs, alg, sig] = children(buildCert("signature"));
    const emptied = seq(seq(...children(tbs!).filter((f) => f[0] !== 0xa3), explicit(3, seq())), alg!, sig!);
    expectRule(emptied, "cert.extensions.empty");
    expect(rules(checkCertificate(buildCert("signature")).violations)).not.toContain("cert.extensions.empty");
    const [ctbs, calg, csig] = children(buildCrl());
    const emptiedCrl = seq(seq(...children(ctbs!).filter((f) => f[0] !== 0xa0), explicit(0, seq())), calg!, csig!);
    expectCrlRule(emptiedCrl, "crl.extensions.empty");
    // absent is no finding of this rule
    expect(rules(checkCrl(buildCrl({ exts: [] })).violations)).not.toContain("crl.extensions.empty");
  });
});

describe("signature certificate (署名用電子証明書)", () => {
  it("keyUsage critical {digitalSignature, nonRepudiation}", () => {
    expectRule(buildCert("signature", { exts: { keyUsage: ku(["digitalSignature", "nonRepudiation"], false) } }), "sig.keyUsage.critical");
    expectRule(buildCert("signature", { exts: { keyUsage: ku(["digitalSignature"]) } }), "sig.keyUsage.bits");
    expectRule(buildCert("signature", { exts: { keyUsage: ku(["digitalSignature", "nonRepudiation", "keyEncipherment"]) } }), "sig.keyUsage.bits");
    expectRule(buildCert("signature", { exts: { keyUsage: null } }), "sig.keyUsage.missing");
    expectRule(buildCert("signature", { exts: { keyUsage: extension(EXT_OID.keyUsage, true, octetString(Buffer.from("x"))) } }), "sig.keyUsage.malformed");
  });

  it("policy: production OID; the test OID is a warning", () => {
    const testPolicy = extension(EXT_OID.certificatePolicies, false, certificatePolicies(POLICY_OID.signatureTest, "https://x/cps"));
    const r = checkCertificate(buildCert("signature", { exts: { policies: testPolicy } }));
    expect(r.kind).toBe("signature");
    expect(r.violations).toEqual([expect.objectContaining({ rule: "sig.policy.test", severity: "warning" })]);
    const other = extension(EXT_OID.certificatePolicies, false, certificatePolicies("1.2.3.4", "https://x/cps"));
    expectRule(buildCert("signature", { exts: { policies: other } }), "sig.policy.missing", "error", "signature");
    expectRule(buildCert("signature", { exts: { policies: extension(EXT_OID.certificatePolicies, false, certificatePolicies(POLICY_OID.signature)) } }), "sig.policy.cps", "warning");
  });

  it("the four items must be present and well formed", () => {
    expectRule(buildCert("signature", { exts: { san: null } }), "sig.fourItems.missing");
    const e = (f: keyof typeof FOUR_ITEMS_OID, v: string) => otherName(FOUR_ITEMS_OID[f], v);
    const good = { name: "山田　太郎", nameSubstituteFlags: "00000", gender: "1", birthDate: "319801231", address: "東京都", addressSubstituteFlags: "000" };
    const san = (over: Partial<typeof good>, drop?: keyof typeof good) => {
      const v = { ...good, ...over };
      const order = ["name", "birthDate", "gender", "address", "nameSubstituteFlags", "addressSubstituteFlags"] as const;
      return extension(EXT_OID.subjectAltName, false, seq(...order.filter((f) => f !== drop).map((f) => e(f, v[f]))));
    };
    expect(checkCertificate(buildCert("signature", { exts: { san: san({}) } })).violations).toEqual([]);
    const cases: Array<[Partial<typeof good>, string, (keyof typeof good)?]> = [
      [{ name: "山田太郎", nameSubstituteFlags: "0000" }, "sig.fourItems.name"],
      [{ name: "髙田　太郎" }, "sig.fourItems.name"],
      [{ nameSubstituteFlags: "0000" }, "sig.fourItems.nameSubstituteFlags"],
      [{ nameSubstituteFlags: "00x00" }, "sig.fourItems.nameSubstituteFlags"],
      [{ addressSubstituteFlags: "0000" }, "sig.fourItems.addressSubstituteFlags"],
      [{ gender: "4" }, "sig.fourItems.gender"],
      [{ birthDate: "419801231" }, "sig.fourItems.birthDate"],
      [{ birthDate: "320230230" }, "sig.fourItems.birthDate"],
      [{ address: "東".repeat(201), addressSubstituteFlags: "0".repeat(201) }, "sig.fourItems.address"],
      [{}, "sig.fourItems.gender", "gender"],
      [{}, "sig.fourItems.addressSubstituteFlags", "addressSubstituteFlags"],
    ];
    for (const [over, rule, drop] of cases) {
      const vs = expectRule(buildCert("signature", { exts: { san: san(over, drop) } }), rule);
      // never quote a four-items value in a message
      for (const v of vs) for (const value of ["山田", "太郎", "髙田", "東京都", "419801231", "320230230"]) expect(v.message).not.toContain(value);
    }
  });

  it("issuerAltName C=JP, O=公的個人認証サービス", () => {
    expectRule(buildCert("signature", { exts: { ian: null } }), "sig.issuerAltName.missing");
    const wrong = extension(EXT_OID.issuerAltName, false, generalNamesDirName(encodeName([["countryName", "JP"], ["organizationName", "JPKI"]])));
    expectRule(buildCert("signature", { exts: { ian: wrong } }), "sig.issuerAltName.dirName");
  });

  it("cRLDistributionPoints: the municipality partition's directoryName", () => {
    expectRule(buildCert("signature", { exts: { cdp: null } }), "sig.crlDistributionPoints.missing");
    const uriOnly = extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(undefined, ["http://crl.example.jp/x.crl"]));
    expectRule(buildCert("signature", { exts: { cdp: uriOnly } }), "sig.crlDistributionPoints.dirName");
    const authShape = extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(encodeName(crlPartitionName("Tokyo-to", "Chiyoda-ku", "authentication")), []));
    expectRule(buildCert("signature", { exts: { cdp: authShape } }), "sig.crlDistributionPoints.dirName");
  });

  it("AKI and SKI", () => {
    expectRule(buildCert("signature", { exts: { aki: null } }), "sig.authorityKeyIdentifier.missing");
    expectRule(buildCert("signature", { exts: { ski: null } }), "sig.subjectKeyIdentifier.missing");
  });

  it("subject C=JP, L, L, CN=<opaque id>, and the CN is not the name", () => {
    expectRule(buildCert("signature", { subject: encodeName(authenticationSubject(OPAQUE)) }), "sig.subject.shape");
    const named = encodeName(signatureSubject("Tokyo-to", "Chiyoda-ku", "山田太郎"));
    const vs = expectRule(buildCert("signature", { subject: named }), "sig.subject.cnIsName");
    expect(vs.find((v) => v.rule === "sig.subject.cnIsName")!.message).not.toContain("山田");
    expectRule(buildCert("signature", { subject: encodeName(signatureSubject("Tokyo-to", "Chiyoda-ku", "X")) }), "sig.subject.cnShape", "warning");
    const printable: Rdn[] = [["countryName", "JP"], ["localityName", "Tokyo-to"], ["localityName", "Chiyoda-ku"], ["commonName", OPAQUE]];
    const asPrintable = seq(...printable.map(([t, v]) => tlv(TAG.SET, seq(oid({ countryName: "2.5.4.6", localityName: "2.5.4.7", commonName: "2.5.4.3" }[t as "countryName"]), tlv(TAG.PRINTABLE_STRING, Buffer.from(v))))));
    expectRule(buildCert("signature", { subject: asPrintable }), "sig.subject.encoding", "warning");
  });

  it("a malformed subjectAltName is a violation, not a crash", () => {
    expectRule(buildCert("signature", { exts: { san: extension(EXT_OID.subjectAltName, false, Buffer.from([0x30, 0x03, 0xa0, 0x01])) } }), "sig.subjectAltName.malformed");
  });
});

describe("user-authentication certificate (利用者証明用電子証明書)", () => {
  it("subject C=JP, CN only", () => {
    expectRule(buildCert("authentication", { subject: encodeName(signatureSubject("Tokyo-to", "Chiyoda-ku", OPAQUE)) }), "auth.subject.shape");
  });

  it("keyUsage critical {digitalSignature}", () => {
    expectRule(buildCert("authentication", { exts: { keyUsage: ku(["digitalSignature", "nonRepudiation"]) } }), "auth.keyUsage.bits");
    expectRule(buildCert("authentication", { exts: { keyUsage: ku(["digitalSignature"], false) } }), "auth.keyUsage.critical");
  });

  it("policy …8.5.1.3.30", () => {
    const other = extension(EXT_OID.certificatePolicies, false, certificatePolicies("1.2.3.4", "https://x/cps"));
    expectRule(buildCert("authentication", { exts: { policies: other } }), "auth.policy.missing", "error", "authentication");
  });

  it("never the four items", () => {
    expectRule(buildCert("authentication", { exts: { san: extension(EXT_OID.subjectAltName, false, encodeFourItemsSan(holder)) } }), "auth.fourItems.present");
  });

  it("issuerAltName, AKI", () => {
    expectRule(buildCert("authentication", { exts: { ian: null } }), "auth.issuerAltName.missing");
    expectRule(buildCert("authentication", { exts: { aki: null } }), "auth.authorityKeyIdentifier.missing");
  });
});

describe("CA certificate", () => {
  it("keyUsage critical exactly {keyCertSign, cRLSign}", () => {
    expectRule(buildCert("ca", { exts: { keyUsage: ku(["keyCertSign", "cRLSign"], false) } }), "ca.keyUsage.critical");
    expectRule(buildCert("ca", { exts: { keyUsage: ku(["keyCertSign", "cRLSign", "digitalSignature"]) } }), "ca.keyUsage.bits");
  });

  it("basicConstraints critical CA:TRUE", () => {
    expectRule(buildCert("ca", { exts: { basicConstraints: extension(EXT_OID.basicConstraints, false, basicConstraints(true)) } }), "ca.basicConstraints.critical");
    expectRule(buildCert("ca", { exts: { basicConstraints: null } }), "ca.basicConstraints.missing", "error", "ca");
    expectRule(buildCert("ca", { exts: { basicConstraints: extension(EXT_OID.basicConstraints, true, basicConstraints(false)) } }), "ca.basicConstraints.ca", "error", "ca");
  });

  it("SAN dirName, CDP and SKI present; AIA is a warning", () => {
    expectRule(buildCert("ca", { exts: { san: null } }), "ca.subjectAltName.dirName");
    expectRule(buildCert("ca", { exts: { cdp: null } }), "ca.crlDistributionPoints.missing");
    expectRule(buildCert("ca", { exts: { ski: null } }), "ca.subjectKeyIdentifier.missing");
    const aia = extension(EXT_OID.authorityInfoAccess, false, authorityInfoAccess({ caIssuers: "http://x/ca.cer" }));
    expectRule(buildCert("ca", { exts: { aia } }), "ca.authorityInfoAccess.present", "warning");
    const otherCdp = extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(AUTH_CA_DN, []));
    expectRule(buildCert("ca", { exts: { cdp: otherCdp } }), "ca.crlDistributionPoints.dirName", "warning");
  });

  it("DN shape C=JP, O=JPKI, OU=JPKI for …, OU=…", () => {
    const bad = encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "Something else"], ["organizationalUnitName", "Tokyo-to"]]);
    expectRule(buildCert("ca", { subject: bad, issuer: bad, exts: { cdp: extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(bad, [])) } }), "ca.subject.shape");
  });

  it("self-signed, and notAfter at 23:59:59 JST (warnings)", () => {
    expectRule(buildCert("ca", { issuer: AUTH_CA_DN }), "ca.selfSigned", "warning");
    expectRule(buildCert("ca", { notAfter: time(new Date("2034-03-31T00:00:00Z")) }), "ca.validity.endOfDay", "warning");
  });
});

describe("malformed input", () => {
  const good = buildCert("signature");
  it.each([
    ["garbage", Buffer.from("not a certificate")],
    ["empty", Buffer.alloc(0)],
    ["truncated", good.subarray(0, good.length - 10)],
    ["trailing byte", Buffer.concat([good, Buffer.from([0])])],
    ["a SEQUENCE of nothing useful", seq(integer(1))],
    ["a CRL", Buffer.alloc(0)],
  ])("%s → ERR_DER_MALFORMED", (_what, bytes) => {
    const input = _what === "a CRL" ? buildCrl() : bytes;
    try {
      checkCertificate(input);
      throw new Error("expected a throw");
    } catch (e) {
      expect(isJpkiError(e, "ERR_DER_MALFORMED"), String(e)).toBe(true);
    }
  });

  it("a CRL checker refuses a certificate", () => {
    expect(() => checkCrl(good)).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});

// ---------------------------------------------------------------------------------------------------
// CRLs

interface CrlSpec {
  version?: number | null;
  alg?: string;
  thisUpdate?: Buffer;
  nextUpdate?: Buffer | null;
  entries?: Buffer[];
  exts?: Buffer[] | null;
}

function entry(serialTlv: Buffer, reason?: number, critical = false): Buffer {
  const rd = time(new Date("2024-05-01T00:00:00Z"));
  return reason === undefined ? seq(serialTlv, rd) : seq(serialTlv, rd, seq(extension(EXT_OID.cRLReason, critical, enumerated(reason))));
}

const crlNumber = (n: number, critical = false) => extension(EXT_OID.cRLNumber, critical, integer(n));
const crlAki = () => extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(KEY_ID));

function buildCrl(s: CrlSpec = {}): Buffer {
  const alg = s.alg ?? ALG_OID.sha256WithRSAEncryption;
  const entries = s.entries ?? [entry(integer(0x1234567890), 1), entry(integer(0x2234567890), 3), entry(integer(0x3234567890))];
  const exts = s.exts === undefined ? [crlNumber(7), crlAki()] : s.exts;
  const tbs = seq(
    ...(s.version === null ? [] : [integer(s.version ?? 1)]),
    algId(alg),
    CA_DN,
    s.thisUpdate ?? time(new Date("2024-05-02T00:00:00Z")),
    ...(s.nextUpdate === null ? [] : [s.nextUpdate ?? time(new Date("2024-05-04T00:00:00Z"))]),
    ...(entries.length ? [seq(...entries)] : []),
    ...(exts && exts.length ? [explicit(0, seq(...exts))] : []),
  );
  return seq(tbs, algId(alg), bitString(sign("sha256", tbs, privateKey)));
}

function expectCrlRule(der: Buffer, rule: string, severity: "error" | "warning" = "error"): void {
  const r = checkCrl(der);
  const hit = r.violations.find((v) => v.rule === rule);
  expect(hit, `expected ${rule} in ${JSON.stringify(r.violations)}`).toBeDefined();
  expect(hit!.severity).toBe(severity);
}

describe("checkCrl", () => {
  it("accepts our CRL profile", () => {
    expect(checkCrl(buildCrl())).toEqual({ kind: "crl", violations: [] });
    expect(checkCrl(buildCrl({ entries: [] })).violations).toEqual([]);
  });

  it("v2 and sha256WithRSAEncryption", () => {
    expectCrlRule(buildCrl({ version: null }), "crl.version");
    expectCrlRule(buildCrl({ alg: ALG_OID.sha1WithRSAEncryption }), "crl.signatureAlgorithm.sha1", "warning");
  });

  it("cRLNumber present and non-critical; AKI present", () => {
    expectCrlRule(buildCrl({ exts: [crlAki()] }), "crl.cRLNumber.missing");
    expectCrlRule(buildCrl({ exts: [crlNumber(7, true), crlAki()] }), "crl.cRLNumber.critical");
    expectCrlRule(buildCrl({ exts: [crlNumber(7)] }), "crl.authorityKeyIdentifier.missing");
  });

  it("nextUpdate present and after thisUpdate", () => {
    expectCrlRule(buildCrl({ nextUpdate: null }), "crl.nextUpdate.missing");
    expectCrlRule(buildCrl({ nextUpdate: time(new Date("2024-05-01T00:00:00Z")) }), "crl.nextUpdate.order");
    expectCrlRule(buildCrl({ thisUpdate: generalizedTime(new Date("2024-05-02T00:00:00Z")) }), "crl.time.encoding");
  });

  it("entries: valid reason codes, non-critical, positive unique serials", () => {
    expectCrlRule(buildCrl({ entries: [entry(integer(5), 7)] }), "crl.entry.reason");
    expectCrlRule(buildCrl({ entries: [entry(integer(5), 11)] }), "crl.entry.reason");
    expectCrlRule(buildCrl({ entries: [entry(integer(5), 1, true)] }), "crl.entry.reason.critical");
    expectCrlRule(buildCrl({ entries: [entry(tlv(TAG.INTEGER, Buffer.from([0x80, 1])), 1)] }), "crl.entry.serial");
    expectCrlRule(buildCrl({ entries: [entry(integer(5), 1), entry(integer(5), 4)] }), "crl.entry.duplicate");
  });

  it("the duplicate-serial check keeps bounded memory: past maxKept serials out of order it says so instead of failing", () => {
    const facts = (n: number): CrlEntryFacts => ({ serial: Buffer.from([0x01, n >> 16, (n >> 8) & 0xff, n & 0xff]), revocationYear: 2026, revocationEncoding: "UTCTime", extensions: [] });
    const run = (serials: number[], maxKept: number) => {
      const c = new CrlEntryCheck({ maxKept });
      for (const n of serials) c.add(facts(n));
      return c.violations().map((v) => v.rule);
    };
    const up = Array.from({ length: 100 }, (_, k) => k + 1);
    // ascending: any number of serials, a repeat found without keeping them all
    expect(run(up, 10)).toEqual([]);
    expect(run([...up, 100, 101], 10)).toEqual(["crl.entry.duplicate"]);
    // out of order within the bound: checked as before
    expect(run([5, 3, 4, 3], 10)).toEqual(["crl.entry.duplicate"]);
    expect(run([...up].reverse(), 1000)).toEqual([]);
    // out of order past the bound (the Set that once held them all overflowed at 2^24 keys): a warning, no throw
    expect(run([...up].reverse(), 10)).toEqual(["crl.entry.duplicate.unchecked"]);
    expect(run([...up, 50], 10)).toEqual(["crl.entry.duplicate.unchecked"]);
  });

  it("tallies per-entry findings into one violation per rule", () => {
    const r = checkCrl(buildCrl({ entries: [1, 2, 3, 4].map((n) => entry(integer(n + 100), 7)) }));
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]!.message).toMatch(/^4 entries/);
  });

  it("recognises a delta CRL and wants its indicator critical", () => {
    const delta = (critical: boolean) => extension(EXT_OID.deltaCRLIndicator, critical, integer(6));
    expect(checkCrl(buildCrl({ exts: [crlNumber(8), crlAki(), delta(true)] }))).toEqual({ kind: "delta-crl", violations: [] });
    expectCrlRule(buildCrl({ exts: [crlNumber(8), crlAki(), delta(false)] }), "crl.deltaCRLIndicator.critical");
  });

  it("throws ERR_DER_MALFORMED for garbage", () => {
    expect(() => checkCrl(Buffer.from([0x30, 0x02, 0x05, 0x00]))).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});
