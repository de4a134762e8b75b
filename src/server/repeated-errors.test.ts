import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import { RepeatedErrors, type RecoveredError } from "./repeated-errors.js";

describe("RepeatedErrors", () => {
  it("tells failures apart by code and message: one that stops is said to have stopped while another goes on", () => {
    let now = 0;
    const said: unknown[] = [];
    const stopped: RecoveredError[] = [];
    const r = new RepeatedErrors((e) => said.push(e), { now: () => now, everyMs: 1000, onRecovered: (x) => stopped.push(x) });
    const disk = new JpkiError("ERR_STORE", "disk I/O error", { details: { path: "/x" } });
    for (let round = 0; round < 3; round++, now += 400) {
      r.error(disk);
      if (round < 2) r.error(new Error("the Bridge's ARL: wrong passphrase"));
      r.roundEnd();
    }
    // round 0 says both; round 2 (800 ms on) says nothing new; the Bridge's failure stopped at round 2
    expect(said).toEqual([disk, expect.objectContaining({ message: "the Bridge's ARL: wrong passphrase" })]);
    expect(stopped).toEqual([{ code: "error", message: "the Bridge's ARL: wrong passphrase", times: 2, since: new Date(0) }]);
    now = 1200;
    r.error(disk);
    expect(said[2]).toMatchObject({ code: "ERR_STORE", details: { path: "/x" }, message: "disk I/O error (failing since 1970-01-01T00:00:00.000Z: 3 more times since it was last said)" });
  });
});
