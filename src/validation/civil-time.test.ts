/**
 * Calendar arithmetic (civil-time.ts) against the Date it stands in for.
 */
import { describe, expect, test } from "vitest";
import { daysFromCivil, isoTime } from "./civil-time.js";

describe("civil time", () => {
  test("isoTime writes what toISOString writes, over years 0–9999 and at their edges", () => {
    let seed = 5;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const edges = [0, -1, 951_782_400_000, 951_868_799_999, -62_167_219_200_000, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001];
    for (const ms of [...edges, ...Array.from({ length: 5000 }, () => Math.floor((rnd() * 2 - 1) * 2.6e14))]) {
      expect(isoTime(new Date(ms)), String(ms)).toBe(new Date(ms).toISOString());
    }
    expect(() => isoTime(new Date(NaN))).toThrow(RangeError);
  });

  test("daysFromCivil counts days as Date.UTC does, carries included", () => {
    // (Date.UTC reads years 0–99 as 19xx: the cases stay above)
    for (const [y, m, d] of [[1970, 1, 1], [2000, 2, 29], [1900, 3, 1], [2026, 12, 32], [2026, 1, 0], [1600, 2, 29], [9999, 12, 31]] as const) {
      expect(daysFromCivil(y, m, d), `${y}-${m}-${d}`).toBe(Date.UTC(y, m - 1, d) / 86_400_000);
    }
  });
});
