import { describe, expect, it } from "vitest";
import { Coalescer } from "./coalesce.js";

describe("Coalescer", () => {
  it("sends a lone read at once and gathers the reads made meanwhile into the next query", async () => {
    const queries: string[][] = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const c = new Coalescer<string>(async (keys) => {
      queries.push(keys);
      if (queries.length === 1) await held;
      return new Map(keys.filter((k) => k !== "none").map((k) => [k, `v${k}`]));
    });
    const first = c.get("a");
    await new Promise((r) => setImmediate(r));
    const rest = [c.get("b"), c.get("none"), c.get("b"), c.get("c")];
    release();
    expect(await Promise.all([first, ...rest])).toEqual(["va", "vb", undefined, "vb", "vc"]);
    expect(queries).toEqual([["a"], ["b", "none", "c"]]);
  });

  it("keeps queries to max keys, and a failed query fails only its own callers", async () => {
    const queries: string[][] = [];
    const c = new Coalescer<string>(
      async (keys) => {
        queries.push(keys);
        if (keys.includes("x")) throw new Error("boom");
        return new Map(keys.map((k) => [k, k]));
      },
      { max: 2 },
    );
    const out = await Promise.allSettled(["a", "b", "x", "d", "e"].map((k) => c.get(k)));
    expect(queries).toEqual([["a"], ["b", "x"], ["d", "e"]]);
    expect(out.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message))).toEqual(["a", "boom", "boom", "d", "e"]);
  });
});
