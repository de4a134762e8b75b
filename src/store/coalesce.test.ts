import { describe, expect, it } from "vitest";
import { Coalescer } from "./coalesce.js";

describe("Coalescer", () => {
  it("gathers the reads of one turn into one query, and those made while it runs into the next", async () => {
    const queries: string[][] = [];
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    const c = new Coalescer<string>(async (keys) => {
      queries.push(keys);
      if (queries.length === 1) await held;
      return new Map(keys.filter((k) => k !== "none").map((k) => [k, `v${k}`]));
    });
    const first = [c.get("a"), c.get("z")];
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r)); // the first query is now running, held
    const rest = [c.get("b"), c.get("none"), c.get("b"), c.get("c")];
    release();
    expect(await Promise.all([...first, ...rest])).toEqual(["va", "vz", "vb", undefined, "vb", "vc"]);
    expect(queries).toEqual([["a", "z"], ["b", "none", "c"]]);
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
    expect(queries).toEqual([["a", "b"], ["x", "d"], ["e"]]);
    expect(out.map((o) => (o.status === "fulfilled" ? o.value : (o.reason as Error).message))).toEqual(["a", "b", "boom", "boom", "e"]);
  });
});
