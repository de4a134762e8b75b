import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { bool, explicit, integer, nul, octetString, oid, seq, tlv } from "../pki/der.js";
import { MAX_REQUESTS, NONCE_MAX, OCSP_OID, parseOcspRequest } from "./request.js";

const SHA1 = seq(oid("1.3.14.3.2.26"), nul());
const SHA256 = seq(oid("2.16.840.1.101.3.4.2.1"));
const nameHash = createHash("sha1").update("name").digest();
const keyHash = createHash("sha1").update("key").digest();

function certId(serial: Buffer = Buffer.from([0x01, 0x23]), alg: Buffer = SHA1): Buffer {
  return seq(alg, octetString(nameHash), octetString(keyHash), tlv(0x02, serial));
}
function ext(id: string, value: Buffer, critical = false): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octetString(value));
}
function request(o: { ids?: Buffer[]; exts?: Buffer[]; single?: Buffer[] } = {}): Buffer {
  const reqs = (o.ids ?? [certId()]).map((c, i) => seq(c, ...(o.single?.[i] ? [explicit(0, seq(o.single[i]!))] : [])));
  return seq(seq(seq(...reqs), ...(o.exts ? [explicit(2, seq(...o.exts))] : [])));
}
const nonce = (n: number) => ext(OCSP_OID.nonce, octetString(Buffer.alloc(n, 7)));

function malformed(der: Uint8Array): string {
  try {
    parseOcspRequest(der);
  } catch (e) {
    expect(isJpkiError(e, "ERR_OCSP_MALFORMED"), String(e)).toBe(true);
    return (e as { details: { why: string } }).details.why;
  }
  throw new Error("parsed a malformed request");
}

describe("parseOcspRequest (RFC 6960 §4.1.1)", () => {
  it("reads a CertID (SHA-1 or SHA-256), the serial in the store's form, and the nonce to echo", () => {
    const r = parseOcspRequest(request({ exts: [nonce(16)] }));
    expect(r.certIds).toHaveLength(1);
    expect(r.certIds[0]).toMatchObject({ hash: "sha1", serial: "0123", issuerNameHash: nameHash, issuerKeyHash: keyHash });
    expect(r.certIds[0]!.der.equals(certId())).toBe(true);
    expect(r.nonce!.equals(octetString(Buffer.alloc(16, 7)))).toBe(true);
    expect(parseOcspRequest(request({ ids: [certId(Buffer.from([0x00, 0x80]), SHA256)] })).certIds[0]).toMatchObject({ hash: "sha256", serial: "80" });
    // an explicit v1 and a requestorName are tolerated
    const tbs = seq(explicit(0, integer(0)), explicit(1, explicit(4, seq())), seq(seq(certId())));
    expect(parseOcspRequest(seq(tbs)).certIds).toHaveLength(1);
    // a signed request: the signature is not checked
    expect(parseOcspRequest(seq(seq(seq(seq(certId()))), explicit(0, seq(seq(oid("1.2.840.113549.1.1.11")), tlv(0x03, Buffer.from([0, 1])))))).certIds).toHaveLength(1);
  });

  it("keeps an unknown hash algorithm, a zero or negative serial as unmatched (answered unknown), not malformed", () => {
    expect(parseOcspRequest(request({ ids: [certId(undefined, seq(oid("1.2.840.113549.2.5"), nul()))] })).certIds[0]!.hash).toBeUndefined();
    expect(parseOcspRequest(request({ ids: [certId(Buffer.from([0xff]))] })).certIds[0]!.serial).toBeUndefined();
    expect(parseOcspRequest(request({ ids: [certId(Buffer.from([0x00]))] })).certIds[0]!.serial).toBeUndefined();
  });

  it("refuses every truncation of a valid request", () => {
    const full = request({ exts: [nonce(16)] });
    for (let n = 0; n < full.length; n++) malformed(full.subarray(0, n));
  });

  it("refuses extra bytes, wrong tags, huge and indefinite lengths", () => {
    const good = request();
    expect(malformed(Buffer.concat([good, Buffer.from([0])]))).toMatch(/bytes follow/);
    expect(malformed(Buffer.from([0x31, ...good.subarray(1)]))).toMatch(/OCSPRequest has tag 0x31/);
    expect(malformed(seq(seq(tlv(0x31, seq(certId())))))).toMatch(/requestList/);
    expect(malformed(seq(seq(seq(seq(seq(SHA1, octetString(nameHash), octetString(keyHash), octetString(Buffer.from([1]))))))))).toMatch(/serialNumber/);
    expect(malformed(seq(seq(seq(seq(seq(SHA1, octetString(nameHash), octetString(keyHash)))))))).toMatch(/four fields/);
    expect(malformed(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00]))).toMatch(/overruns/);
    expect(malformed(Buffer.from([0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]))).toMatch(/length too large/);
    expect(malformed(Buffer.from([0x30, 0x80, 0x30, 0x00, 0x00, 0x00]))).toMatch(/indefinite/);
    expect(malformed(Buffer.from([0x30, 0x81, 0x03, 0x30, 0x01, 0x00]))).toMatch(/long-form/);
    expect(malformed(Buffer.alloc(0))).toMatch(/empty/);
    expect(malformed(Buffer.alloc(9000, 0x30))).toMatch(/larger than/);
    expect(malformed(seq(seq(seq())))).toMatch(/requestList is empty/);
    expect(malformed(seq(seq(explicit(0, integer(1)), seq(seq(certId())))))).toMatch(/version/);
  });

  it(`answers up to ${MAX_REQUESTS} certificates in one request, refuses more`, () => {
    expect(parseOcspRequest(request({ ids: [certId(Buffer.from([1])), certId(Buffer.from([2]))] })).certIds.map((c) => c.serial)).toEqual(["01", "02"]);
    expect(malformed(request({ ids: Array.from({ length: MAX_REQUESTS + 1 }, () => certId()) }))).toMatch(/more than 8/);
  });

  it("refuses unknown critical extensions (request or single), accepts unknown non-critical ones", () => {
    expect(malformed(request({ exts: [ext("1.2.3.4", nul(), true)] }))).toMatch(/unknown critical extension in requestExtensions/);
    expect(malformed(request({ single: [ext("1.2.3.4", nul(), true)] }))).toMatch(/unknown critical extension in singleRequestExtensions/);
    expect(parseOcspRequest(request({ exts: [ext("1.2.3.4", nul())], single: [ext("1.2.3.5", nul())] })).certIds).toHaveLength(1);
    expect(malformed(request({ exts: [nonce(4), nonce(4)] }))).toMatch(/twice/);
  });

  it(`holds nonces to RFC 8954: 1 to ${NONCE_MAX} octets, an OCTET STRING, nothing after it`, () => {
    expect(parseOcspRequest(request({ exts: [nonce(1)] })).nonce).toBeDefined();
    expect(parseOcspRequest(request({ exts: [nonce(NONCE_MAX)] })).nonce).toBeDefined();
    expect(malformed(request({ exts: [nonce(0)] }))).toMatch(/0 octets/);
    expect(malformed(request({ exts: [nonce(NONCE_MAX + 1)] }))).toMatch(/33 octets/);
    expect(malformed(request({ exts: [ext(OCSP_OID.nonce, Buffer.alloc(16, 7))] }))).toMatch(/not an OCTET STRING/);
    expect(malformed(request({ exts: [ext(OCSP_OID.nonce, Buffer.concat([octetString(Buffer.alloc(4)), Buffer.from([0])]))] }))).toMatch(/bytes follow the nonce/);
    expect(malformed(request({ single: [nonce(8)] }))).toMatch(/requestExtensions/);
  });

  it("never throws anything but ERR_OCSP_MALFORMED on mutated input (deterministic fuzz)", () => {
    const base = request({ ids: [certId(), certId(Buffer.from([5]), SHA256)], exts: [nonce(16)] });
    let seed = 0x1234567;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
    for (let i = 0; i < 5000; i++) {
      const m = Buffer.from(base);
      const edits = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < edits; k++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      try {
        parseOcspRequest(m);
      } catch (e) {
        expect(isJpkiError(e, "ERR_OCSP_MALFORMED"), String(e)).toBe(true);
      }
    }
  });
});
