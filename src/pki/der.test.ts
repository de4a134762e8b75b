/** DER writer against X.690 encodings worked out by hand (and cross-checked with `openssl asn1parse`). */
import { describe, expect, it } from "vitest";
import { X509Certificate } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as asn1js from "asn1js";
import { asn1jsHead } from "../../test/asn1js-head.js";
import {
  bitString,
  certificateParts,
  children,
  encodeLength,
  HEAD_HIGH_TAG,
  HEAD_TAG_TOO_LONG,
  HEAD_INDEFINITE,
  HEAD_LEADING_ZERO,
  HEAD_LENGTH_TRUNCATED,
  HEAD_NOT_SHORT,
  HEAD_OK,
  HEAD_TOO_LONG,
  HEAD_TRUNCATED,
  head,
  header,
  headAt,
  headerLengthAt,
  integer,
  integerFromUnsigned,
  isWholeTlv,
  namedBits,
  oid,
  readHeader,
  seq,
  time,
  utf8,
  type Head,
  type HeadFault,
} from "./der.js";
import { assertDer } from "./der-strict.js";
import { subjectPublicKeyInfoOf, tbsCertificateOf } from "./tbs.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("DER (X.690)", () => {
  it("encodes definite lengths in the short and long forms (§8.1.3)", () => {
    expect(hex(encodeLength(0))).toBe("00");
    expect(hex(encodeLength(127))).toBe("7f");
    expect(hex(encodeLength(128))).toBe("8180");
    expect(hex(encodeLength(255))).toBe("81ff");
    expect(hex(encodeLength(256))).toBe("820100");
    expect(hex(encodeLength(65536))).toBe("83010000");
    expect(hex(header(0x30, 1_000_000))).toBe("30830f4240");
    expect(readHeader(header(0x30, 1_000_000))).toEqual({ tag: 0x30, headerLength: 5, length: 1_000_000 });
  });

  it("encodes INTEGERs minimally, adding a zero octet before a set top bit (§8.3.2)", () => {
    expect(hex(integer(0))).toBe("020100");
    expect(hex(integer(127))).toBe("02017f");
    expect(hex(integer(128))).toBe("02020080");
    expect(hex(integer(256))).toBe("02020100");
    expect(hex(integerFromUnsigned(Buffer.from("0000ff", "hex")))).toBe("020200ff");
    expect(hex(integerFromUnsigned(Buffer.from("00007f", "hex")))).toBe("02017f");
  });

  it("encodes OBJECT IDENTIFIERs with base-128 arcs (§8.19)", () => {
    expect(hex(oid("2.5.29.17"))).toBe("0603551d11");
    expect(hex(oid("1.2.840.113549.1.1.11"))).toBe("06092a864886f70d01010b");
    expect(hex(oid("1.2.392.200149.8.5.5.1"))).toBe("060a2a83088c9b5508050501"); // 392 = 83 08, 200149 = 8c 9b 55
  });

  it("drops trailing zero bits of named-bit BIT STRINGs (§11.2.2)", () => {
    expect(hex(namedBits([0, 1]))).toBe("030206c0"); // digitalSignature, nonRepudiation
    expect(hex(namedBits([5, 6]))).toBe("03020106"); // keyCertSign, cRLSign
    expect(hex(namedBits([0]))).toBe("03020780");
    expect(hex(bitString(Buffer.from([0xab])))).toBe("030200ab");
  });

  it("uses UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)", () => {
    expect(Buffer.from(time(new Date("2049-12-31T23:59:59Z"))).subarray(2).toString()).toBe("491231235959Z");
    expect(time(new Date("2049-12-31T23:59:59Z"))[0]).toBe(0x17);
    expect(Buffer.from(time(new Date("2050-01-01T00:00:00Z"))).subarray(2).toString()).toBe("20500101000000Z");
    expect(time(new Date("2050-01-01T00:00:00Z"))[0]).toBe(0x18);
  });

  it("nests constructed values and reads them back", () => {
    const v = seq(utf8("山田"), seq(), integer(1));
    expect(hex(v)).toBe("300d" + "0c06e5b1b1e794b0" + "3000" + "020101");
    expect(children(v).map(hex)).toEqual(["0c06e5b1b1e794b0", "3000", "020101"]);
    expect(() => children(Buffer.from("3005020101", "hex"))).toThrow(RangeError);
  });
});

/** headAt's reading as a value: the header, or undefined with the fault it named. */
function ours(b: Uint8Array, offset: number, limit: number, der: boolean): Head | undefined {
  const fault = headAt(b, offset, limit, der);
  return fault ? undefined : { tag: head.tag, headerLength: head.headerLength, length: head.length };
}

const vectors = new URL("../../test/vectors/", import.meta.url);
const derFiles = (dir: string) => readdirSync(new URL(dir, vectors)).map((f) => readFileSync(new URL(`${dir}/${f}`, vectors)));
/** One certificate of every kind we issue (test/vectors/inspect/README.md), and NIST's PKITS certificates and CRLs. */
const ourCerts = derFiles("inspect/certs").map((b) => new X509Certificate(b).raw);
const pkitsCerts = derFiles("pkits/certs");
const pkitsCrls = derFiles("pkits/crls");

// The one header reader against an independent one: test/asn1js-head.ts (asn1js's decoder, our limits).
describe("headAt (the one TLV header reader) against asn1js", () => {
  it("reads every header of our certificates and of PKITS' certificates and CRLs as asn1js's decoder does", () => {
    let headers = 0;
    const wrong: string[] = []; // collected, not one expect() a header: there are tens of thousands
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const walk = (der: Buffer, node: asn1js.AsnType, at: number): number => {
      const want = { tag: der[at], headerLength: node.idBlock.blockLength + node.lenBlock.blockLength, length: node.lenBlock.length };
      const got = [ours(der, at, der.length, false), ours(der, at, der.length, true), readHeader(der, at)];
      if (!got.every((g) => same(g, want))) wrong.push(`${at}: ${JSON.stringify(got)} for ${JSON.stringify(want)}`);
      headers++;
      const value = (node.valueBlock as { value?: unknown }).value;
      if (Array.isArray(value) && node.idBlock.isConstructed) {
        const kids = children(der, at);
        if (kids.length !== value.length) wrong.push(`${at}: ${kids.length} children for ${value.length}`);
        let off = at + want.headerLength;
        value.forEach((k: asn1js.AsnType, i) => {
          const n = walk(der, k, off);
          if (!kids[i]?.equals(der.subarray(off, off + n))) wrong.push(`${at}: child ${i}`);
          off += n;
        });
      }
      return want.headerLength + want.length;
    };
    for (const der of [...ourCerts, ...pkitsCerts, ...pkitsCrls]) {
      const parsed = asn1js.fromBER(der);
      expect(parsed.offset).toBe(der.length);
      expect(walk(der, parsed.result, 0)).toBe(der.length);
      expect(isWholeTlv(der)).toBe(true);
    }
    expect(wrong).toEqual([]);
    expect(headers).toBeGreaterThan(20_000);
  });

  it("gives asn1js's verdict at every offset of every certificate cut short or with one header octet changed", () => {
    let compared = 0;
    let refused = 0;
    const wrong: string[] = [];
    for (const cert of [...ourCerts.slice(0, 3), ...pkitsCerts.slice(0, 3)]) {
      const variants: Buffer[] = [];
      for (let n = 0; n <= 40; n++) variants.push(cert.subarray(0, n));
      for (let i = 0; i < 24; i++) {
        for (const v of [0x00, 0x01, 0x1f, 0x3f, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0x89, 0xff]) {
          const d = Buffer.from(cert);
          d[i] = v;
          variants.push(d);
        }
      }
      for (const d of variants) {
        for (let at = 0; at < Math.min(d.length + 1, 30); at++) {
          for (const der of [false, true]) {
            const want = asn1jsHead(d, at, d.length, der);
            const got = ours(d, at, d.length, der);
            if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${d.subarray(at, at + 8).toString("hex")} der=${der}: ${JSON.stringify(got)} for ${JSON.stringify(want)}`);
            compared++;
            if (!want) refused++;
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(compared).toBeGreaterThan(50_000);
    expect(refused).toBeGreaterThan(compared / 10);
  });
});

/**
 * Hostile headers, each with the fault headAt names, lenient and `der`; every reader built on it must refuse what
 * it refuses and read what it reads (test/der-callers.test.ts takes such headers to the readers above pki/).
 */
const HOSTILE: ReadonlyArray<{ what: string; bytes: Buffer; lenient: HeadFault; der: HeadFault }> = [
  { what: "nothing", bytes: Buffer.alloc(0), lenient: HEAD_TRUNCATED, der: HEAD_TRUNCATED },
  { what: "a tag alone", bytes: Buffer.from("30", "hex"), lenient: HEAD_TRUNCATED, der: HEAD_TRUNCATED },
  { what: "length octets cut short", bytes: Buffer.from("308201", "hex"), lenient: HEAD_LENGTH_TRUNCATED, der: HEAD_LENGTH_TRUNCATED },
  { what: "an indefinite length (0x80)", bytes: Buffer.from("3080020105" + "0000", "hex"), lenient: HEAD_INDEFINITE, der: HEAD_INDEFINITE },
  { what: "five length octets", bytes: Buffer.from("30850000000003020105", "hex"), lenient: HEAD_TOO_LONG, der: HEAD_TOO_LONG },
  { what: "eight length octets", bytes: Buffer.from("30880000000000000003020105", "hex"), lenient: HEAD_TOO_LONG, der: HEAD_TOO_LONG },
  { what: "0xff (reserved)", bytes: Buffer.from("30ff020105", "hex"), lenient: HEAD_TOO_LONG, der: HEAD_TOO_LONG },
  { what: "a length overflowing the input (4 GiB)", bytes: Buffer.from("3084ffffffff020105", "hex"), lenient: HEAD_OK, der: HEAD_OK },
  { what: "a long form where the short fits", bytes: Buffer.from("308103020105", "hex"), lenient: HEAD_OK, der: HEAD_NOT_SHORT },
  { what: "a length with a leading zero", bytes: Buffer.from("30820003020105", "hex"), lenient: HEAD_OK, der: HEAD_LEADING_ZERO },
  { what: "four length octets, leading zeros", bytes: Buffer.from("308400000003020105", "hex"), lenient: HEAD_OK, der: HEAD_LEADING_ZERO },
  { what: "a high tag number ([31], two tag octets)", bytes: Buffer.from("bf1f03020105", "hex"), lenient: HEAD_OK, der: HEAD_HIGH_TAG },
  { what: "a high tag number of three tag octets", bytes: Buffer.from("bf817f03020105", "hex"), lenient: HEAD_OK, der: HEAD_HIGH_TAG },
  { what: "a high tag number cut short", bytes: Buffer.from("bf81", "hex"), lenient: HEAD_TRUNCATED, der: HEAD_HIGH_TAG },
  { what: "a high tag number without its length", bytes: Buffer.from("bf1f", "hex"), lenient: HEAD_TRUNCATED, der: HEAD_HIGH_TAG },
  { what: "a high tag number of five octets after the first", bytes: Buffer.from("bf818181810103020105", "hex"), lenient: HEAD_TAG_TOO_LONG, der: HEAD_HIGH_TAG },
  { what: "a short form (well-formed)", bytes: Buffer.from("3003020105", "hex"), lenient: HEAD_OK, der: HEAD_OK },
  { what: "the shortest long form (well-formed)", bytes: Buffer.concat([Buffer.from("308180", "hex"), Buffer.alloc(126).fill(Buffer.from("020105", "hex")), Buffer.from("0500", "hex")]), lenient: HEAD_OK, der: HEAD_OK },
];

describe("hostile headers: every reader in pki/ gives headAt's verdict", () => {
  for (const c of HOSTILE) {
    it(c.what, () => {
      const b = c.bytes;
      // the table itself, against asn1js
      expect(headAt(b, 0, b.length)).toBe(c.lenient);
      expect(headAt(b, 0, b.length, true)).toBe(c.der);
      expect(c.lenient === HEAD_OK).toBe(asn1jsHead(b, 0, b.length, false) !== undefined);
      expect(c.der === HEAD_OK).toBe(asn1jsHead(b, 0, b.length, true) !== undefined);
      if (c.lenient === HEAD_OK) expect(ours(b, 0, b.length, false)).toEqual(asn1jsHead(b, 0, b.length, false));
      const whole = c.lenient === HEAD_OK && head.headerLength + head.length === b.length;
      const fits = c.lenient === HEAD_OK && head.headerLength + head.length <= b.length;
      if (c.lenient) {
        expect(() => readHeader(b)).toThrow(new RangeError(c.lenient));
        expect(() => headerLengthAt(b)).toThrow(new RangeError(c.lenient));
      } else expect(readHeader(b)).toEqual({ tag: b[0], headerLength: headerLengthAt(b), length: expect.any(Number) });
      expect(isWholeTlv(b)).toBe(whole);
      if (fits) expect(children(b).length).toBeGreaterThan(0);
      else expect(() => children(b)).toThrow(RangeError);
      if (c.der === HEAD_OK && whole) assertDer(b);
      else expect(() => assertDer(b)).toThrow(c.der ? new RangeError(c.der) : RangeError);
      // as a certificate's outer header: tbsCertificateOf / subjectPublicKeyInfoOf read nothing, certificateParts throws
      if (!fits) {
        expect(tbsCertificateOf(b)).toBeUndefined();
        expect(subjectPublicKeyInfoOf(b)).toBeUndefined();
        expect(() => certificateParts(b)).toThrow(RangeError);
      }
    });
  }

  it("as the outer or the TBS header of a real certificate: tbsCertificateOf, subjectPublicKeyInfoOf and certificateParts agree", () => {
    const cert = ourCerts.find((c) => certificateParts(c).tbs.length > 300)!;
    const spki = subjectPublicKeyInfoOf(cert)!;
    expect(spki).toEqual(new X509Certificate(cert).publicKey.export({ type: "spki", format: "der" }));
    const parts = certificateParts(cert);
    /** `content` (256 to 65535 octets) under a header of the given form (the forms of HOSTILE). */
    const forms: Record<string, (content: Buffer) => Buffer> = {
      minimal: (c) => Buffer.concat([Buffer.from([0x30, 0x82, c.length >> 8, c.length & 255]), c]),
      leadingZero: (c) => Buffer.concat([Buffer.from([0x30, 0x84, 0, 0, c.length >> 8, c.length & 255]), c]),
      fiveOctets: (c) => Buffer.concat([Buffer.from([0x30, 0x85, 0, 0, 0, c.length >> 8, c.length & 255]), c]),
      indefinite: (c) => Buffer.concat([Buffer.from([0x30, 0x80]), c, Buffer.from([0, 0])]),
      overflow: (c) => Buffer.concat([Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), c]),
      cutInLength: () => Buffer.from([0x30, 0x83, 0x00]),
    };
    const outer = children(cert);
    const tbsContent = parts.tbs.subarray(headerLengthAt(parts.tbs));
    for (const [name, form] of Object.entries(forms)) {
      const lenientOk = name === "minimal" || name === "leadingZero";
      const viaTbs = form(tbsContent);
      const atTbs = forms.minimal!(Buffer.concat([viaTbs, outer[1]!, outer[2]!]));
      const atOuter = form(Buffer.concat([parts.tbs, outer[1]!, outer[2]!]));
      for (const [where, d] of [["outer", atOuter], ["tbs", atTbs]] as const) {
        const ok = lenientOk;
        expect(tbsCertificateOf(d) !== undefined, `${where} ${name}`).toBe(ok);
        expect(subjectPublicKeyInfoOf(d), `${where} ${name}`).toEqual(ok ? spki : undefined);
        if (ok) expect(certificateParts(d).spki).toEqual(spki);
        else expect(() => certificateParts(d), `${where} ${name}`).toThrow(RangeError);
        if (name === "minimal") assertDer(d);
        else expect(() => assertDer(d), `${where} ${name}`).toThrow(RangeError);
      }
    }
  });
});
