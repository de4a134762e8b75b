/**
 * The upgrade from 33 of PostgreSQL's disclosure log (migration 34, migration34 in postgres.ts): it files nothing in
 * its own transaction and takes the table's lock only in short tries, so an older process's appends go on while it
 * runs; the existing log is filed by the indexer afterwards, in pages of their own, and disclosures_resident (which
 * readers use for the part above the mark meanwhile) goes once the mark has reached the end. Every wait is on what
 * the server shows (pg_stat_activity, the mark), never on time.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { admin, atSchema, indexFaults, items, NO_FAULTS } from "../../test/postgres-store-kit.js";
import { d, expectViewsWhole, INSERT_ONE, logAt33, markOf, maxIdOf, PER_INDEX, waitingOn } from "../../test/disclosure-log-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { until } from "../../test/until.js";
import { PostgresStore } from "./postgres.js";

const server = usePostgres();

const oldIndexKept = async (c: pg.Client) => (await c.query<{ k: boolean }>("SELECT to_regclass('disclosures_resident') IS NOT NULL AS k")).rows[0]!.k;

/** Until the mark has passed `through` and disclosures_resident is gone, appending a record through `s` each time (appends start the indexer). */
async function caughtUp(s: PostgresStore, c: pg.Client, through: number, next: () => number): Promise<void> {
  await until(async () => {
    if ((await markOf(c)) >= through && !(await oldIndexKept(c))) return true;
    await s.appendDisclosures([d("r-tail", next())]);
    return false;
  }, "the catch-up to reach the log's end and drop disclosures_resident");
}

describe("PostgreSQL disclosure log: the upgrade from 33 files the existing log off the upgrade's transaction (34)", () => {
  it("a new store, and one at 33 whose log is empty, have nothing to catch up: disclosures_resident goes with the upgrade itself", async () => {
    for (const at33 of [false, true]) {
      const url = await server.createDatabase();
      const c = await admin(url);
      try {
        if (at33) await atSchema(c, 33);
        await (await PostgresStore.open(url, { create: true })).close();
        expect(await oldIndexKept(c), at33 ? "at 33" : "new").toBe(false);
        expect(await markOf(c)).toBe(0);
      } finally {
        await c.end();
      }
    }
  });

  it("an older process's append held open keeps the upgrade waiting, not that process's other appends: they go in meanwhile; once it commits the upgrade ends having filed nothing, and the catch-up files every record once", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const held = await admin(url);
    const other = await admin(url);
    try {
      await logAt33(c, 3 * PER_INDEX + 100);
      // No limit of its own: a request queued behind the upgrade's would wait as long as the upgrade does.
      await other.query("SET lock_timeout = 0");
      // An older jpki serve's append in flight: its transaction holds ROW EXCLUSIVE on disclosures, uncommitted.
      await held.query("BEGIN");
      const heldId = Number((await held.query<{ id: string }>(INSERT_ONE, ["r-held", 900_001])).rows[0]!.id);
      // The upgrade, with a lock timeout no loaded host reaches: it must wait for the held append (35's trigger
      // needs the table's SHARE ROW EXCLUSIVE lock), however long that takes.
      let opened = false;
      const opening = PostgresStore.open(url, { lockTimeoutMs: 600_000 }).then((x) => ((opened = true), x));
      opening.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
      await until(async () => (await waitingOn(c, "%LOCK TABLE disclosures%")).length > 0, "the upgrade to ask for the table's lock");
      // The same process's next appends, while the held one is still open: each goes in, though the upgrade keeps
      // asking for its lock. (A plain LOCK, as the old 34 took, queues them all behind it until the held one ends.)
      let appended = 0;
      const appending = (async () => {
        for (let i = 0; i < 5; i++) {
          await other.query(INSERT_ONE, ["r-other", 900_100 + i]);
          appended++;
        }
      })();
      appending.catch(() => undefined);
      await until(() => appended === 5, "the other appends to go in while the held one is open");
      expect(opened).toBe(false);
      await held.query("COMMIT");
      const s = await opening;
      try {
        // The upgrade filed nothing and kept disclosures_resident: the whole log is above the mark, read from the table.
        expect(await markOf(c)).toBe(0);
        expect((await c.query("SELECT count(*)::int AS n FROM disclosures_by_resident")).rows[0].n).toBe(0);
        expect(await oldIndexKept(c)).toBe(true);
        await expectViewsWhole(s, c);
        // The catch-up: started by this store's appends, it files the log through its end, then drops the index.
        let tag = 1_000_000;
        const end = await maxIdOf(c);
        await caughtUp(s, c, end, () => ++tag);
        expect(await indexFaults(c)).toEqual(NO_FAULTS);
        expect((await c.query("SELECT ids FROM disclosures_by_resident WHERE resident_code = 'r-held'")).rows).toEqual([{ ids: [String(heldId)] }]);
        expect((await s.listDisclosures({ residentCode: "r-held" })).map((x) => x.at.getTime())).toEqual([900_001]);
        expect((await s.listDisclosures({ residentCode: "r-other" })).map((x) => x.at.getTime())).toEqual([900_100, 900_101, 900_102, 900_103, 900_104]);
        await expectViewsWhole(s, c);
        expect(s.disclosureIndex.failures).toBe(0);
      } finally {
        await s.close();
      }
    } finally {
      await held.query("ROLLBACK").catch(() => undefined);
      for (const x of [c, held, other]) await x.end();
    }
  });

  it("the catch-up of a log of several pages moves the mark page by page, and files every record once across its backend killed mid-page, a second store racing it and a relink waiting for the page", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const blocker = await admin(url);
    // Pages of one batch each: six pages for this log.
    const s = await (async () => {
      await logAt33(c, 6 * PER_INDEX - 50);
      return PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
    })();
    let w: PostgresStore | undefined;
    let tag = 1_000_000;
    const next = () => ++tag;
    try {
      expect(await markOf(c)).toBe(0);
      // The second page's first row, by the key it will take (resident, highest id), held uncommitted: that page's
      // INSERT waits for it, with the first page committed before it.
      const [row] = (
        await c.query<{ r: string; newest: string }>(
          `SELECT resident_code AS r, max(id) AS newest FROM disclosures WHERE id > ${PER_INDEX} AND id <= ${2 * PER_INDEX} AND resident_code IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1`,
        )
      ).rows;
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ($1, $2, '{}')", [row!.r, row!.newest]);
      await s.appendDisclosures([d("r-tail", next())]);
      await until(async () => (await waitingOn(c, "%INSERT INTO disclosures_by_resident%")).length > 0, "the second page to wait for the held key");
      // Page by page: the first is committed, with the mark at its end, while the second waits.
      expect(await markOf(c)).toBe(PER_INDEX);
      // A second store (another process) appends a batch's worth: its indexer waits for the mark's row, which the
      // stuck page holds.
      w = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
      await w.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(`r${i % 40}`, next())));
      await until(async () => (await waitingOn(c, "%indexed_through%FOR UPDATE%")).length > 0, "the second store's indexer to wait for the mark");
      // A relink (住民票コード変更) mid-catch-up, r1 → r99: it waits for the page (the mark's row, FOR SHARE), then
      // moves r1's records below the mark through the rows and the rest through the table.
      const r1 = Number((await c.query<{ n: number }>("SELECT count(*)::int AS n FROM disclosures WHERE resident_code = 'r1'")).rows[0]!.n);
      await s.upsertResidents(["r1", "r99"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const relinking = s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r1", "r99"] }, () => ({
        commit: { at: new Date(7000), notices: [], sequences: [], revocations: [], relinks: [{ from: "r1", to: "r99" }], dirtyCas: [] },
      }));
      relinking.catch(() => undefined); // awaited below
      await until(async () => (await waitingOn(c, "%indexed_through%FOR SHARE%")).length > 0, "the relink to wait for the page");
      // The first store's page killed mid-page (its process gone, to the server): it rolls back whole.
      const [stuck] = await waitingOn(c, "%INSERT INTO disclosures_by_resident%");
      await c.query("SELECT pg_terminate_backend($1)", [stuck]);
      await until(() => s.disclosureIndex.failures === 1, "the first store to see its run fail");
      await blocker.query("ROLLBACK");
      await relinking;
      // The second store goes on from the first page's mark through its own end; both keep appending meanwhile.
      await caughtUp(s, c, await maxIdOf(c), next);
      await w.appendDisclosures(Array.from({ length: 10 }, () => d("r-tail", next())));
      expect(await indexFaults(c)).toEqual(NO_FAULTS);
      await expectViewsWhole(s, c);
      await expectViewsWhole(w, c);
      expect((await s.listDisclosures({ residentCode: "r99", limit: 1_000_000 })).length).toBe(r1);
      expect(await s.listDisclosures({ residentCode: "r1" })).toEqual([]);
      // Filed once each, and every record of a resident up to the mark is filed.
      const [count] = (
        await c.query<{ filed: number; want: number }>(
          `SELECT (SELECT count(*)::int FROM disclosures_by_resident r CROSS JOIN LATERAL unnest(r.ids)) AS filed,
                  (SELECT count(*)::int FROM disclosures WHERE resident_code IS NOT NULL AND id <= (SELECT indexed_through FROM disclosure_index_state)) AS want`,
        )
      ).rows;
      expect(count!.filed).toBe(count!.want);
      expect(count!.want).toBeGreaterThan(6 * PER_INDEX - 50 - (6 * PER_INDEX) / 17);
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      await w?.close();
      await s.close();
      await blocker.end();
      await c.end();
    }
  });
});
