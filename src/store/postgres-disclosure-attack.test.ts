/**
 * The PostgreSQL disclosure log's per-resident index (migration 34) on an operator's bad day: several store objects
 * (each a pool and an indexer of its own, as `jpki serve --workers` processes or several hosts) appending at once
 * with raw writers holding ids open, relinks of both forms racing the batches, an indexer's backend terminated
 * mid-batch, close() while a batch is stuck, a copy taken while the log grows, and the upgrade from 33 under
 * appends. Whatever happened, in one snapshot: every record up to the mark is filed exactly once, under the code the
 * table gives it, nothing is filed above the mark, and each resident's view is the table's. Every wait is on what
 * the server shows (the mark, pg_stat_activity), never on time.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { admin, atSchema, indexFaults, items, migratedTemplate, NO_FAULTS } from "../../test/postgres-store-kit.js";
import { d, expectViewsWhole, INSERT_ONE, markOf, maxIdOf, PER_INDEX } from "../../test/disclosure-log-kit.js";
import { binDir } from "../../test/postgres-server.js";
import { usePostgres } from "../../test/use-postgres.js";
import { until } from "../../test/until.js";
import { copyStore } from "./copy.js";
import { PostgresStore } from "./postgres.js";

const server = usePostgres();

/**
 * Appends through `s` (a record at a time per tag from `next`) until the mark has caught up to within a batch of what
 * the log held when called: an append is what starts an indexer, so the log is kept growing until one has run.
 */
async function catchUp(s: PostgresStore, c: pg.Client, next: () => number, code = "r-tail"): Promise<void> {
  const target = (await maxIdOf(c)) - PER_INDEX;
  await until(async () => {
    if ((await markOf(c)) > target) return true;
    await s.appendDisclosures(Array.from({ length: 256 }, () => d(code, next())));
    return false;
  }, "an indexer to bring the mark to the log's end");
}


/**
 * Three appenders going on while a copy or a dump is taken (`s` once, `w` twice, as `jpki serve --workers` would):
 * groups of 128 records, a tenth without a resident, each record tagged by `next()`, at least 20 groups each.
 */
function appendAlong(s: PostgresStore, w: PostgresStore) {
  let tag = 0;
  let done = false;
  let appended = 0;
  const next = () => ++tag;
  const appender = async (st: PostgresStore, k: number) => {
    for (let g = 0; !done || g < 20; g++) {
      await st.appendDisclosures(Array.from({ length: 128 }, (_, i) => d(i % 10 === k ? undefined : `r${(i + g + k) % 30}`, next())));
      appended++;
    }
  };
  const running = Promise.all([appender(s, 0), appender(w, 1), appender(w, 2)]);
  running.catch(() => undefined); // awaited by stop()
  return {
    next,
    /** Until ten more groups are in after `what`. */
    async goOn(what: string): Promise<void> {
      const at = appended;
      await until(() => appended >= at + 10, `appends to go on after ${what}`);
    },
    async stop(): Promise<void> {
      done = true;
      await running;
    },
  };
}
describe("PostgreSQL disclosure log's per-resident index under attack (34)", () => {
  it("three stores appending at once (each with its own indexer) and raw writers holding ids open: every record is filed once under its code, every view is the table's", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const stores = await Promise.all([0, 1, 2].map(() => PostgresStore.open(url)));
    const held = await Promise.all([0, 1].map(() => admin(url)));
    const look = await admin(url);
    let tag = 0;
    const next = () => ++tag;
    let appended = 0;
    let done = false;
    try {
      // Each store: three appenders at once (its pool's connections), groups of 64, 40 residents and some of none.
      const appender = async (s: PostgresStore, k: number) => {
        for (let g = 0; g < 40; g++) {
          const recs = Array.from({ length: 64 }, (_, i) => d((i + g + k) % 9 === 0 ? undefined : `r${(i * 7 + g + k) % 40}`, next()));
          if (g % 5 === 4) await s.recordStatusChecks([], recs);
          else await s.appendDisclosures(recs);
          appended++;
        }
      };
      // A raw writer: draws an id, holds its transaction open while the stores append a few groups, commits (or, one
      // time in four, rolls back: an id that never commits must not hold the mark for good either).
      const holder = async (c: pg.Client, k: number) => {
        for (let n = 0; !done; n++) {
          await c.query("BEGIN");
          await c.query(INSERT_ONE, [`r${(n + k) % 40}`, next()]);
          const target = appended + 6;
          await until(() => done || appended >= target, "the stores to append while an id is held");
          await c.query(n % 4 === 3 ? "ROLLBACK" : "COMMIT");
        }
      };
      const holders = held.map((c, k) => holder(c, k));
      await Promise.all(stores.flatMap((s, i) => [0, 1, 2].map((k) => appender(s, i * 3 + k))));
      done = true;
      await Promise.all(holders);
      expect(await markOf(look)).toBeGreaterThan(0);
      await catchUp(stores[0]!, look, next);
      expect(await indexFaults(look)).toEqual(NO_FAULTS);
      for (const s of stores) await expectViewsWhole(s, look);
    } finally {
      done = true;
      for (const c of [...held, look]) await c.end();
      for (const s of stores) await s.close();
    }
  });

  it("relinks of both forms (set-wise, and a chain one by one) race batches and appends under the old and the new codes: the index follows the table", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const a = await PostgresStore.open(url);
    const b = await PostgresStore.open(url);
    const look = await admin(url);
    let tag = 0;
    const next = () => ++tag;
    let done = false;
    const codes = Array.from({ length: 24 }, (_, i) => `c${i}`);
    try {
      await b.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      // Appends (two stores, so two indexers) for every code, the old ones included after they moved away.
      // Each record's tag and code once its append has returned (committed): a relink started after must move it.
      const committed: Array<[number, string]> = [];
      const appender = async (s: PostgresStore, k: number) => {
        for (let g = 0; !done || g < 30; g++) {
          const recs = Array.from({ length: 128 }, (_, i) => d(codes[(i + g * 5 + k) % codes.length], next()));
          await s.appendDisclosures(recs);
          for (const r of recs) committed.push([r.at.getTime(), r.residentCode!]);
        }
      };
      /** Relinks `moves` (from → to, applied in order) and checks every record committed before it now names its code's end. */
      const relink = async (at: number, residentCodes: string[], moves: Array<{ from: string; to: string }>) => {
        const before = committed.slice();
        await b.commitNoticeBatch({ noticeIds: [], residentCodes }, () => ({
          commit: { at: new Date(at), notices: [], sequences: [], revocations: [], relinks: moves, dirtyCas: [] },
        }));
        const end = (code: string) => moves.reduce((c, m) => (m.from === c ? m.to : c), code);
        const want = before.filter(([, code]) => moves.some((m) => m.from === code));
        const got = new Map((await look.query<{ at: string; r: string }>("SELECT at, resident_code AS r FROM disclosures WHERE at = ANY($1::bigint[])", [want.map(([t]) => t)])).rows.map((x) => [Number(x.at), x.r]));
        expect(want.filter(([t, code]) => got.get(t) !== end(code)).length, `records left behind by ${JSON.stringify(moves)}`).toBe(0);
      };
      const appenders = [appender(a, 0), appender(a, 1), appender(b, 2)];
      // Relinks, from b while the log grows: c0 → c1 with c2 → c3 set-wise, then the chain c4 → c5 → c6 one by one,
      // and so on; each waits for the log to pass another batch, so batches run between and during them.
      let relinks = 0;
      for (let r = 0; r + 5 < codes.length; r += 6) {
        const [p, q, x, y, u, v] = codes.slice(r, r + 6) as [string, string, string, string, string, string];
        const target = (await maxIdOf(look)) + PER_INDEX;
        await until(async () => (await maxIdOf(look)) >= target, "the log to grow by a batch");
        await relink(9000 + r, [p, q, x, y], [{ from: p, to: q }, { from: x, to: y }]);
        await relink(9001 + r, [u, v, y], [{ from: u, to: v }, { from: v, to: y }]);
        relinks += 4;
      }
      done = true;
      await Promise.all(appenders);
      expect(relinks).toBe(16);
      expect(await markOf(look)).toBeGreaterThan(0);
      await catchUp(a, look, next, "c0");
      expect(await indexFaults(look)).toEqual(NO_FAULTS);
      await expectViewsWhole(a, look);
      await expectViewsWhole(b, look);
    } finally {
      done = true;
      await look.end();
      await a.close();
      await b.close();
    }
  });

  it("an indexer's backend terminated mid-batch (pg_terminate_backend, as a kill -9 of its process ends its session) writes nothing; a later one resumes and files every record once", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const blocker = await admin(url);
    const look = await admin(url);
    let tag = 0;
    const next = () => ++tag;
    try {
      // The batch's row for r-x with the batch's highest id is made to wait on its key: after the batch's snapshot
      // and its other rows, before its commit.
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ('r-x', $1, '{}')", [PER_INDEX]);
      await s.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(i === PER_INDEX - 1 ? "r-x" : `r${i % 11}`, next())));
      let pid = 0;
      await until(async () => {
        const r = await look.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO disclosures_by_resident%' AND pid <> pg_backend_pid()",
        );
        pid = r.rows[0]?.pid ?? 0;
        return pid > 0;
      }, "the batch to wait on the blocker's row");
      await look.query("SELECT pg_terminate_backend($1)", [pid]);
      await until(async () => (await look.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pid])).rows[0].n === 0, "the indexer's backend to end");
      await blocker.query("ROLLBACK");
      // Nothing of the cut batch: no row, no mark.
      expect(await markOf(look)).toBe(0);
      expect((await look.query("SELECT count(*)::int AS n FROM disclosures_by_resident")).rows[0].n).toBe(0);
      await expectViewsWhole(s, look);
      // The next appends start another (after the failed one's pause), which files the whole range once.
      await catchUp(s, look, next);
      expect(await markOf(look)).toBeGreaterThanOrEqual(PER_INDEX);
      expect(await indexFaults(look)).toEqual(NO_FAULTS);
      await expectViewsWhole(s, look);
    } finally {
      await blocker.end();
      await look.end();
      await s.close();
    }
  });

  it("close() while an indexer's batch is stuck on a lock returns (the close bound), and the batch it cut writes nothing", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    // lock_timeout far above the close bound: the stuck batch is still waiting when a close that keeps its bound returns.
    const s = await PostgresStore.open(url, { closeWaitMs: 200, lockTimeoutMs: 600_000 });
    const blocker = await admin(url);
    const look = await admin(url);
    try {
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ('r-x', $1, '{}')", [PER_INDEX]);
      await s.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(i === PER_INDEX - 1 ? "r-x" : `r${i % 11}`, i + 1)));
      await until(
        async () => (await look.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO disclosures_by_resident%'")).rows[0].n > 0,
        "the batch to wait on the blocker's row",
      );
      // The blocker still holds its row: a close that waited for the batch would not return until it let go.
      await s.close();
      const stuck = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO disclosures_by_resident%'";
      expect((await look.query(stuck)).rows[0].n, "close() returned only once the batch had stopped waiting").toBe(1);
      // Let the cut batch go on; its session is gone, so its transaction cannot commit.
      await blocker.query("ROLLBACK");
      await until(
        async () => (await look.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $1", [(blocker as unknown as { processID: number }).processID])).rows[0].n === 0,
        "the closed store's sessions to end",
      );
      expect(await markOf(look)).toBe(0);
      expect((await look.query("SELECT count(*)::int AS n FROM disclosures_by_resident")).rows[0].n).toBe(0);
      // A store opened after files it all.
      const t = await PostgresStore.open(url);
      try {
        let tag = PER_INDEX;
        await catchUp(t, look, () => ++tag);
        expect(await indexFaults(look)).toEqual(NO_FAULTS);
        await expectViewsWhole(t, look);
      } finally {
        await t.close();
      }
    } finally {
      await blocker.end();
      await look.end();
    }
  });

  it("a store copy taken while appends and indexing go on: source and copy each agree with their tables, and the copy holds the source's records as of its dump", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const w = await PostgresStore.open(url);
    const look = await admin(url);
    const load = appendAlong(s, w);
    const next = load.next;
    try {
      await until(async () => (await markOf(look)) > 0, "a first batch to be filed");
      const targetUrl = await server.createDatabase(await migratedTemplate(server));
      const t = await PostgresStore.open(targetUrl);
      const lookT = await admin(targetUrl);
      try {
        await copyStore(s, t, { chunkSize: 2000 });
        await load.goOn("the copy");
        await load.stop();
        expect(await indexFaults(lookT)).toEqual(NO_FAULTS);
        expect(await markOf(lookT)).toBe(await maxIdOf(lookT));
        // The copy's records are the source's first ones (codes and tags, in id order: a load numbers them anew),
        // as many as the dump read.
        const n = Number((await lookT.query("SELECT count(*) AS n FROM disclosures")).rows[0].n);
        expect(n).toBeGreaterThan(0);
        const sig = "SELECT md5(string_agg(coalesce(resident_code, '-') || ':' || at, ',' ORDER BY id)) AS h FROM (SELECT * FROM disclosures ORDER BY id LIMIT $1) x";
        expect((await lookT.query(sig, [n])).rows).toEqual((await look.query(sig, [n])).rows);
        await expectViewsWhole(t, lookT);
        await catchUp(s, look, next);
        expect(await indexFaults(look)).toEqual(NO_FAULTS);
        await expectViewsWhole(s, look);
      } finally {
        await lookT.end();
        await t.close();
      }
    } finally {
      await load.stop().catch(() => undefined);
      await look.end();
      await s.close();
      await w.close();
    }
  });

  it("a pg_dump taken while appends and indexing go on (what `jpki backup` runs), restored into a new database: the restored index agrees with its table, and its indexer goes on from the restored mark", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const w = await PostgresStore.open(url);
    const look = await admin(url);
    const dir = mkdtempSync(join(tmpdir(), "jpki-pgdisc-attack-"));
    const load = appendAlong(s, w);
    const next = load.next;
    try {
      await until(async () => (await markOf(look)) > 0, "a first batch to be filed");
      const u = new URL(url);
      const conn = ["--host", decodeURIComponent(u.searchParams.get("host")!), "--username", decodeURIComponent(u.username), "--no-password"];
      await promisify(execFile)(join(binDir(), "pg_dump"), ["--format=custom", `--file=${join(dir, "dump")}`, ...conn, decodeURIComponent(u.pathname.slice(1))]);
      await load.goOn("the dump");
      await load.stop();
      const targetUrl = await server.createDatabase();
      await promisify(execFile)(join(binDir(), "pg_restore"), ["--no-owner", ...conn, "--dbname", decodeURIComponent(new URL(targetUrl).pathname.slice(1)), join(dir, "dump")]);
      const lookT = await admin(targetUrl);
      const t = await PostgresStore.open(targetUrl);
      try {
        expect(await markOf(lookT)).toBeGreaterThan(0);
        expect(await indexFaults(lookT)).toEqual(NO_FAULTS);
        await expectViewsWhole(t, lookT);
        // The restored records are the source's under the same ids: those its snapshot saw (pg_dump keeps no writer
        // out, so a record in flight then, with an id below others it saw, is in the source alone).
        const ids = (await lookT.query<{ ids: string[] }>("SELECT array_agg(id ORDER BY id) AS ids FROM disclosures")).rows[0]!.ids;
        const sig = "SELECT md5(string_agg(id || ':' || coalesce(resident_code, '-') || ':' || at, ',' ORDER BY id)) AS h FROM disclosures WHERE id = ANY($1::bigint[])";
        expect((await lookT.query(sig, [ids])).rows).toEqual((await look.query(sig, [ids])).rows);
        let tt = 1_000_000;
        await catchUp(t, lookT, () => ++tt);
        expect(await indexFaults(lookT)).toEqual(NO_FAULTS);
        await expectViewsWhole(t, lookT);
      } finally {
        await lookT.end();
        await t.close();
      }
      await catchUp(s, look, next);
      expect(await indexFaults(look)).toEqual(NO_FAULTS);
    } finally {
      await load.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      await look.end();
      await s.close();
      await w.close();
    }
  });

  it("the upgrade from 33 with a log of 20,000 records while raw writers append (old processes): the upgrade waits for the held one only for the table's brief lock and files nothing; the catch-up after it files every record once, theirs included", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const writers = await Promise.all([0, 1, 2].map(() => admin(url)));
    const held = await admin(url);
    const look = await admin(url);
    let tag = 100_000;
    let done = false;
    let written = 0;
    try {
      await atSchema(c, 33);
      await c.query(`INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
                     SELECT 'v-01', '0a01', '13-sig', CASE WHEN g % 17 = 0 THEN NULL ELSE 'r' || (g % 50) END, 'signature', NULL, g, g, 'valid', false
                     FROM generate_series(1, 20000) g ORDER BY g`);
      // Old processes' appends: a transaction each of a few records, one of them kept open across another's commit.
      const writer = async (w: pg.Client, k: number) => {
        while (!done) {
          await w.query("BEGIN");
          for (let i = 0; i < 3; i++) await w.query(INSERT_ONE, [`r${(tag + k) % 50}`, ++tag]);
          await w.query("COMMIT");
          written++;
        }
      };
      const running = writers.map((w, k) => writer(w, k));
      await until(() => written >= 10, "the old writers to be appending");
      // One of them has drawn an id and not committed when the upgrade starts, while the others commit higher ones:
      // the upgrade waits for it (35's trigger takes the table's lock, in short tries), and the catch-up after it
      // must not mark the held record as filed before it commits.
      await held.query("BEGIN");
      const heldAt = ++tag;
      await held.query(INSERT_ONE, ["r-held", heldAt]);
      const past = written;
      await until(() => written >= past + 3, "the others to commit ids above the held one");
      // The upgrade, while they go on.
      let opened = false;
      const opening = PostgresStore.open(url).then((x) => ((opened = true), x));
      opening.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
      await until(
        async () => opened || (await look.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%LOCK TABLE disclosures%'")).rows[0].n > 0,
        "the upgrade to finish or to wait for the held writer",
      );
      await held.query("COMMIT");
      const s = await opening;
      try {
        const at = written;
        await until(() => written >= at + 10, "the old writers to append after the upgrade");
        done = true;
        await Promise.all(running);
        // The upgrade filed nothing: the log, the old writers' appends included, is above the mark, read from the
        // table through disclosures_resident, kept until the catch-up is done.
        expect(await markOf(look)).toBe(0);
        expect((await look.query("SELECT to_regclass('disclosures_resident') IS NOT NULL AS k")).rows[0].k).toBe(true);
        expect(await indexFaults(look)).toEqual(NO_FAULTS);
        await expectViewsWhole(s, look);
        expect((await s.listDisclosures({ residentCode: "r-held" })).map((x) => x.at.getTime())).toEqual([heldAt]);
        await catchUp(s, look, () => ++tag);
        expect(await markOf(look)).toBeGreaterThanOrEqual(20_000);
        await until(async () => (await look.query("SELECT to_regclass('disclosures_resident') IS NULL AS gone")).rows[0].gone, "the catch-up to drop disclosures_resident");
        expect(await indexFaults(look)).toEqual(NO_FAULTS);
        await expectViewsWhole(s, look);
      } finally {
        await s.close();
      }
    } finally {
      done = true;
      for (const x of [c, ...writers, held, look]) await x.end();
    }
  });
});
