import { describe, expect, it } from "vitest";
import { BASELINE_SHARE, baselineCaveat, syncRate } from "../bench/baseline.js";

describe("bench/baseline: a ratio's in-process baseline, and when it is not the machine's", () => {
  it("has no caveat for samples that had their core and agree", () => {
    expect(baselineCaveat([{ rate: 15_000, share: 0.99 }, { rate: 14_200, share: 0.97 }, { rate: 14_800, share: 1 }], 0.4, 2)).toBeUndefined();
    // off Linux the share is not known: only the spread can tell
    expect(baselineCaveat([{ rate: 15_000, share: undefined }, { rate: 14_000, share: undefined }], 0.4, 2)).toBeUndefined();
  });

  it("warns when the best sample had its core less than BASELINE_SHARE of the time (bench api at load 14–17: 0.90× 'met')", () => {
    const share = BASELINE_SHARE - 0.05;
    const w = baselineCaveat([{ rate: 5_000, share: 0.3 }, { rate: 5_200, share }, { rate: 4_900, share: 0.31 }], 15.2, 2);
    expect(w).toContain(`had a core ${(share * 100).toFixed(0)} % of the time`);
    expect(w).toContain("load average 15.2 on 2 cores");
    // at the bound itself, no warning
    expect(baselineCaveat([{ rate: 5_200, share: BASELINE_SHARE }], 1, 2)).toBeUndefined();
  });

  it("warns when the samples spread by more than a fifth, whatever their shares", () => {
    expect(baselineCaveat([{ rate: 15_000, share: 1 }, { rate: 11_900, share: 1 }], 1, 2)).toContain("its samples spread 11900–15000/s");
    expect(baselineCaveat([{ rate: 15_000, share: 1 }, { rate: 12_100, share: 1 }], 1, 2)).toBeUndefined();
  });

  it("samples a rate with the share of the time its thread ran, which a thread that runs all along has near 1", () => {
    let sink = 0;
    const s = syncRate(0.3, (i) => {
      for (let k = 0; k < 1000; k++) sink += (i * k) % 7;
    });
    expect(s.rate).toBeGreaterThan(0);
    expect(sink).toBeGreaterThan(0);
    if (process.platform === "linux") {
      // CPU time never exceeds the wall time of one thread (one tick of slack either side); how close to 1 it comes
      // depends on the host's load, which a test cannot bound
      expect(s.share).toBeGreaterThan(0);
      expect(s.share!).toBeLessThanOrEqual(1 + 0.02 / 0.3);
    } else expect(s.share).toBeUndefined();
  });
});
