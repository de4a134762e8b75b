/**
 * The DER reader (asn1.ts): its lookup table answers only for the very octets a value was stored under; UTCTime
 * read by arithmetic gives what Date.UTC gives (RFC 5280 §4.1.2.5.1), carries included.
 */
import { describe, expect, test } from "vitest";
import { ByteTable, decodeTime, tlvAt } from "./asn1.js";

const octets = (body: number[]) => tlvAt(Buffer.from([0x04, body.length, ...body]));

describe("ByteTable", () => {
  test("finds a value by equal octets only, in any buffer", () => {
    const t = new ByteTable<string>(8);
    t.set(octets([1, 2, 3]), false, "a");
    expect(t.get(octets([1, 2, 3]), false)).toBe("a");
    expect(t.get(tlvAt(Buffer.from([0x30, 0x05, 0x04, 0x03, 1, 2, 3]), 2), false)).toBe("a");
    expect(t.get(octets([1, 2, 4]), false)).toBeUndefined();
    expect(t.get(octets([1, 2, 3]), true)).toBeUndefined();
  });

  test("with a sampled hash, keys sharing their tail stay apart (long keys compared in full)", () => {
    const t = new ByteTable<string>(8, 4);
    const long = (head: number) => octets([head, ...Array.from({ length: 100 }, (_, i) => i)]);
    t.set(long(1), true, "one");
    t.set(long(2), true, "two");
    expect(t.get(long(1), true)).toBe("one");
    expect(t.get(long(2), true)).toBe("two");
    expect(t.get(long(3), true)).toBeUndefined();
  });

  test("holds a copy: changing the buffer it was read from changes nothing", () => {
    const t = new ByteTable<string>(8);
    const b = Buffer.from([0x04, 0x02, 7, 7]);
    t.set(tlvAt(b), true, "x");
    b[3] = 8;
    expect(t.get(tlvAt(b), true)).toBeUndefined();
    expect(t.get(tlvAt(Buffer.from([0x04, 0x02, 7, 7])), true)).toBe("x");
  });

  test("is bounded: the oldest entries go first", () => {
    const t = new ByteTable<number>(4);
    for (let i = 0; i < 10; i++) t.set(octets([i]), false, i);
    expect(t.get(octets([0]), false)).toBeUndefined();
    expect(t.get(octets([9]), false)).toBe(9);
  });
});

describe("decodeTime", () => {
  const utc = (s: string) => decodeTime(tlvAt(Buffer.concat([Buffer.from([0x17, s.length]), Buffer.from(s, "latin1")]))).getTime();

  test("UTCTime equals Date.UTC, from 1950 to 2049; a field out of range (day 32, hour 24, 29 Feb 2025) is refused, not carried into another date", () => {
    const cases = ["500101000000Z", "491231235959Z", "000229120000Z", "990228000000Z", "260101000000Z"];
    for (const s of cases) {
      const n = (i: number) => Number(s.slice(i, i + 2));
      const yy = n(0);
      expect(utc(s), s).toBe(Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, n(2) - 1, n(4), n(6), n(8), n(10)));
    }
    for (const s of ["261232000000Z", "260100246060Z", "250229000000Z", "260431000000Z", "260101240000Z"]) expect(() => utc(s), s).toThrow(RangeError);
    let seed = 11;
    const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % k;
    for (let k = 0; k < 2000; k++) {
      const f = [rnd(100), 1 + rnd(12), rnd(32), rnd(24), rnd(60), rnd(60)];
      const s = f.map((x) => String(x).padStart(2, "0")).join("") + "Z";
      const year = f[0]! >= 50 ? 1900 + f[0]! : 2000 + f[0]!;
      const expected = Date.UTC(year, f[1]! - 1, f[2]!, f[3]!, f[4]!, f[5]!);
      // the date exists when Date.UTC carried nothing
      if (new Date(expected).getUTCDate() === f[2]) expect(utc(s), s).toBe(expected);
      else expect(() => utc(s), s).toThrow(RangeError);
    }
  });

  test("a month out of 1–12 is refused; the short form goes the slow way; non-digits are refused", () => {
    expect(() => utc("261301000000Z")).toThrow(RangeError);
    expect(utc("2601010000Z")).toBe(Date.UTC(2026, 0, 1));
    expect(() => utc("26010100000xZ")).toThrow(RangeError);
  });
});
