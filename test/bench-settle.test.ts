import { describe, expect, it } from "vitest";
import { median, poolDrained, settle, settleText, untilQuiet } from "../bench/settle.js";

/** A clock that moves only when the fake timer waits, and CPU readings given in advance (ns). */
function scripted(readings: Array<number | undefined>) {
  let t = 0;
  let i = 0;
  return {
    cpuNs: () => readings[Math.min(i++, readings.length - 1)],
    wait: async (ms: number) => void (t += ms),
    now: () => t,
    reads: () => i,
  };
}

const OPTS = { intervalMs: 50, share: 0.05, maxLooks: 5 };
const MS = 1e6;

describe("bench/settle: between the issue bench's rounds", () => {
  it("waits until the other threads used at most the share of a core between two looks", async () => {
    // 50 ms looks, 5 % = 2.5 ms of CPU: 40 ms busy, then 30, then 2 (quiet)
    const s = scripted([0, 40 * MS, 70 * MS, 72 * MS, 200 * MS]);
    expect(await untilQuiet(s.cpuNs, OPTS, s.wait, s.now)).toEqual({ looks: 3, quiet: true });
    expect(s.reads()).toBe(4); // it stopped looking once quiet
  });

  it("counts a look at exactly the share as quiet, and one just above it as busy", async () => {
    const at = scripted([0, 2.5 * MS]);
    expect(await untilQuiet(at.cpuNs, OPTS, at.wait, at.now)).toEqual({ looks: 1, quiet: true });
    const above = scripted([0, 2.6 * MS, 2.6 * MS]);
    expect(await untilQuiet(above.cpuNs, OPTS, above.wait, above.now)).toEqual({ looks: 2, quiet: true });
  });

  it("gives up after maxLooks when the threads stay busy, and says so", async () => {
    let ns = 0;
    let t = 0;
    const r = await untilQuiet(() => (ns += 30 * MS), OPTS, async (ms) => void (t += ms), () => t);
    expect(r).toEqual({ looks: 5, quiet: false });
  });

  it("has nothing to wait for where there is nothing to read (off Linux)", async () => {
    const s = scripted([undefined]);
    expect(await untilQuiet(s.cpuNs, OPTS, s.wait, s.now)).toEqual({ looks: 0, quiet: undefined });
  });

  it("runs the steps one after the other, each finished before the next begins, and times each", async () => {
    let t = 0;
    const order: string[] = [];
    let release: (() => void) | undefined;
    const first = new Promise<void>((r) => (release = r));
    const done = settle(
      [
        ["checkpoint", () => first.then(() => void order.push("checkpoint done"))],
        ["quiet", () => (order.push("quiet"), "2 looks")],
      ],
      () => t,
    );
    await Promise.resolve();
    expect(order).toEqual([]); // the second step waits for the first
    t = 30;
    release!();
    const steps = await done;
    expect(order).toEqual(["checkpoint done", "quiet"]);
    expect(steps).toEqual([
      { name: "checkpoint", ms: 30 },
      { name: "quiet", ms: 0, note: "2 looks" },
    ]);
    expect(settleText(steps)).toBe("checkpoint 30 ms, quiet 0 ms (2 looks)");
  });

  it("takes the middle round, or the mean of the two middle ones", () => {
    expect(median([450, 382, 385])).toBe(385);
    expect(median([3, 1, 4, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it("finds libuv's pool drained once jobs queued behind what was there have run", async () => {
    await expect(poolDrained(2)).resolves.toBeUndefined();
  });
});
