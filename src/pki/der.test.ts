/** DER writer against X.690 encodings worked out by hand (and cross-checked with `openssl asn1parse`). */
import { describe, expect, it } from "vitest";
import { bitString, children, encodeLength, header, integer, integerFromUnsigned, namedBits, oid, readHeader, seq, time, utf8 } from "./der.js";

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
