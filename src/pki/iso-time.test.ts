import { describe, expect, it } from "vitest";
import { readIsoTime } from "./iso-time.js";

describe("readIsoTime", () => {
  it("reads a time with its zone; a bare day only when asked", () => {
    expect((readIsoTime("2026-04-01T09:00:00+09:00") as Date).toISOString()).toBe("2026-04-01T00:00:00.000Z");
    expect((readIsoTime("2026-04-01 09:00:00.123456789z") as Date).toISOString()).toBe("2026-04-01T09:00:00.123Z");
    expect(readIsoTime("2026-04-01")).toBe("no-zone");
    expect((readIsoTime("2026-04-01", { day: true }) as Date).toISOString()).toBe("2026-04-01T00:00:00.000Z");
  });

  it("names why it refuses what Date would have read as another time", () => {
    expect(readIsoTime("2026-04-01T09:00")).toBe("no-zone");
    for (const s of ["2026-02-30T00:00:00Z", "2025-02-29T00:00Z", "2026-04-01T24:00Z", "2026-04-01T09:60Z", "2026-13-01T00:00Z"]) expect(readIsoTime(s), s).toBe("not-in-calendar");
    for (const s of ["2026-04-01 junk", "2026-04-01T09:00+25:00", "yesterday", "", "20260401", "2026-04-01T09:00:00.1234567890Z"]) expect(readIsoTime(s), s).toBe("not-a-time");
  });
});
