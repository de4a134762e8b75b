import { describe, expect, it } from "vitest";
import { entriesText, Output } from "./output.js";

describe("entriesText", () => {
  it("counts a CRL's entries in words: 1 entry, 0 and 2 entries", () => {
    expect([0, 1, 2].map(entriesText)).toEqual(["0 entries", "1 entry", "2 entries"]);
  });
});

describe("Output.line (a --watch pass)", () => {
  const io = () => {
    let out = "";
    return { io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true }, env: {}, cwd: "/" }, out: () => out };
  };
  it("writes each result as one JSON document on a line of its own with --json (JSON Lines), and the text without", () => {
    const j = io();
    const json = new Output(j.io, true);
    json.line({ crls: [{ caId: "13-sig", number: 5n }], revoked: [] }, "text");
    json.line({ crls: [], revoked: [{ serial: "1b" }] }, "text");
    expect(j.out().split("\n")).toEqual(['{"crls":[{"caId":"13-sig","number":"5"}],"revoked":[]}', '{"crls":[],"revoked":[{"serial":"1b"}]}', ""]);
    const t = io();
    new Output(t.io, false).line({ a: 1 }, () => "one pass");
    expect(t.out()).toBe("one pass\n");
  });
});
