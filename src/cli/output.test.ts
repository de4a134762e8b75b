import { describe, expect, it } from "vitest";
import { entriesText, Output, upgradeProgress } from "./output.js";

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

describe("upgradeProgress (a store upgrade run by a command's store open)", () => {
  const run = (o: { tty: boolean; json: boolean }) => {
    let out = "";
    let err = "";
    let t = 0;
    const output = new Output({ stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s), isTTY: o.tty }, env: {}, cwd: "/" }, o.json);
    const report = upgradeProgress(output, () => t);
    const at = (ms: number, done: number, stage: "filling" | "indexing" | "done" = "filling") => {
      t = ms;
      report({ what: "certified keys", done, total: 200_000_000, stage });
    };
    return { at, out: () => out, err: () => err };
  };

  it("says nothing of an upgrade that ends within 2 s", () => {
    const r = run({ tty: false, json: false });
    r.at(500, 10_000);
    r.at(1900, 200_000_000, "done");
    expect([r.out(), r.err()]).toEqual(["", ""]);
  });

  it("off a terminal and with --json: a line on stderr once it takes 2 s, then one every 10 s, and the end; nothing on stdout", () => {
    for (const json of [false, true]) {
      const r = run({ tty: false, json });
      r.at(1000, 10_000);
      r.at(2500, 1_200_000);
      r.at(5000, 1_300_000);
      r.at(12_600, 2_000_000);
      r.at(13_000, 200_000_000, "indexing");
      r.at(14_000, 200_000_000, "done");
      expect(r.out()).toBe("");
      expect(r.err().split("\n")).toEqual([
        "upgrading the store: certified keys 1,200,000 / 200,000,000",
        "upgrading the store: certified keys 2,000,000 / 200,000,000",
        "upgrading the store: certified keys 200,000,000 / 200,000,000, building their index",
        "upgraded the store: certified keys 200,000,000",
        "",
      ]);
    }
  });

  it("on a terminal: one line rewritten in place, then cleared for the last", () => {
    const r = run({ tty: true, json: false });
    r.at(2500, 1_200_000);
    r.at(3000, 1_300_000);
    r.at(4000, 200_000_000, "done");
    expect(r.out()).toBe("");
    expect(r.err()).toBe(
      "\r\x1b[2Kupgrading the store: certified keys 1,200,000 / 200,000,000\r\x1b[2Kupgrading the store: certified keys 1,300,000 / 200,000,000\r\x1b[2Kupgraded the store: certified keys 200,000,000\n",
    );
  });
});
