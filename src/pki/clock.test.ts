import { describe, expect, it } from "vitest";
import { formatDuration } from "./clock.js";

describe("formatDuration", () => {
  it("says the two largest units, truncated", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(12_999)).toBe("12 s");
    expect(formatDuration(5 * 60_000)).toBe("5 min");
    expect(formatDuration(5 * 60_000 - 400)).toBe("4 min 59 s");
    expect(formatDuration(-(2 * 3_600_000 + 5 * 60_000 + 7000))).toBe("2 h 5 min");
    expect(formatDuration(3 * 86_400_000 + 3_600_000)).toBe("3 d 1 h");
  });
});
