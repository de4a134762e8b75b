import { describe, expect, it } from "vitest";
import { clockMs, FixedClock, monotonicWallMs, systemClock, formatDuration } from "./clock.js";

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

describe("clockMs", () => {
  it("reads nowMs() where a clock has it, now() where it has not, and both say the same time", () => {
    const fixed = new FixedClock("2026-12-06T12:00:00Z");
    const ms = clockMs(fixed);
    expect(ms()).toBe(Date.parse("2026-12-06T12:00:00Z"));
    fixed.advance(1500);
    expect(ms()).toBe(fixed.now().getTime());
    // a clock of its own, with now() alone (Clock's nowMs is optional)
    let t = 1_000;
    const plain = clockMs({ now: () => new Date(t) });
    t = 2_000;
    expect(plain()).toBe(2_000);
    const before = Date.now();
    const sys = clockMs(systemClock)();
    expect(sys).toBeGreaterThanOrEqual(before);
    expect(sys).toBeLessThanOrEqual(Date.now() + 1);
  });
});

describe("monotonicWallMs", () => {
  it("is the wall clock in whole ms, moved by the monotonic clock and taken again from the wall clock once resyncMs has passed", () => {
    let wall = 1_000_000;
    let mono = 50.25;
    let wallReads = 0;
    const ms = monotonicWallMs(1000, () => (wallReads++, wall), () => mono);
    expect(wallReads).toBe(0); // nothing read until asked
    expect(ms()).toBe(1_000_000);
    mono += 400.5; // the wall clock is not read again meanwhile: the monotonic clock moves it
    expect(ms()).toBe(1_000_400);
    expect(wallReads).toBe(1);
    // the system clock stepped an hour ahead: seen once resyncMs has passed, not before
    wall += 400.5 + 3_600_000;
    expect(ms()).toBe(1_000_400);
    mono += 599.5;
    wall += 599.5;
    expect(ms()).toBe(1_000_000 + 3_600_000 + 1000);
    expect(wallReads).toBe(2);
    mono += 0.5;
    expect(Number.isInteger(ms())).toBe(true);
  });
});
