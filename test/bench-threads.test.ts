import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cpuByGroup, sectionThreads, signingThreads, threadTicks, ticksBetween } from "../bench/threads.js";

describe("bench/threads: CPU per thread group (issue bench)", () => {
  const MAIN = 100;

  it("takes the threads that did the bulk of a raw signing round as the signing pool, not the main thread or a GC helper", () => {
    // main thread 50 ticks, two pool threads, two GC helpers with a few ticks each
    const raw = new Map([[MAIN, 50], [101, 400], [102, 380], [103, 6], [104, 2]]);
    expect([...signingThreads(raw, MAIN)].sort()).toEqual([101, 102]);
    // a round where only the main thread ran finds no signers (rather than calling a helper one)
    expect(signingThreads(new Map([[MAIN, 80], [103, 0]]), MAIN).size).toBe(0);
  });

  it("splits a section's CPU into main, signing and other threads, counting a thread born meanwhile from zero", () => {
    const before = new Map([[MAIN, 1000], [101, 5000], [102, 4000], [103, 70]]);
    // 105: the WAL checkpointer's worker, started during the section
    const after = new Map([[MAIN, 1150], [101, 5300], [102, 4290], [103, 90], [105, 25]]);
    const section = ticksBetween(before, after);
    expect(cpuByGroup(section, MAIN, new Set([101, 102]))).toEqual({ main: 1.5, signing: 5.9, other: 0.45 });
  });

  it.runIf(process.platform === "linux")("finds this process's own signing threads and its main thread's CPU", async () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const data = Buffer.alloc(1200, 7);
    const t0 = threadTicks()!;
    // ≈ 0.6 s of signing on libuv's pool (≈ 0.3 ms a signature here: 200 gave the pool 1–2 ticks a thread, the
    // GC helpers 1, too close to tell apart), and the main thread busy beside it for 0.1 s of its own CPU (not of
    // the wall clock: on a loaded machine it may be off a core most of the time)
    const signs = Array.from({ length: 2000 }, () => new Promise<void>((res, rej) => sign("sha256", data, privateKey, (e) => (e ? rej(e) : res()))));
    const main0 = t0.get(process.pid)!;
    // Busy on arithmetic, looking at its ticks every 100,000 steps (≈ 0.1 ms), not on the reads themselves: each read
    // of every thread's stat makes garbage, and read back to back they kept V8's GC helpers busy enough to pass the
    // signing pool's CPU on a loaded CI host (other 0.35 s against signing 0.24).
    let spin = 0;
    for (const until = Date.now() + 20_000; threadTicks()!.get(process.pid)! - main0 < 10 && Date.now() < until; ) for (let k = 0; k < 100_000; k++) spin = (spin * 31 + k) | 0;
    expect(typeof spin).toBe("number");
    await Promise.all(signs);
    const section = ticksBetween(t0, threadTicks()!);
    const signing = signingThreads(section, process.pid);
    expect(signing.size).toBeGreaterThan(0);
    expect(signing.has(process.pid)).toBe(false);
    const g = cpuByGroup(section, process.pid, signing);
    expect(g.signing).toBeGreaterThan(g.other);
    expect(g.main).toBeGreaterThanOrEqual(0.1);
  });
});

describe("bench/threads: a section's CPU by thread (notice bench)", () => {
  it("counts the main thread, the living others largest first (born in the section or not), and what threads that ended took", () => {
    const main = process.pid;
    // 201, 202: there before (GC helpers); 203: born in the section (the checkpointer); the reader thread ended in it,
    // so it is in no snapshot after: only the process's own count has its CPU
    const before = { ticks: new Map([[main, 1000], [201, 50], [202, 40]]), cpu: 20 };
    const after = { ticks: new Map([[main, 1300], [201, 70], [202, 40], [203, 30]]), cpu: 25.5 };
    const t = sectionThreads(before, after);
    expect(t.main).toBe(3);
    expect(t.others).toEqual([
      { tid: 203, seconds: 0.3, born: true },
      { tid: 201, seconds: 0.2, born: false },
    ]);
    expect(t.total).toBe(5.5);
    expect(t.ended).toBeCloseTo(2, 9);
    // ticks rounded up past the process's count: nothing ended, never a negative share
    expect(sectionThreads(before, { ...after, cpu: 23 }).ended).toBe(0);
  });
});

