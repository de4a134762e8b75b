import { describe, expect, it, vi } from "vitest";
import { StoreWatchdog } from "../store/watchdog.js";
import type { DisclosureRecord, Store } from "../store/types.js";
import { DisclosureLog } from "./disclosure-log.js";

const rec = (n: number): DisclosureRecord => ({
  verifierId: "v-1", serial: n.toString(16), issuer: "13-sig", residentCode: "12345678906", purpose: "signature",
  legalBasis: undefined, at: new Date(n), validationTime: new Date(n), answer: "valid", itemsDisclosed: false,
});

function fakeStore(fail: () => boolean) {
  const calls: DisclosureRecord[][] = [];
  const store = {
    async appendDisclosures(records: readonly DisclosureRecord[]) {
      await new Promise((r) => setTimeout(r, 5));
      if (fail()) throw Object.assign(new Error("store away"), { code: "ERR_STORE_UNREACHABLE" });
      calls.push([...records]);
      return records.map(() => undefined);
    },
  } as unknown as Store;
  return { store, calls };
}

describe("the disclosure log's group commit", () => {
  it("resolves each record once written; records that arrive together share one write, later ones the next", async () => {
    const { store, calls } = fakeStore(() => false);
    const log = new DisclosureLog(store);
    await Promise.all([1, 2, 3].map((n) => log.record(rec(n))));
    expect(calls.map((c) => c.map((r) => r.serial))).toEqual([["1", "2", "3"]]);
    const first = log.record(rec(4));
    await new Promise((r) => setTimeout(r, 1)); // the write of 4 is under way
    const second = Promise.all([log.record(rec(5)), log.record(rec(6))]);
    await Promise.all([first, second]);
    expect(calls.slice(1).map((c) => c.map((r) => r.serial))).toEqual([["4"], ["5", "6"]]);
    expect(log.written).toBe(6);
  });

  it("a write that fails rejects every record of its group (no answer is given for them); the next group is written", async () => {
    let failing = true;
    const { store, calls } = fakeStore(() => failing);
    const log = new DisclosureLog(store);
    const failed = await Promise.allSettled([log.record(rec(1)), log.record(rec(2))]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    failing = false;
    await log.record(rec(3));
    expect(calls).toEqual([[rec(3)]]);
  });

  it("gives each caller the owner the store resolved for its own record", async () => {
    const store = {
      async appendDisclosures(records: readonly DisclosureRecord[]) {
        return records.map((r) => (Number.parseInt(r.serial, 16) % 2 ? { caId: "13-sig", residentCode: `r${r.serial}` } : undefined));
      },
    } as unknown as Store;
    const log = new DisclosureLog(store);
    expect(await Promise.all([1, 2, 3].map((n) => log.record({ ...rec(n), tbs: Buffer.from([n]) })))).toEqual([{ caId: "13-sig", residentCode: "r1" }, undefined, { caId: "13-sig", residentCode: "r3" }]);
  });

  it("close() waits for every record submitted", async () => {
    const { store, calls } = fakeStore(() => false);
    const log = new DisclosureLog(store);
    void log.record(rec(1));
    void log.record(rec(2));
    await log.close();
    expect(calls.flat()).toHaveLength(2);
  });
});

describe("the disclosure log under a store that does not answer (store/watchdog.ts)", () => {
  it("fails the group in flight and the records queued behind it past the bound, withdraws the queued ones, refuses new ones at once while the write hangs, and writes again once it settles", async () => {
    // The watchdog's clock is the test's: on the wall clock a host that took the process off the CPU for more than
    // the 50 ms bound after the stall let record 4 through as the stall's probe, where it must be refused.
    const clock = { t: 0 };
    const dog = new StoreWatchdog({ waitMs: 50, now: () => clock.t });
    let release!: () => void;
    const hang = new Promise<void>((r) => (release = r));
    const calls: Array<{ serials: string[]; deadline: number | undefined }> = [];
    const store = {
      async appendDisclosures(records: readonly DisclosureRecord[], o?: { deadline?: number }) {
        calls.push({ serials: records.map((r) => r.serial), deadline: o?.deadline });
        if (calls.length === 1) await hang; // a database server that stopped answering, then commits (PostgreSQL's case)
        return records.map(() => undefined);
      },
    } as unknown as Store;
    const log = new DisclosureLog(store, { watchdog: dog });
    try {
      const inFlight = [log.record(rec(1)), log.record(rec(2))].map((p) => p.then(() => "answered", (e: { code?: string }) => e.code));
      await vi.waitFor(() => expect(calls).toHaveLength(1));
      const queued = log.record(rec(3)).then(() => "answered", (e: { code?: string }) => e.code);
      clock.t += 50; // the bound passes: the next sweep declares the write late
      expect(await Promise.all([...inFlight, queued])).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
      // the write was told when it had to be done by (SQLite does not write past it)
      expect(calls[0]!.deadline).toEqual(expect.any(Number));
      // the store is stalled: a new record is refused at once, not queued behind the hung write
      expect(dog.stalled).toBe(true);
      await expect(log.record(rec(4))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      release();
      await vi.waitFor(() => expect(dog.stalled).toBe(false));
      expect(await log.record(rec(5))).toBeUndefined();
      // the queued and refused records were never handed to the store
      expect(calls.map((c) => c.serials)).toEqual([["1", "2"], ["5"]]);
    } finally {
      release();
      dog.close();
    }
  });

  it("abandons a write that never settles (a PostgreSQL connection whose server vanished): records are written beside it once the store answers, and its outcome, when it comes, answers no one", async () => {
    const dog = new StoreWatchdog({ waitMs: 50 });
    let release!: () => void;
    const hang = new Promise<void>((r) => (release = r));
    const calls: string[][] = [];
    const store = {
      async appendDisclosures(records: readonly DisclosureRecord[]) {
        calls.push(records.map((r) => r.serial));
        if (calls.length === 1) await hang; // only the first write hangs: the store's later connections answer
        return records.map(() => undefined);
      },
    } as unknown as Store;
    const log = new DisclosureLog(store, { watchdog: dog });
    try {
      const first = [log.record(rec(1)), log.record(rec(2))].map((p) => p.then(() => "answered", (e: { code?: string }) => e.code));
      expect(await Promise.all(first)).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
      expect(await log.close()).toEqual({ abandoned: 2, lost: 0 });
      // the watchdog's probe goes through within a bound or so, and is written though the first write still hangs
      // (one record at a time: refused at once until then; queued behind the hung write, one waited for good)
      let n = 10;
      let trying = false;
      let written: number | undefined;
      await vi.waitFor(
        () => {
          if (!trying) {
            const m = n++;
            trying = true;
            log.record(rec(m)).then(
              () => (written = m),
              () => (trying = false),
            );
          }
          expect(written).toBeDefined();
        },
        { timeout: 5_000, interval: 10 },
      );
      expect(dog.stalled).toBe(false);
      expect(await Promise.all([log.record(rec(20)), log.record(rec(21))])).toEqual([undefined, undefined]);
      // the refused records were never handed to the store
      expect(calls).toEqual([["1", "2"], [written!.toString(16)], ["20", "21"].map((x) => Number(x).toString(16))]);
      expect(log.written).toBe(3);
      expect(await log.close()).toEqual({ abandoned: 2, lost: 0 });
      // the abandoned write commits at last: counted as written (it is in the store), no longer abandoned; its
      // callers keep the 503 they were given
      release();
      await vi.waitFor(() => expect(log.written).toBe(5));
      expect(await log.close()).toEqual({ abandoned: 0, lost: 0 });
      expect(await Promise.all(first)).toEqual(["ERR_STORE_UNRESPONSIVE", "ERR_STORE_UNRESPONSIVE"]);
    } finally {
      release();
      dog.close();
    }
  });
});
