/**
 * FinishedCrls.ended's store reads are the watched call's it begins in (store/watchdog.ts currentCall), those after
 * its own awaits too: one begun after an await was no call's, and on a PostgreSQL host gone silent it hung on its
 * pooled connection, never cut, until TCP gave up.
 */
import { describe, expect, it } from "vitest";
import { currentCall, StoreWatchdog, type WatchedCall } from "../store/watchdog.js";
import type { Workspace } from "../workspace/workspace.js";
import { FinishedCrls } from "./finished.js";

describe("FinishedCrls.ended in a watched call", () => {
  it("begins every store read as the call's: the CAs, each retired generation's last expiry and latest CRL, the link certificates", async () => {
    const seen: Array<[string, WatchedCall | undefined]> = [];
    const read =
      <T>(name: string, v: T) =>
      async () => {
        seen.push([name, currentCall()]);
        await new Promise((r) => setImmediate(r)); // an answer that takes a turn, as a store's does
        return v;
      };
    const ca = (id: string) => ({ id, prefectureCode: "13", purpose: "signature" });
    const ws = {
      clock: { now: () => new Date(1_000_000_000_000) },
      config: { expiredGraceDays: 0 },
      store: {
        // the generation not done first: the done one's term, from its certificate (none here), is worked out last
        listCas: read("listCas", [ca("13-sig-g2"), ca("13-sig"), ca("13-sig-g3")]),
        // the first generation is done (nothing left in force, its CRL after that), the second not yet
        lastCertificateExpiry: async (id: string) => read(`lastCertificateExpiry ${id}`, id === "13-sig" ? new Date(0) : new Date(2_000_000_000_000))(),
        latestCrl: async (id: string) => read(`latestCrl ${id}`, undefined)(),
        listCaLinks: read("listCaLinks", []),
      },
    } as unknown as Workspace;
    const dog = new StoreWatchdog({ waitMs: 5_000 });
    let call: WatchedCall | undefined;
    try {
      await dog.run("the CRL records", (_d, c) => {
        call = c;
        // it fails after its reads, which are all this looks at: the done generation's term needs its CA certificate
        return new FinishedCrls(ws).ended(new Set(["13-sig", "13-sig-g2"])).catch(() => undefined);
      });
    } finally {
      dog.close();
    }
    for (const [name, c] of seen) expect(c, name).toBe(call);
    expect(seen.map(([name]) => name).sort()).toEqual(["lastCertificateExpiry 13-sig", "lastCertificateExpiry 13-sig-g2", "latestCrl 13-sig", "latestCrl 13-sig-g2", "listCaLinks", "listCas"]);
  });
});
