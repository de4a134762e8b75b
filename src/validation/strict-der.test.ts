/**
 * Certificates and CRLs that are signed by the right key but are not what X.690 DER and RFC 5280 §4.1 / §5.1 allow:
 * each must fail (or, for a CRL, leave the certificate's status unknown), never pass as valid. OpenSSL refuses
 * each of these too (`openssl verify -crl_check`).
 */
import { constants, createHash, generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, test } from "vitest";
import { bitString, bool, enumerated, explicit, extension, implicitPrimitive, integer, namedBits, nul, octetString, oid, printable, seq, set, time, tlv } from "../pki/der.js";
import { validatePath } from "./validate.js";

const SHA256_RSA = seq(oid("1.2.840.113549.1.1.11"), nul());
const SHA1_RSA = seq(oid("1.2.840.113549.1.1.5"), nul());
const AT = new Date("2026-06-01T00:00:00Z");
const caKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
const eeKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
const spki = (k: typeof caKey) => k.publicKey.export({ type: "spki", format: "der" });
const keyId = createHash("sha1").update(spki(caKey)).digest();
const dn = (cn: string) => seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable(cn))));
const CA = dn("Strict CA");
const SERIAL = integer(0x1234);

function certificate(p: { self?: boolean; serial?: Buffer; tbsAlgorithm?: Buffer; notAfter?: Buffer; trailer?: Buffer[]; spki?: Buffer } = {}): Buffer {
  const exts = p.self
    ? [extension("2.5.29.19", true, seq(bool(true))), extension("2.5.29.15", true, namedBits([5, 6])), extension("2.5.29.14", false, octetString(keyId))]
    : [extension("2.5.29.35", false, seq(implicitPrimitive(0, keyId)))];
  const tbs = seq(
    explicit(0, integer(2)),
    p.self ? integer(1) : (p.serial ?? SERIAL),
    p.tbsAlgorithm ?? SHA256_RSA,
    CA,
    seq(time(new Date("2025-01-01T00:00:00Z")), p.notAfter ?? time(new Date("2030-01-01T00:00:00Z"))),
    p.self ? CA : dn("Strict EE"),
    p.spki ?? spki(p.self ? caKey : eeKey),
    explicit(3, seq(...exts)),
  );
  return seq(tbs, SHA256_RSA, bitString(sign("sha256", tbs, caKey.privateKey)), ...(p.trailer ?? []));
}

function crl(p: { serial?: Buffer; tbsAlgorithm?: Buffer; thisUpdate?: Buffer; exts?: Buffer[] } = {}): Buffer {
  const entry = p.serial ? [seq(seq(p.serial, time(new Date("2026-01-01T00:00:00Z")), seq(extension("2.5.29.21", false, enumerated(1)))))] : [];
  const tbs = seq(
    integer(1),
    p.tbsAlgorithm ?? SHA256_RSA,
    CA,
    p.thisUpdate ?? time(new Date("2026-05-01T00:00:00Z")),
    time(new Date("2026-07-01T00:00:00Z")),
    ...entry,
    explicit(0, seq(extension("2.5.29.20", false, integer(1)), extension("2.5.29.35", false, seq(implicitPrimitive(0, keyId))), ...(p.exts ?? []))),
  );
  return seq(tbs, SHA256_RSA, bitString(sign("sha256", tbs, caKey.privateKey)));
}

const ANCHOR = certificate({ self: true });
const validate = (ee: Buffer, crls: Buffer[] = [crl()]) => validatePath({ trustAnchors: [ANCHOR], chain: [ee], crls, at: AT });

describe("strict DER and RFC 5280 structure", () => {
  test("the well-formed pair validates, and the CRL listing the serial revokes", () => {
    expect(validate(certificate()).status).toBe("valid");
    expect(validate(certificate(), [crl({ serial: SERIAL })]).status).toBe("revoked");
  });

  test("a certificate whose TBS names another signature algorithm than the outer one (§4.1.1.2) is not valid", () => {
    expect(validate(certificate({ tbsAlgorithm: SHA1_RSA }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
  });

  test("the TBS's algorithm must be the outer one octet for octet: the same algorithm without its NULL parameters is not", () => {
    expect(validate(certificate({ tbsAlgorithm: seq(oid("1.2.840.113549.1.1.11")) }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
  });

  test("a subjectPublicKey that is no BIT STRING (§4.1.2.7) makes the certificate malformed, though its key is read only when needed", () => {
    const der = Buffer.from(spki(eeKey));
    const bits = 4 + 2 + der[5]!; // SEQUENCE header (30 82 xx xx), then the AlgorithmIdentifier
    expect(der[bits]).toBe(0x03);
    der[bits] = 0x04; // the same octets as an OCTET STRING
    expect(validate(certificate({ spki: der }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
  });

  test("a CRL whose TBS names another signature algorithm (§5.1.1.2) is not used", () => {
    expect(validate(certificate(), [crl({ tbsAlgorithm: SHA1_RSA })]).status).toBe("revocation-unknown");
  });

  test("a time with no such day, hour or minute (day 00, 31 April, hour 24) is malformed, not carried into another date", () => {
    for (const t of ["300100000000Z", "300431000000Z", "300101240000Z", "300101006000Z", "290229000000Z"]) {
      expect(validate(certificate({ notAfter: tlv(0x17, Buffer.from(t)) })), t).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
    }
    expect(validate(certificate({ notAfter: tlv(0x18, Buffer.from("20300132000000Z")) })).status).toBe("untrusted");
    // 29 February of a leap year is a day
    expect(validate(certificate({ notAfter: tlv(0x17, Buffer.from("280229000000Z")) })).status).toBe("valid");
    // a CRL with such a time is not used
    expect(validate(certificate(), [crl({ thisUpdate: tlv(0x17, Buffer.from("260199000000Z")) })]).status).toBe("revocation-unknown");
  });

  test("a serial that is not an INTEGER, or an empty one, is malformed", () => {
    expect(validate(certificate({ serial: tlv(0x04, Buffer.from([0x12, 0x34])) }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
    expect(validate(certificate({ serial: tlv(0x02, Buffer.alloc(0)) }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
  });

  test("a CRL entry naming the serial with padding octets (00 12 34) still revokes the certificate 12 34, and the reverse", () => {
    expect(validate(certificate(), [crl({ serial: tlv(0x02, Buffer.from([0x00, 0x12, 0x34])) })]).status).toBe("revoked");
    expect(validate(certificate({ serial: tlv(0x02, Buffer.from([0x00, 0x00, 0x12, 0x34])) }), [crl({ serial: SERIAL })]).status).toBe("revoked");
    const negative = tlv(0x02, Buffer.from([0xff, 0x80]));
    expect(validate(certificate({ serial: tlv(0x02, Buffer.from([0x80])) }), [crl({ serial: negative })]).status).toBe("revoked");
    // a positive serial 00 80 is not the negative 80
    expect(validate(certificate({ serial: tlv(0x02, Buffer.from([0x00, 0x80])) }), [crl({ serial: tlv(0x02, Buffer.from([0x80])) })]).status).toBe("valid");
  });

  test("a certificate with a fourth field after its signature is malformed", () => {
    expect(validate(certificate({ trailer: [nul()] }))).toMatchObject({ status: "untrusted", reason: "malformed-certificate" });
  });

  test("keyCertSign among the bits a keyUsage BIT STRING declares unused is not granted", () => {
    const subKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const SUB = dn("Strict Sub CA");
    const signed = (tbs: Buffer, key: typeof caKey) => seq(tbs, SHA256_RSA, bitString(sign("sha256", tbs, key.privateKey)));
    const sub = (keyUsage: Buffer) =>
      signed(
        seq(explicit(0, integer(2)), integer(7), SHA256_RSA, CA, seq(time(new Date("2025-01-01T00:00:00Z")), time(new Date("2030-01-01T00:00:00Z"))), SUB, spki(subKey),
          explicit(3, seq(extension("2.5.29.19", true, seq(bool(true))), extension("2.5.29.15", true, keyUsage)))),
        caKey,
      );
    const ee = signed(seq(explicit(0, integer(2)), integer(8), SHA256_RSA, SUB, seq(time(new Date("2025-01-01T00:00:00Z")), time(new Date("2030-01-01T00:00:00Z"))), dn("Strict EE 2"), spki(eeKey)), subKey);
    const at = (ku: Buffer) => validatePath({ trustAnchors: [ANCHOR], chain: [ee, sub(ku)], at: AT, revocation: "off" });
    // 03 02 02 04: bits 0–5 used, bit 5 (keyCertSign) set
    expect(at(tlv(0x03, Buffer.from([0x02, 0x04]))).status).toBe("valid");
    // 03 02 03 04: bits 5–7 unused, so bit 5 set there is no keyCertSign
    expect(at(tlv(0x03, Buffer.from([0x03, 0x04])))).toMatchObject({ status: "profile-violation", reason: "key-usage-no-key-cert-sign" });
    // more than 7 unused bits is no BIT STRING
    expect(at(tlv(0x03, Buffer.from([0x08, 0x04]))).status).toBe("untrusted");
  });

  test("an RSASSA-PSS saltLength below 0 is refused, not read as node's 'digest length' (-1) or 'any length' (-2)", () => {
    const pss = (salt: Buffer) =>
      seq(oid("1.2.840.113549.1.1.10"), seq(explicit(0, seq(oid("2.16.840.1.101.3.4.2.1"), nul())), explicit(1, seq(oid("1.2.840.113549.1.1.8"), seq(oid("2.16.840.1.101.3.4.2.1"), nul()))), explicit(2, salt)));
    const withPss = (alg: Buffer) => {
      const tbs = seq(explicit(0, integer(2)), integer(9), alg, CA, seq(time(new Date("2025-01-01T00:00:00Z")), time(new Date("2030-01-01T00:00:00Z"))), dn("Strict PSS"), spki(eeKey));
      return seq(tbs, alg, bitString(sign("sha256", tbs, { key: caKey.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })));
    };
    const at = (c: Buffer) => validatePath({ trustAnchors: [ANCHOR], chain: [c], at: AT, revocation: "off" }).status;
    expect(at(withPss(pss(integer(32))))).toBe("valid");
    expect(at(withPss(pss(integer(20))))).toBe("untrusted");
    expect(at(withPss(pss(tlv(0x02, Buffer.from([0xff])))))).toBe("untrusted");
    expect(at(withPss(pss(tlv(0x02, Buffer.from([0xfe])))))).toBe("untrusted");
  });

  test("a CRL with an extension twice (a second issuingDistributionPoint narrowing its scope) is not used", () => {
    const onlyCa = extension("2.5.29.28", true, seq(implicitPrimitive(2, Buffer.from([0xff]))));
    const all = extension("2.5.29.28", true, seq());
    expect(validate(certificate(), [crl({ serial: SERIAL, exts: [all] })]).status).toBe("revoked");
    expect(validate(certificate(), [crl({ serial: SERIAL, exts: [all, onlyCa] })]).status).toBe("revocation-unknown");
    expect(validate(certificate(), [crl({ exts: [onlyCa, all] })]).status).toBe("revocation-unknown");
  });
});
