import { describe, expect, it } from "vitest";
import { entriesText } from "./output.js";

describe("entriesText", () => {
  it("counts a CRL's entries in words: 1 entry, 0 and 2 entries", () => {
    expect([0, 1, 2].map(entriesText)).toEqual(["0 entries", "1 entry", "2 entries"]);
  });
});
