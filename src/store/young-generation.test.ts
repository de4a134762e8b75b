import { describe, expect, it } from "vitest";
import { collectYoungGeneration } from "./young-generation.js";

describe("collectYoungGeneration", () => {
  it("frees the memory of Buffers already dropped, so the next ones reuse it", () => {
    // Buffers of 1 MiB, dropped at once: without a collection their memory stays taken (nothing else allocates
    // enough here to make V8 collect), with one after each batch it is given back and taken again.
    const external = () => process.memoryUsage().arrayBuffers;
    const batch = () => {
      for (let i = 0; i < 8; i++) Buffer.alloc(1 << 20, i).fill(i + 1);
    };
    collectYoungGeneration();
    const before = external();
    for (let round = 0; round < 8; round++) {
      batch();
      collectYoungGeneration();
    }
    // 64 MiB went through; what is left held is at most about one batch
    expect(external() - before).toBeLessThan(16 << 20);
  });
});
