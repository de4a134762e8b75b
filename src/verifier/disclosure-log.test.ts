import { describe, expect, it } from "vitest";
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
