import { describe, expect, it } from "vitest";
import { normaliseSerial, randomSerial, serialHex, timeOrderedSerial } from "./serial.js";

describe("serials", () => {
  it("draws 16 octets, positive and minimal in DER (first octet 0x01–0x7f), never twice", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = randomSerial();
      expect(s.length).toBe(16);
      expect(s[0]).toBeGreaterThanOrEqual(1);
      expect(s[0]).toBeLessThanOrEqual(0x7f);
      seen.add(serialHex(s));
    }
    expect(seen.size).toBe(2000);
  });

  it("opens an end-entity serial with its issuance time, so serials sort as they were issued, with 80 random bits after it", () => {
    const t = Date.parse("2026-12-02T10:00:00.123Z");
    const a = timeOrderedSerial(new Date(t));
    expect(a.length).toBe(16);
    expect(a.readUIntBE(0, 6)).toBe(t);
    expect(a[0]).toBeGreaterThanOrEqual(1);
    expect(a[0]).toBeLessThanOrEqual(0x7f);
    // same millisecond: distinct (the random tail); a later millisecond: after every earlier serial, as hex text too
    const same = new Set(Array.from({ length: 1000 }, () => serialHex(timeOrderedSerial(new Date(t)))));
    expect(same.size).toBe(1000);
    const later = serialHex(timeOrderedSerial(new Date(t + 1)));
    for (const s of same) expect(s < later).toBe(true);
    // the tail is not all zeros or a counter: 1000 draws give many distinct final octets
    expect(new Set([...same].map((s) => s.slice(-2))).size).toBeGreaterThan(200);
  });

  it("falls back to all random where the time would make the serial non-minimal or negative in DER", () => {
    for (const at of [new Date("2000-01-01T00:00:00Z"), new Date(2 ** 47)]) {
      const s = timeOrderedSerial(at);
      expect(s.length).toBe(16);
      expect(s[0]).toBeGreaterThanOrEqual(1);
      expect(s[0]).toBeLessThanOrEqual(0x7f);
      expect(s.readUIntBE(0, 6)).not.toBe(at.getTime());
    }
  });

  it("normalises what an operator types", () => {
    expect(normaliseSerial("0x00:0A:bc")).toBe("0abc");
    expect(normaliseSerial("zz")).toBeUndefined();
  });
});
