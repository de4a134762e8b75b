/**
 * The resident-code change walk (rows.ts codeChangeWalk, through codeChangedTo): the key-in-use check and the
 * application-id check follow the registry's successor codes with it. Bad data must end it: a loop of changes,
 * a chain longer than any resident's history, a successor that names no resident.
 */
import { describe, expect, it } from "vitest";
import { codeChangedTo, codeChangeWalk, peopleApart, successorsOf } from "./rows.js";
import type { SharedCertifiedKey } from "./types.js";

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

describe("peopleApart (jpki store check)", () => {
  const key = (...codes: string[]): SharedCertifiedKey => ({
    certifiedKey: codes.join(""),
    certificates: codes.map((residentCode, i) => ({ serial: `0${i}`, caId: "13-sig", type: "signature" as const, residentCode, notAfter: new Date(0) })),
  });
  const apart = (found: SharedCertifiedKey[], successors: Record<string, string>) => peopleApart(found, new Map(Object.entries(successors))).map((k) => k.certifiedKey);

  it("drops a key whose residents one chain of resident-code changes joins (either way round), keeps one with another person among them", () => {
    expect(apart([key("A", "B")], { A: "B" })).toEqual([]);
    expect(apart([key("B", "A")], { A: "B" })).toEqual([]);
    expect(apart([key("A", "C", "B")], { A: "B", B: "C" })).toEqual([]);
    // two people: A's chain never reaches X; a key of theirs and of A's new code is still a finding
    expect(apart([key("A", "X")], { A: "B" })).toEqual(["AX"]);
    expect(apart([key("A", "B", "X")], { A: "B" })).toEqual(["ABX"]);
    // two codes that both left for a third are one person too (A → C, B → C)
    expect(apart([key("A", "B")], { A: "C", B: "C" })).toEqual([]);
  });

  it("reads the successors a few rounds deep, each code once (successorsOf)", async () => {
    const asked: string[][] = [];
    const registry: Record<string, string> = { A: "B", B: "C", C: "A", X: "Y" };
    const got = await successorsOf(["A", "X"], async (codes) => (asked.push(codes), new Map(codes.filter((c) => registry[c]).map((c) => [c, registry[c]!]))));
    expect(Object.fromEntries(got)).toEqual(registry);
    expect(asked).toEqual([["A", "X"], ["B", "Y"], ["C"]]);
  });
});
