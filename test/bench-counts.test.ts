import { describe, expect, it } from "vitest";
import { countGc, gcCounts, minorFaults } from "../bench/counts.js";

/** A GCProfiler entry with the used sizes that matter here (heap, old space, large objects). */
function gc(gcType: string, before: { used: number; old: number }, after: { used: number; old: number }) {
  const side = (s: { used: number; old: number }) => ({
    heapStatistics: { usedHeapSize: s.used } as never,
    heapSpaceStatistics: [
      { spaceName: "new_space", spaceSize: 0, spaceUsedSize: s.used - s.old, spaceAvailableSize: 0, physicalSpaceSize: 0 },
      { spaceName: "old_space", spaceSize: 0, spaceUsedSize: s.old - 100, spaceAvailableSize: 0, physicalSpaceSize: 0 },
      { spaceName: "large_object_space", spaceSize: 0, spaceUsedSize: 100, spaceAvailableSize: 0, physicalSpaceSize: 0 },
    ],
  });
  return { gcType, cost: 1, beforeGC: side(before), afterGC: side(after) };
}

describe("bench/counts: collections, allocation and page faults of a section (issue bench)", () => {
  it("counts what the collections freed as allocated, and the old generation's growth in scavenges as promoted", () => {
    const stats = [
      // 16 MB young, 2 MB survive of which 1 MB is promoted
      gc("Scavenge", { used: 26e6, old: 10e6 }, { used: 12e6, old: 11e6 }),
      // incremental marking frees nothing and is no full collection
      gc("IncrementalMarking", { used: 20e6, old: 11e6 }, { used: 20e6, old: 11e6 }),
      // a full collection frees 6 MB of the old generation: not promotion
      gc("MarkSweepCompact", { used: 20e6, old: 11e6 }, { used: 14e6, old: 5e6 }),
      gc("Scavenge", { used: 24e6, old: 5e6 }, { used: 8e6, old: 5.5e6 }),
    ];
    // heap 10 MB at the start, 9 MB at the end; freed 14 + 0 + 6 + 16 MB
    expect(gcCounts(stats, 10e6, 9e6)).toEqual({ scavenges: 2, fullGcs: 1, allocatedBytes: 35e6, promotedBytes: 1.5e6 });
  });

  it("measures a live section's allocation: 40 MB of short-lived arrays show as at least that, in scavenges", () => {
    const done = countGc();
    let keep = 0;
    for (let i = 0; i < 10_000; i++) keep += new Array(500).fill(i).length; // ≈ 4 KB each, dead at once
    const c = done();
    expect(keep).toBe(5_000_000);
    expect(c.allocatedBytes).toBeGreaterThanOrEqual(40e6);
    expect(c.allocatedBytes).toBeLessThan(400e6);
    expect(c.scavenges).toBeGreaterThan(0);
  });

  it.runIf(process.platform === "linux")("counts the main thread's first touches of fresh memory", () => {
    const before = minorFaults()!;
    const fresh = Buffer.allocUnsafeSlow(32 << 20); // mmap'd: no page of it touched yet
    for (let i = 0; i < fresh.length; i += 4096) fresh[i] = 1;
    const after = minorFaults()!;
    // 8,192 pages of 4 KB; transparent huge pages (when "always") could make it 16 faults of 2 MB
    expect(after - before).toBeGreaterThanOrEqual(16);
    expect(minorFaults(-1)).toBeUndefined();
  });
});
