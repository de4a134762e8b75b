import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { parseTimeOption } from "./time-option.js";

const refusal = (s: string) => {
  try {
    parseTimeOption(s);
  } catch (e) {
    return isJpkiError(e) ? e.code : String(e);
  }
  return "accepted";
};

describe("parseTimeOption (--at)", () => {
  it("reads a day as its start in UTC and a time with its zone", () => {
    expect(parseTimeOption("2026-04-01").toISOString()).toBe("2026-04-01T00:00:00.000Z");
    expect(parseTimeOption("2026-04-01T09:00:00+09:00").toISOString()).toBe("2026-04-01T00:00:00.000Z");
    expect(parseTimeOption("2026-04-01T09:00Z").toISOString()).toBe("2026-04-01T09:00:00.000Z");
    expect(parseTimeOption("2026-04-01 09:00:00.5-01:30").toISOString()).toBe("2026-04-01T10:30:00.500Z");
    expect(parseTimeOption("2024-02-29T23:59:59Z").toISOString()).toBe("2024-02-29T23:59:59.000Z");
  });

  it("refuses what Date would read as another time: trailing words, a day the month lacks, no zone, out-of-range fields", () => {
    for (const s of ["2026-04-01 junk", "2026-02-30", "2026-02-30T00:00:00Z", "2025-02-29", "2026-04-01T09:00", "2026-04-01T24:00:00Z", "2026-13-01", "2026-04-01T09:00:00+25:00", "yesterday", "", "20260401"]) {
      expect(refusal(s), s).toBe("ERR_USAGE");
    }
  });
});
