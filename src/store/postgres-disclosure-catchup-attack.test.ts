/**
 * The catch-up of PostgreSQL's disclosure log after the upgrade from 33 (migration34, #indexDisclosures' pages and
 * the DROP INDEX CONCURRENTLY of disclosures_resident after them) on an operator's bad day: the drop cut before it
 * began and while it waited (an INVALID index left behind), two stores paging at once with relinks of residents
 * whose records lie on both sides of the mark, an older jpki appending and relinking meanwhile, a store copy and a
 * pg_dump taken with the mark halfway, a copy started with a page in flight, the upgrade giving up at lock_timeout
 * behind an older process's append, and an older relink queued behind the upgrade's lock. Each ends in one
 * snapshot: every record up to the mark filed exactly once under the code the table gives it (and nothing above
 * it), and every resident's view the table's. Every wait is on what the server shows (pg_stat_activity, the mark,
 * the store's failure count), never on time.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { admin, indexFaults, items, migratedTemplate, NO_FAULTS, queriesDuring } from "../../test/postgres-store-kit.js";
import { d, INSERT_ONE, logAt33, markOf, maxIdOf, PER_INDEX, waitingOn } from "../../test/disclosure-log-kit.js";
import { binDir } from "../../test/postgres-server.js";
import { usePostgres } from "../../test/use-postgres.js";
import { until } from "../../test/until.js";
import { copyStore } from "./copy.js";
import { PostgresStore } from "./postgres.js";
import { PG_WRITER_GUARD_CONSTRAINT } from "./writer-guard.js";

const server = usePostgres();

/** disclosures_resident as the catalog has it: absent, or there and valid (usable by plans) or not. */
const oldIndex = async (c: pg.Client) =>
  (await c.query<{ valid: boolean }>("SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass('disclosures_resident')")).rows[0] ?? "absent";
const seenByRegclass = async (c: pg.Client) => (await c.query<{ k: boolean }>("SELECT to_regclass('disclosures_resident') IS NOT NULL AS k")).rows[0]!.k;
const countOf = async (c: pg.Client, code: string) => Number((await c.query<{ n: number }>("SELECT count(*)::int AS n FROM disclosures WHERE resident_code = $1", [code])).rows[0]!.n);

/**
 * The end of every test: in one snapshot, every record up to the mark filed exactly once under its current code and
 * nothing above it (indexFaults); and each resident's view, through each store, the table's.
 */
async function expectSettled(c: pg.Client, ...stores: PostgresStore[]): Promise<void> {
  expect(await indexFaults(c)).toEqual(NO_FAULTS);
  const want = (await c.query<{ r: string; ats: string[] }>("SELECT resident_code AS r, array_agg(at ORDER BY id) AS ats FROM disclosures WHERE resident_code IS NOT NULL GROUP BY resident_code")).rows;
  expect(want.length).toBeGreaterThan(0);
  for (const s of stores) {
    for (const { r, ats } of want) {
      expect((await s.listDisclosures({ residentCode: r, limit: 1_000_000 })).map((x) => x.at.getTime()), r).toEqual(ats.map(Number));
    }
  }
}

/** Until the mark has passed `through` and disclosures_resident is gone, appending 512 records through `s` each time (appends start the indexer). */
async function caughtUp(s: PostgresStore, c: pg.Client, through: number, next: () => number): Promise<void> {
  await until(async () => {
    if ((await markOf(c)) >= through && !(await seenByRegclass(c))) return true;
    await s.appendDisclosures(Array.from({ length: 512 }, () => d("r-tail", next())));
    return false;
  }, "the catch-up to reach the log's end and drop disclosures_resident");
}

/**
 * Holds, uncommitted in `blocker`, the key the catch-up's page `page` (1-based, of PER_INDEX ids from 0) gives its
 * first row: that page's INSERT waits for it, the pages before it committed.
 */
async function stallPage(c: pg.Client, blocker: pg.Client, page: number): Promise<void> {
  const [row] = (
    await c.query<{ r: string; newest: string }>(
      `SELECT resident_code AS r, max(id) AS newest FROM disclosures WHERE id > $1 AND id <= $2 AND resident_code IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1`,
      [(page - 1) * PER_INDEX, page * PER_INDEX],
    )
  ).rows;
  await blocker.query("BEGIN");
  await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ($1, $2, '{}')", [row!.r, row!.newest]);
}

const residents = (codes: string[]) => codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const }));

describe("PostgreSQL disclosure log: the catch-up after the upgrade from 33 under attack (34)", () => {
  for (const phase of ["before it began", "while it waited"] as const) {
    it(`the DROP INDEX CONCURRENTLY after the last page cut ${phase} (its backend terminated): the index is left ${phase === "before it began" ? "valid" : "INVALID, and no plan reads it"}; views stay whole, and a later run drops it`, async () => {
      const url = await server.createDatabase();
      const c = await admin(url);
      const hold = await admin(url);
      let tag = 1_000_000;
      const next = () => ++tag;
      await logAt33(c, 3 * PER_INDEX + 100);
      const s = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
      try {
        // A session on the table the drop has to wait for, held from before the catch-up: before it began, one
        // holding the lock CONCURRENTLY asks for first (a second DROP/VACUUM/ANALYZE would); while it waited, a reader
        // in an open transaction (a pg_dump, a long report), which the drop waits out after marking the index invalid.
        await hold.query("BEGIN");
        if (phase === "before it began") await hold.query("LOCK TABLE disclosures IN SHARE UPDATE EXCLUSIVE MODE");
        else await hold.query("SELECT count(*) FROM disclosures");
        await s.appendDisclosures([d("r-tail", next())]);
        const end = await maxIdOf(c);
        await until(async () => (await waitingOn(c, "%DROP INDEX CONCURRENTLY%")).length > 0, "the catch-up to reach the drop");
        // Every page is committed: the state a process killed between the last page and the drop leaves, or during it.
        expect(await markOf(c)).toBe(end);
        const [drop] = await waitingOn(c, "%DROP INDEX CONCURRENTLY%");
        await c.query("SELECT pg_terminate_backend($1)", [drop]);
        await until(() => s.disclosureIndex.failures === 1, "the store to see its run fail");
        await hold.query("ROLLBACK");
        const left = await oldIndex(c);
        expect(left).toEqual({ valid: phase === "before it began" });
        // Still seen by to_regclass (`kept`), so a later run drops it; and never read by a plan while invalid: the
        // view's own statement, planned at mark 0 (the whole log its tail, where a valid index is what plans take).
        expect(await seenByRegclass(c)).toBe(true);
        const { calls } = await queriesDuring(() => s.listDisclosures({ residentCode: "r1" }));
        const view = calls.map(([q]) => q as { text: string; values: unknown[] }).find((q) => typeof q === "object" && q.text?.includes("UNION ALL SELECT id FROM disclosures WHERE id >"));
        expect(view).toBeDefined();
        // Sequential scans priced out, so that only the index's validity decides (not statistics autovacuum may or may not have taken).
        await c.query("BEGIN");
        await c.query("SET LOCAL enable_seqscan = off");
        const plan = (await c.query<{ "QUERY PLAN": string }>(`EXPLAIN ${view!.text}`.replaceAll("$1", "'r1'").replaceAll("$2", "0").replaceAll("$3", "1000"))).rows.map((r) => r["QUERY PLAN"]).join("\n");
        await c.query("ROLLBACK");
        expect(plan.includes("disclosures_resident"), plan).toBe(phase === "before it began");
        await expectSettled(c, s);
        // The next run that files a page finds it kept and drops it (IF EXISTS: an invalid one as any).
        await caughtUp(s, c, end, next);
        expect(await oldIndex(c)).toBe("absent");
        await expectSettled(c, s);
      } finally {
        await hold.query("ROLLBACK").catch(() => undefined);
        await s.close();
        await hold.end();
        await c.end();
      }
    });
  }

  it("two stores paging at once, relinks (both forms, through each) of residents with records on both sides of the mark, and an older jpki appending and relinking: every record filed once under its code", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const blocker = await admin(url);
    const old = await admin(url);
    await logAt33(c, 6 * PER_INDEX - 50);
    const s = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
    const w = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
    let tag = 1_000_000;
    const next = () => ++tag;
    try {
      await s.upsertResidents(residents(["r1", "r2", "r3", "r4", "r5", "r6", "r41", "r42", "r43", "r44"]));
      const before = Object.fromEntries(await Promise.all(["r1", "r2", "r3", "r4", "r5", "r6"].map(async (r) => [r, await countOf(c, r)] as const)));
      // Pages 1 and 2 committed, the third stuck on a held key; the second store's run queued behind it.
      await stallPage(c, blocker, 3);
      await s.appendDisclosures([d("r-tail", next())]);
      await until(async () => (await waitingOn(c, "%INSERT INTO disclosures_by_resident%")).length > 0, "the third page to wait for the held key");
      expect(await markOf(c)).toBe(2 * PER_INDEX);
      await w.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(`r${i % 40}`, next())));
      await until(async () => (await waitingOn(c, "%indexed_through%FOR UPDATE%")).length > 0, "the second store's run to wait for the mark");
      // An older jpki meanwhile: its append goes in (filed later, above the mark now); its relink, in the same
      // transaction as another append, is refused by the guard and takes that append with it.
      const oldId = Number((await old.query<{ id: string }>(INSERT_ONE, ["r5", 900_001])).rows[0]!.id);
      await old.query("BEGIN");
      await old.query(INSERT_ONE, ["r5", 900_002]);
      const refused = await old.query("UPDATE disclosures SET resident_code = $1 WHERE resident_code = $2", ["r6", "r5"]).then(() => undefined, (e: unknown) => e);
      await old.query("ROLLBACK");
      expect(refused).toMatchObject({ code: "23514", constraint: PG_WRITER_GUARD_CONSTRAINT, table: "disclosures" });
      // Relinks through each store, queued on the mark (FOR SHARE) behind the stuck page: r1 → r41 with r2 → r42
      // set-wise through s; the chain r3 → r43 → r44 one by one through w. Every one of these residents has
      // records filed below the mark, in rows on both sides of the page edges, and above it in the table.
      const relinkThrough = (st: PostgresStore, at: number, moves: Array<{ from: string; to: string }>) =>
        st.commitNoticeBatch({ noticeIds: [], residentCodes: [...new Set(moves.flatMap((m) => [m.from, m.to]))] }, () => ({
          commit: { at: new Date(at), notices: [], sequences: [], revocations: [], relinks: moves, dirtyCas: [] },
        }));
      const relinking = [
        relinkThrough(s, 7000, [{ from: "r1", to: "r41" }, { from: "r2", to: "r42" }]),
        relinkThrough(w, 7001, [{ from: "r3", to: "r43" }, { from: "r43", to: "r44" }]),
      ];
      for (const r of relinking) r.catch(() => undefined); // awaited below
      await until(async () => (await waitingOn(c, "%indexed_through%FOR SHARE%")).length === 2, "both relinks to wait for the page");
      await blocker.query("ROLLBACK");
      await Promise.all(relinking);
      // Both stores go on paging (and appending) to the end.
      await caughtUp(s, c, await maxIdOf(c), next);
      await w.appendDisclosures(Array.from({ length: 10 }, () => d("r-tail", next())));
      expect(s.disclosureIndex.failures + w.disclosureIndex.failures).toBe(0);
      await expectSettled(c, s, w);
      // What each relink moved: every record of the code it left (those below the mark then and those above), none left behind.
      const w1 = PER_INDEX / 40; // the second store's batch gave each of r0 … r39 this many more, before the relinks
      expect([await countOf(c, "r1"), await countOf(c, "r2"), await countOf(c, "r3"), await countOf(c, "r43")]).toEqual([0, 0, 0, 0]);
      expect(await countOf(c, "r41")).toBeGreaterThanOrEqual(before.r1! + Math.floor(w1));
      expect(await countOf(c, "r42")).toBeGreaterThanOrEqual(before.r2! + Math.floor(w1));
      expect(await countOf(c, "r44")).toBeGreaterThanOrEqual(before.r3! + Math.floor(w1));
      expect((await s.listDisclosures({ residentCode: "r5", limit: 1_000_000 })).map((x) => x.at.getTime())).toContain(900_001);
      expect((await s.listDisclosures({ residentCode: "r5", limit: 1_000_000 })).map((x) => x.at.getTime())).not.toContain(900_002);
      expect((await c.query("SELECT count(*)::int AS n FROM disclosures_by_resident WHERE $1 = ANY(ids)", [oldId])).rows[0].n).toBe(1);
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      await w.close();
      await s.close();
      for (const x of [blocker, old, c]) await x.end();
    }
  });

  it("a store copy and a pg_dump taken with the catch-up left halfway (the paging backend killed): the copy is filed whole; the restore carries the mark, its rows and disclosures_resident, and its own catch-up finishes", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const blocker = await admin(url);
    const dir = mkdtempSync(join(tmpdir(), "jpki-catchup-attack-"));
    await logAt33(c, 4 * PER_INDEX);
    const s = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX } });
    let tag = 1_000_000;
    const next = () => ++tag;
    try {
      await stallPage(c, blocker, 2);
      await s.appendDisclosures([d("r-tail", next())]);
      await until(async () => (await waitingOn(c, "%INSERT INTO disclosures_by_resident%")).length > 0, "the second page to wait for the held key");
      expect(await markOf(c)).toBe(PER_INDEX);
      // The process paging killed there (its backend ended): the catch-up is left halfway, the first page committed.
      // (A dump taken while a page is in flight waits for it: its SHARE lock on disclosures_by_resident, as for any
      // writer, and it fails at lock_timeout with ERR_WORKSPACE_LOCKED if the page outlasts that.)
      const [stuck] = await waitingOn(c, "%INSERT INTO disclosures_by_resident%");
      await c.query("SELECT pg_terminate_backend($1)", [stuck]);
      await until(() => s.disclosureIndex.failures === 1, "the store to see its run fail");
      await blocker.query("ROLLBACK");
      expect(await markOf(c)).toBe(PER_INDEX);
      expect(await oldIndex(c)).toEqual({ valid: true });
      // `jpki store copy`: the target is filed by its load, wholly, whatever the source's mark.
      const targetUrl = await server.createDatabase(await migratedTemplate(server));
      const t = await PostgresStore.open(targetUrl);
      const lookT = await admin(targetUrl);
      try {
        await copyStore(s, t, { chunkSize: 2000 });
        expect(await markOf(lookT)).toBe(await maxIdOf(lookT));
        expect(await oldIndex(lookT)).toBe("absent");
        const sig = "SELECT md5(string_agg(coalesce(resident_code, '-') || ':' || at, ',' ORDER BY id)) AS h FROM disclosures";
        expect((await lookT.query(sig)).rows).toEqual((await c.query(sig)).rows);
        await expectSettled(lookT, t);
      } finally {
        await lookT.end();
        await t.close();
      }
      // `jpki backup`'s pg_dump: one snapshot, so the mark and the rows up to it as they were together.
      const u = new URL(url);
      const conn = ["--host", decodeURIComponent(u.searchParams.get("host")!), "--username", decodeURIComponent(u.username), "--no-password"];
      await promisify(execFile)(join(binDir(), "pg_dump"), ["--format=custom", `--file=${join(dir, "dump")}`, ...conn, decodeURIComponent(u.pathname.slice(1))]);
      const restoredUrl = await server.createDatabase();
      await promisify(execFile)(join(binDir(), "pg_restore"), ["--no-owner", ...conn, "--dbname", decodeURIComponent(new URL(restoredUrl).pathname.slice(1)), join(dir, "dump")]);
      const lookR = await admin(restoredUrl);
      const r = await PostgresStore.open(restoredUrl, { upgrade: { pageRows: PER_INDEX } });
      try {
        expect(await markOf(lookR)).toBe(PER_INDEX);
        expect(await oldIndex(lookR)).toEqual({ valid: true });
        await expectSettled(lookR, r);
        let tr = 2_000_000;
        await caughtUp(r, lookR, await maxIdOf(lookR), () => ++tr);
        await expectSettled(lookR, r);
      } finally {
        await lookR.end();
        await r.close();
      }
      // The source's next run goes on from its mark, and its catch-up finishes.
      await caughtUp(s, c, await maxIdOf(c), next);
      expect(s.disclosureIndex.failures).toBe(1);
      await expectSettled(c, s);
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      await s.close();
      await blocker.end();
      await c.end();
    }
  });

  it("an older process's append held open past the opener's lock_timeout: the upgrade gives up with ERR_WORKSPACE_LOCKED, nothing of 34 or 35 is left (still 33), the older process commits, and the next open upgrades and catches up", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const held = await admin(url);
    await logAt33(c, PER_INDEX + 100);
    try {
      await held.query("BEGIN");
      await held.query(INSERT_ONE, ["r-held", 900_001]);
      // 300 ms in all: three of lockBriefly's tries, each given up (the held append never ends meanwhile).
      const failed = await PostgresStore.open(url, { lockTimeoutMs: 300 }).then(
        async (x) => (await x.close(), undefined),
        (e: unknown) => e,
      );
      expect(failed).toMatchObject({ code: "ERR_WORKSPACE_LOCKED" });
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows).toEqual([{ value: "33" }]);
      expect(
        (
          await c.query(
            `SELECT to_regclass('disclosures_by_resident') IS NULL AS rows_gone, to_regclass('disclosure_index_state') IS NULL AS mark_gone,
                    to_regproc('jpki_disclosures_relink_guard') IS NULL AS guard_gone,
                    NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'disclosures'::regclass AND tgname = 'jpki_disclosures_relink_guard') AS trigger_gone`,
          )
        ).rows,
      ).toEqual([{ rows_gone: true, mark_gone: true, guard_gone: true, trigger_gone: true }]);
      expect(await oldIndex(c)).toEqual({ valid: true });
      // The older process was never in the way of its own: it commits, and appends again.
      await held.query("COMMIT");
      await held.query(INSERT_ONE, ["r-held", 900_002]);
      const s = await PostgresStore.open(url);
      try {
        expect(await markOf(c)).toBe(0);
        let tag = 1_000_000;
        await caughtUp(s, c, await maxIdOf(c), () => ++tag);
        expect((await s.listDisclosures({ residentCode: "r-held" })).map((x) => x.at.getTime())).toEqual([900_001, 900_002]);
        await expectSettled(c, s);
      } finally {
        await s.close();
      }
    } finally {
      await held.query("ROLLBACK").catch(() => undefined);
      await held.end();
      await c.end();
    }
  });

  it("an older jpki's relink and append queued behind the upgrade's granted lock (the upgrade held up after it): once the upgrade commits, the relink is refused by the guard it never saw planned, the append goes in, and the catch-up files it", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const x = await admin(url);
    const oldRelink = await admin(url);
    const oldAppend = await admin(url);
    await logAt33(c, PER_INDEX + 100);
    try {
      const before = [await countOf(c, "r5"), await countOf(c, "r6")];
      // Holds the upgrade after 35's lock is granted: a function of the guard's name and arguments made, uncommitted,
      // by another session, which 35's CREATE FUNCTION waits for (the catalog's unique key) with the table locked.
      await x.query("BEGIN");
      await x.query("CREATE FUNCTION jpki_disclosures_relink_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN RETURN NULL; END $fn$");
      const opening = PostgresStore.open(url, { lockTimeoutMs: 600_000 });
      opening.catch(() => undefined); // awaited below
      await until(async () => (await waitingOn(c, "%CREATE TRIGGER jpki_disclosures_relink_guard%")).length > 0, "the upgrade to wait with the table locked");
      expect((await c.query("SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'disclosures'::regclass AND mode = 'ShareRowExclusiveLock' AND granted")).rows[0].n).toBe(1);
      // An older jpki's relink (33's statement) and append, each queued behind that lock: planned, if at all, before the trigger exists.
      const relinking = oldRelink.query("UPDATE disclosures SET resident_code = $1 WHERE resident_code = $2", ["r6", "r5"]).then(() => undefined, (e: unknown) => e);
      const appending = oldAppend.query<{ id: string }>(INSERT_ONE, ["r7", 900_001]);
      appending.catch(() => undefined); // awaited below
      await until(async () => (await waitingOn(c, "%UPDATE disclosures SET resident_code%")).length > 0 && (await waitingOn(c, "%INSERT INTO disclosures %")).length > 0, "the old relink and append to queue behind the upgrade");
      await x.query("ROLLBACK");
      const s = await opening;
      try {
        expect(await relinking).toMatchObject({ code: "23514", constraint: PG_WRITER_GUARD_CONSTRAINT, table: "disclosures" });
        const appendedId = Number((await appending).rows[0]!.id);
        expect([await countOf(c, "r5"), await countOf(c, "r6")]).toEqual(before);
        expect(await markOf(c)).toBe(0);
        let tag = 1_000_000;
        await caughtUp(s, c, await maxIdOf(c), () => ++tag);
        expect((await c.query("SELECT resident_code AS r FROM disclosures_by_resident WHERE $1 = ANY(ids)", [appendedId])).rows).toEqual([{ r: "r7" }]);
        await expectSettled(c, s);
      } finally {
        await s.close();
      }
    } finally {
      await x.query("ROLLBACK").catch(() => undefined);
      for (const y of [x, oldRelink, oldAppend, c]) await y.end();
    }
  });

  it("a store copy started while a catch-up page is in flight waits for that page (its SHARE lock on disclosures_by_resident), then copies every record and files them all in the target; the source's catch-up goes on after it", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const blocker = await admin(url);
    await logAt33(c, 3 * PER_INDEX);
    // No loaded host's dump outlasts this: the page after the stuck one waits for the copy's whole read (the dump's
    // SHARE lock on disclosures_by_resident against the page's ROW EXCLUSIVE), and fails at lock_timeout if it is longer.
    const s = await PostgresStore.open(url, { upgrade: { pageRows: PER_INDEX }, lockTimeoutMs: 600_000 });
    const targetUrl = await server.createDatabase(await migratedTemplate(server));
    const t = await PostgresStore.open(targetUrl);
    const lookT = await admin(targetUrl);
    let tag = 1_000_000;
    const next = () => ++tag;
    try {
      await stallPage(c, blocker, 2);
      await s.appendDisclosures([d("r-tail", next())]);
      await until(async () => (await waitingOn(c, "%INSERT INTO disclosures_by_resident%")).length > 0, "the second page to wait for the held key");
      const copying = copyStore(s, t, { chunkSize: 2000 });
      copying.catch(() => undefined); // awaited below
      // The dump's SHARE lock on disclosures_by_resident waits for the page's transaction.
      await until(async () => (await waitingOn(c, "%LOCK TABLE%IN SHARE MODE%")).length > 0, "the copy to wait for the page");
      expect(await markOf(c)).toBe(PER_INDEX);
      await blocker.query("ROLLBACK");
      await copying;
      // The copy read after the second page committed; whatever it read, its load filed it all.
      expect(await markOf(lookT)).toBe(await maxIdOf(lookT));
      const n = Number((await lookT.query("SELECT count(*) AS n FROM disclosures")).rows[0].n);
      const sig = "SELECT md5(string_agg(coalesce(resident_code, '-') || ':' || at, ',' ORDER BY id)) AS h FROM (SELECT * FROM disclosures ORDER BY id LIMIT $1) x";
      expect((await lookT.query(sig, [n])).rows).toEqual((await c.query(sig, [n])).rows);
      expect(n).toBe(3 * PER_INDEX + 1);
      await expectSettled(lookT, t);
      await caughtUp(s, c, await maxIdOf(c), next);
      expect(s.disclosureIndex.failures).toBe(0);
      await expectSettled(c, s);
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      await lookT.end();
      await t.close();
      await s.close();
      await blocker.end();
      await c.end();
    }
  });
});
