import { describe, expect, it } from "vitest";
import { asJst, jstDay, JST_OFFSET_MS } from "./jst.js";

describe("JST days", () => {
  it("turns the day at 15:00 UTC, and the remembered instant never answers for another", () => {
    const before = new Date("2026-03-31T14:59:59.999Z");
    const after = new Date("2026-03-31T15:00:00.000Z");
    // asked alternately, as two read stages with different clocks would
    expect([jstDay(before), jstDay(after), jstDay(before), jstDay(after)]).toEqual(["2026-03-31", "2026-04-01", "2026-03-31", "2026-04-01"]);
    expect(jstDay(new Date("2024-02-28T15:00:00Z"))).toBe("2024-02-29");
    expect(asJst(after).getUTCHours()).toBe(0);
    expect(JST_OFFSET_MS).toBe(9 * 3_600_000);
  });

  it("refuses an invalid Date as toISOString does, also right after a valid one", () => {
    jstDay(new Date(0));
    expect(() => jstDay(new Date(Number.NaN))).toThrow(RangeError);
    expect(() => jstDay(new Date(Number.NaN))).toThrow(RangeError);
  });
});
