import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as asn1js from "asn1js";
import { asn1jsHead } from "../../test/asn1js-head.js";
import { describe, expect, it } from "vitest";
import { explicit, integer, isWholeTlv, readHeader, seq } from "./der.js";
import { storedTbsIs, subjectPublicKeyInfoOf, tbsCertificateOf } from "./tbs.js";

describe("tbsCertificateOf", () => {
  const tbs = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x07]);
  const rest = Buffer.from([0x30, 0x00, 0x03, 0x01, 0x00]);
  it("reads the first element of the outer SEQUENCE, whatever form the outer length takes", () => {
    const short = Buffer.concat([Buffer.from([0x30, tbs.length + rest.length]), tbs, rest]);
    const long = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, 0x00, tbs.length + rest.length]), tbs, rest]);
    expect(tbsCertificateOf(short)).toEqual(tbs);
    expect(tbsCertificateOf(long)).toEqual(tbs);
  });
  it("reads a 2-octet length (every real certificate)", () => {
    const big = Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x04]), Buffer.from([0x30, 0x82, 0x01, 0x00]), Buffer.alloc(256)]);
    expect(tbsCertificateOf(big)?.length).toBe(260);
  });
  it("refuses what is no certificate: another tag, an indefinite length, a tbs overrunning its parent, truncated bytes", () => {
    expect(tbsCertificateOf(Buffer.from([0x31, 0x05, ...tbs]))).toBeUndefined();
    expect(tbsCertificateOf(Buffer.from([0x30, 0x80, ...tbs, 0, 0]))).toBeUndefined();
    expect(tbsCertificateOf(Buffer.from([0x30, 0x04, 0x30, 0x05, 0x02, 0x01]))).toBeUndefined();
    expect(tbsCertificateOf(Buffer.from([0x30, 0x82, 0x01]))).toBeUndefined();
    expect(tbsCertificateOf(Buffer.from([0x30, 0x02, 0x02, 0x00]))).toBeUndefined();
    expect(tbsCertificateOf(Buffer.alloc(0))).toBeUndefined();
  });
});

describe("isWholeTlv", () => {
  it("is one TLV exactly: not a part of one, not one with octets after it", () => {
    expect(isWholeTlv(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x07]))).toBe(true);
    expect(isWholeTlv(Buffer.from([0x30, 0x81, 0x01, 0x00]))).toBe(true);
    expect(isWholeTlv(Buffer.from([0x30, 0x03, 0x02, 0x01]))).toBe(false);
    expect(isWholeTlv(Buffer.from([0x30, 0x01, 0x02, 0x01]))).toBe(false);
    expect(isWholeTlv(Buffer.from([0x30, 0x80, 0x00, 0x00]))).toBe(false);
    expect(isWholeTlv(Buffer.from([0x30]))).toBe(false);
  });
});

describe("storedTbsIs (the stores' owner rule, as their SQL computes it)", () => {
  const tbs = Buffer.from([0x30, 0x03, 0x02, 0x01, 0x07]);
  const cert = (header: number[]) => Buffer.concat([Buffer.from(header), tbs, Buffer.from([0x30, 0x00, 0x03, 0x01, 0x00])]);
  it("finds the tbs after a short or long outer header", () => {
    expect(storedTbsIs(cert([0x30, 0x0a]), tbs)).toBe(true);
    expect(storedTbsIs(cert([0x30, 0x82, 0x00, 0x0a]), tbs)).toBe(true);
    expect(storedTbsIs(cert([0x30, 0x84, 0x00, 0x00, 0x00, 0x0a]), tbs)).toBe(true);
  });
  it("is false for another tbs, a part of one, or stored bytes too short", () => {
    expect(storedTbsIs(cert([0x30, 0x0a]), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x08]))).toBe(false);
    expect(storedTbsIs(cert([0x30, 0x0a]), tbs.subarray(0, 4))).toBe(false);
    expect(storedTbsIs(Buffer.from([0x30, 0x82, 0x00]), tbs)).toBe(false);
    expect(storedTbsIs(Buffer.from([0x30]), tbs)).toBe(false);
  });
});

describe("subjectPublicKeyInfoOf", () => {
  // PKITS (test/vectors/pkits, NIST's suite): a real v3 certificate; node's own X.509 parser says what its key is.
  const der = readFileSync(new URL("../../test/vectors/pkits/certs/ValidCertificatePathTest1EE.crt", import.meta.url));
  it("reads the key of a v3 certificate as its issuer signed it", () => {
    const want = new X509Certificate(der).publicKey.export({ type: "spki", format: "der" });
    expect(subjectPublicKeyInfoOf(der)).toEqual(want);
  });
  it("reads the TBS and the key of every certificate we issue and every PKITS one as asn1js and node's X.509 do", () => {
    const dir = (d: string) => readdirSync(new URL(`../../test/vectors/${d}/`, import.meta.url)).map((f) => new X509Certificate(readFileSync(new URL(`../../test/vectors/${d}/${f}`, import.meta.url))));
    const certs = [...dir("inspect/certs"), ...dir("pkits/certs")];
    let rsa = 0;
    for (const x of certs) {
      const [tbs] = (asn1js.fromBER(x.raw).result as asn1js.Sequence).valueBlock.value as asn1js.Sequence[];
      const fields = tbs!.valueBlock.value;
      const key = fields[fields[0]!.idBlock.tagClass === 3 ? 6 : 5]!; // after the [0] version, when there is one
      expect(tbsCertificateOf(x.raw)).toEqual(Buffer.from(tbs!.valueBeforeDecodeView));
      expect(subjectPublicKeyInfoOf(x.raw)).toEqual(Buffer.from(key.valueBeforeDecodeView));
      const pub = (() => {
        try {
          return x.publicKey;
        } catch {
          return undefined; // PKITS' DSA keys whose parameters the issuer's carry: node reads no key from them
        }
      })();
      if (pub?.asymmetricKeyType === "rsa") {
        expect(subjectPublicKeyInfoOf(x.raw)).toEqual(pub.export({ type: "spki", format: "der" }));
        rsa++;
      }
    }
    expect(certs.length).toBeGreaterThan(300);
    expect(rsa).toBeGreaterThan(300);
  });
  const spki = seq(seq(Buffer.from([0x06, 0x01, 0x2a])), Buffer.from([0x03, 0x02, 0x00, 0x07]));
  const name = seq();
  const v1 = seq(seq(integer(5), seq(), name, seq(), name, spki), seq(), Buffer.from([0x03, 0x01, 0x00]));
  it("reads a v1 certificate's (no [0] version: the serial first)", () => {
    expect(subjectPublicKeyInfoOf(v1)).toEqual(spki);
    const v3 = seq(seq(explicit(0, integer(2)), integer(5), seq(), name, seq(), name, spki), seq(), Buffer.from([0x03, 0x01, 0x00]));
    expect(subjectPublicKeyInfoOf(v3)).toEqual(spki);
  });
  it("is undefined where the fields up to the key are not all there, or the key is no SEQUENCE", () => {
    expect(subjectPublicKeyInfoOf(seq(seq(integer(5), seq(), name, seq(), name), seq()))).toBeUndefined();
    expect(subjectPublicKeyInfoOf(seq(seq(integer(5), seq(), name, seq(), name, integer(1)), seq()))).toBeUndefined();
    expect(subjectPublicKeyInfoOf(der.subarray(0, 200))).toBeUndefined();
    expect(subjectPublicKeyInfoOf(Buffer.alloc(0))).toBeUndefined();
  });
  it("answers as a walk over asn1js's headers for every truncation and many corruptions of a certificate", () => {
    // The walk RFC 5280 §4.1 describes, each header read by asn1js (test/asn1js-head.ts), not by der.ts headAt: the
    // stores' key-in-use check must find what an independent reader finds.
    const reference = (d: Uint8Array): Buffer | undefined => {
      const outer = asn1jsHead(d, 0, d.length, false);
      if (!outer || outer.tag !== 0x30 || outer.headerLength + outer.length > d.length) return undefined;
      const tbs = asn1jsHead(d, outer.headerLength, d.length, false);
      const end = outer.headerLength + (tbs ? tbs.headerLength + tbs.length : 0);
      if (!tbs || tbs.tag !== 0x30 || end > outer.headerLength + outer.length) return undefined;
      let offset = outer.headerLength + tbs.headerLength;
      for (let field = 0; field < 7; field++) {
        const h = asn1jsHead(d, offset, end, false);
        if (!h || offset + h.headerLength + h.length > end) return undefined;
        if (field === 0 && h.tag !== 0xa0) field++;
        if (field === 6) return h.tag === 0x30 ? Buffer.from(d.buffer, d.byteOffset + offset, h.headerLength + h.length) : undefined;
        offset += h.headerLength + h.length;
      }
      return undefined;
    };
    const cases: Buffer[] = [];
    for (let n = 0; n <= der.length; n++) cases.push(der.subarray(0, n));
    // every octet of the headers up to the key (and a little past), set to values that change the length form
    const spkiAt = der.indexOf(subjectPublicKeyInfoOf(der)!);
    for (let i = 0; i < spkiAt + 8; i++) {
      for (const v of [0x00, 0x01, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xa0, 0xff, der[i]! ^ 1]) {
        const d = Buffer.from(der);
        d[i] = v;
        cases.push(d);
      }
    }
    // lengths in the long forms readHeader takes (not DER's shortest): the outer SEQUENCE's in four octets, the
    // TBS's in three and four
    const outerLen = readHeader(der).length;
    const long4 = Buffer.concat([Buffer.from([0x30, 0x84, 0, 0, outerLen >> 8, outerLen & 255]), der.subarray(readHeader(der).headerLength)]);
    cases.push(long4);
    const tbsAt = readHeader(der).headerLength;
    const t = readHeader(der, tbsAt);
    for (const lenOctets of [[0x83, 0, t.length >> 8, t.length & 255], [0x84, 0, 0, t.length >> 8, t.length & 255]]) {
      const body = Buffer.concat([Buffer.from([0x30, ...lenOctets]), der.subarray(tbsAt + t.headerLength)]);
      cases.push(Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 255]), body]));
    }
    // the certificate inside a larger buffer, as a view
    const inside = Buffer.concat([Buffer.from([1, 2, 3]), der, Buffer.from([4])]).subarray(3, 3 + der.length);
    cases.push(inside);
    let found = 0;
    for (const d of cases) {
      const want = reference(d);
      expect(subjectPublicKeyInfoOf(d), d.toString("hex").slice(0, 64)).toEqual(want);
      if (want) found++;
    }
    expect(found).toBeGreaterThan(100);
    expect(subjectPublicKeyInfoOf(inside)).toEqual(reference(der));
    for (const d of cases.slice(-4, -1)) expect(subjectPublicKeyInfoOf(d)).toEqual(reference(der));
  });
});
