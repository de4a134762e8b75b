/**
 * The resident-code change walk (rows.ts codeChangeWalk, through codeChangedTo): the key-in-use check and the
 * application-id check follow the registry's successor codes with it. Bad data must end it: a loop of changes,
 * a chain longer than any resident's history, a successor that names no resident.
 */
import { describe, expect, it } from "vitest";
import { codeChangedTo, codeChangeWalk } from "./rows.js";

/** codeChangedTo over `successors`, counting the registry reads it made. */
function walk(successors: Record<string, string>, from: string, to: string): { reached: boolean; reads: string[] } {
  const reads: string[] = [];
  const reached = codeChangedTo(from, to, (code) => (reads.push(code), successors[code]));
  return { reached, reads };
}

/** A0 → A1 → … → An. */
const chain = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`A${i}`, `A${i + 1}`]));

describe("codeChangeWalk", () => {
  it("reaches a code changed to, through a few changes", () => {
    expect(walk(chain(3), "A0", "A3")).toEqual({ reached: true, reads: ["A0", "A1", "A2"] });
    expect(walk(chain(3), "A1", "A3").reached).toBe(true);
    // not backwards: A3 never changed to A0
    expect(walk(chain(3), "A3", "A0")).toEqual({ reached: false, reads: ["A3"] });
  });

  it("ends a loop of changes at the first code seen again (each read once), the code sought in it or not", () => {
    expect(walk({ A: "B", B: "A" }, "A", "C")).toEqual({ reached: false, reads: ["A", "B"] });
    expect(walk({ A: "A" }, "A", "C")).toEqual({ reached: false, reads: ["A"] });
    expect(walk({ A: "B", B: "C", C: "B" }, "A", "D")).toEqual({ reached: false, reads: ["A", "B", "C"] });
    expect(walk({ A: "B", B: "C", C: "A" }, "A", "C").reached).toBe(true);
  });

  it("ends at a successor that names no resident, and follows at most 8 changes", () => {
    expect(walk({ A: "GONE" }, "A", "C")).toEqual({ reached: false, reads: ["A", "GONE"] });
    expect(walk(chain(8), "A0", "A8").reached).toBe(true);
    const long = walk(chain(100), "A0", "A100");
    expect(long).toEqual({ reached: false, reads: ["A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7"] });
  });

  it("asks nothing more once it is done (the asynchronous caller's side of the walk)", () => {
    const w = codeChangeWalk("A", "B");
    expect(w.next()).toEqual({ done: false, value: "A" });
    expect(w.next("B")).toEqual({ done: true, value: true });
    expect(w.next("X")).toEqual({ done: true, value: undefined });
  });
});
