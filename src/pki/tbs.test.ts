import { describe, expect, it } from "vitest";
import { isWholeTlv, tbsCertificateOf } from "./tbs.js";

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
