import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import type { IssuanceCommitResult, IssuanceRecord } from "../store/types.js";
import { GroupCommitter } from "./group-commit.js";

const rec = (serial: string) => ({ serial }) as IssuanceRecord;
const ok: IssuanceCommitResult = { status: "committed", superseded: [] };

/** A commitIssuances stand-in that records each call's serials and can be held until released. */
function fakeStore(fails: (serials: string[]) => JpkiError | undefined = () => undefined) {
  const calls: string[][] = [];
  let hold: Promise<void> | undefined;
  let release = () => {};
  return {
    calls,
    hold() {
      hold = new Promise((r) => (release = r));
    },
    release: () => release(),
    commit: async (records: readonly IssuanceRecord[]) => {
      const serials = records.map((r) => r.serial);
      calls.push(serials);
      if (hold) await hold;
      const e = fails(serials);
      if (e) throw e;
      return records.map(() => ok);
    },
  };
}

describe("GroupCommitter", () => {
  it("commits records submitted together in one call, and those submitted meanwhile in the next, in order", async () => {
    const s = fakeStore();
    const g = new GroupCommitter(s.commit);
    s.hold();
    const first = [g.submit(rec("01")), g.submit(rec("02"))];
    await new Promise((r) => setImmediate(r)); // the first group is now committing
    const later = ["03", "04", "05"].map((x) => g.submit(rec(x)));
    s.release();
    expect(await Promise.all([...first, ...later])).toEqual([ok, ok, ok, ok, ok]);
    expect(s.calls).toEqual([["01", "02"], ["03", "04", "05"]]);
  });

  it("keeps groups to maxGroup records", async () => {
    const s = fakeStore();
    const g = new GroupCommitter(s.commit, { maxGroup: 2 });
    await Promise.all(["01", "02", "03", "04", "05"].map((x) => g.submit(rec(x))));
    expect(s.calls).toEqual([["01", "02"], ["03", "04"], ["05"]]);
  });

  it("with fullGroups waits for maxGroup records, until flush() commits the rest and whatever comes after", async () => {
    const s = fakeStore();
    const g = new GroupCommitter(s.commit, { maxGroup: 3, fullGroups: true });
    const five = ["01", "02", "03", "04", "05"].map((x) => g.submit(rec(x)));
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toEqual([["01", "02", "03"]]); // 04 and 05 wait for a third
    g.flush();
    await Promise.all(five);
    await g.submit(rec("06"));
    expect(s.calls).toEqual([["01", "02", "03"], ["04", "05"], ["06"]]);
  });

  it("when one record fails the transaction, commits the others on their own and fails only its caller", async () => {
    // like a taken serial: any transaction holding "bad" is rolled back whole
    const taken = new JpkiError("ERR_STORE", "store failure while committing issued certificates: duplicate key");
    const s = fakeStore((serials) => (serials.includes("bad") ? taken : undefined));
    const g = new GroupCommitter(s.commit);
    const out = await Promise.allSettled(["01", "bad", "03"].map((x) => g.submit(rec(x))));
    expect(out.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((out[1] as PromiseRejectedResult).reason).toBe(taken);
    expect(s.calls).toEqual([["01", "bad", "03"], ["01"], ["bad"], ["03"]]);
  });

  it("fails the whole group at once on an error that is the store's, not a record's", async () => {
    const down = new JpkiError("ERR_STORE_UNREACHABLE", "the database server cannot be reached");
    const s = fakeStore(() => down);
    const g = new GroupCommitter(s.commit);
    const out = await Promise.allSettled(["01", "02"].map((x) => g.submit(rec(x))));
    expect(out.map((o) => (o.status === "rejected" ? (o.reason as JpkiError).code : o.status))).toEqual(["ERR_STORE_UNREACHABLE", "ERR_STORE_UNREACHABLE"]);
    expect(s.calls).toEqual([["01", "02"]]);
    // and goes on committing afterwards
    const t = fakeStore();
    const h = new GroupCommitter(t.commit);
    await expect(h.submit(rec("03"))).resolves.toEqual(ok);
  });

  it("fails the whole group at once when the writer guard refuses it (ERR_STORE_UPGRADED: every record would be)", async () => {
    const upgraded = new JpkiError("ERR_STORE_UPGRADED", "the store was upgraded by a newer jpki while this process had it open");
    const s = fakeStore(() => upgraded);
    const g = new GroupCommitter(s.commit);
    const out = await Promise.allSettled(["01", "02", "03"].map((x) => g.submit(rec(x))));
    expect(out.map((o) => (o.status === "rejected" ? (o.reason as JpkiError).code : o.status))).toEqual(["ERR_STORE_UPGRADED", "ERR_STORE_UPGRADED", "ERR_STORE_UPGRADED"]);
    expect(s.calls).toEqual([["01", "02", "03"]]);
  });

  it("with durable, tells a caller only after the sync that follows its commit, and commits the next group meanwhile", async () => {
    const s = fakeStore();
    const syncs: Array<{ after: number; done: () => void }> = [];
    const durable = () => new Promise<void>((done) => syncs.push({ after: s.calls.length, done }));
    const g = new GroupCommitter(s.commit, { durable });
    let told = 0;
    const first = g.submit(rec("01")).then((r) => (told++, r));
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toEqual([["01"]]);
    expect(syncs.map((x) => x.after)).toEqual([1]); // the sync began after the commit
    expect(told).toBe(0); // committed, not yet on disk: not told
    const second = g.submit(rec("02"));
    await new Promise((r) => setImmediate(r));
    expect(s.calls).toEqual([["01"], ["02"]]); // not held back by the first group's sync
    syncs[0]!.done();
    expect(await first).toEqual(ok);
    expect(told).toBe(1);
    syncs[1]!.done();
    expect(await second).toEqual(ok);
  });

  it("with durable, a failed sync fails the callers of what it should have made durable", async () => {
    const s = fakeStore();
    const eio = new JpkiError("ERR_STORE", "store failure while syncing the workspace database: EIO");
    const g = new GroupCommitter(s.commit, { durable: () => Promise.reject(eio) });
    await expect(g.submit(rec("01"))).rejects.toBe(eio);
    // a durable step that throws instead of rejecting settles its callers all the same
    const h = new GroupCommitter(s.commit, {
      durable: () => {
        throw eio;
      },
    });
    await expect(h.submit(rec("02"))).rejects.toBe(eio);
  });
});
