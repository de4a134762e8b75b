/**
 * The DER reader's lookup table (asn1.ts ByteTable): a value answers only for the very octets it was stored under.
 */
import { describe, expect, test } from "vitest";
import { ByteTable, tlvAt } from "./asn1.js";

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
