import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import { mayHaveBeenWritten, UnknownWrites } from "./write-outcome.js";

const lost = new JpkiError("ERR_STORE_UNREACHABLE", "reset", { details: { reason: "network", connectionLost: "after-sending" } });
const cut = new JpkiError("ERR_STORE_UNRESPONSIVE", "cut", { details: { lateCall: "connection-closed" } });
const notSent = new JpkiError("ERR_STORE_UNRESPONSIVE", "not sent", { details: { lateCall: "not-sent" } });
const refused = new JpkiError("ERR_STORE_UNREACHABLE", "refused", { details: { reason: "network", code: "ECONNREFUSED" } });

describe("write outcomes (store/write-outcome.ts)", () => {
  it("a write may have been written only when it was sent and its connection then closed or lost", () => {
    expect([lost, cut, notSent, refused, new Error("x"), undefined].map(mayHaveBeenWritten)).toEqual([true, true, false, false, false, false]);
  });

  it("counts an abandoned write until it settles known (written, or failed unsent), for good when it may have been written; a failed one only when it may have been written", async () => {
    const u = new UnknownWrites();
    const settle = () => new Promise((r) => setImmediate(r));
    const written = Promise.resolve();
    const unsent = Promise.reject(notSent);
    const maybe = Promise.reject(cut);
    u.abandoned(1, written);
    u.abandoned(2, unsent);
    u.abandoned(4, maybe);
    expect(u.counts).toEqual({ abandoned: 7, lost: 0 });
    await settle();
    expect(u.counts).toEqual({ abandoned: 4, lost: 0 });
    u.failed(8, refused);
    u.failed(16, lost);
    expect(u.counts).toEqual({ abandoned: 4, lost: 16 });
  });
});
