/**
 * The PostgreSQL disclosure log's per-resident index (migration 34), under concurrency: kept apart from the table and
 * brought up to date in batches (#indexDisclosures), it must never lose a record from a resident's view — not one
 * that commits after the batch with a lower id (ids come from a sequence and commit out of order), not one a relink
 * moves while the batch runs. Each case holds a transaction open on a connection of its own to make the order that
 * would lose it, and waits on what the server shows (pg_stat_activity, the mark), never on time.
 */
import { describe, expect, it } from "vitest";
import { admin, items, migratedTemplate } from "../../test/postgres-store-kit.js";
import { d, expectViewsWhole, INSERT_ONE, markOf, PER_INDEX, waitingOn } from "../../test/disclosure-log-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { until } from "../../test/until.js";
import type { JpkiError } from "../errors.js";
import { PostgresStore } from "./postgres.js";

const server = usePostgres();

describe("PostgreSQL disclosure log: the per-resident index under concurrent appends and relinks (34)", () => {
  it("never marks as indexed a record that commits after the batch with a lower id: the batch waits for the transaction holding it, and the resident's view lists it", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const held = await admin(url);
    const look = await admin(url);
    try {
      // A writer draws an id and keeps its transaction open (a --workers process, another host) ...
      await held.query("BEGIN");
      const heldId = Number((await held.query<{ id: string }>(INSERT_ONE, ["r-held", 1])).rows[0]!.id);
      // ... while this store appends a batch's worth above it and commits: the index falls due.
      await s.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(`r${i % 50}`, i + 2)));
      // Either the batch ran already (the mark moved: what a rule that skips the open transaction does), or it is
      // waiting for the held transaction to end: its poll (pg_locks for the holders it found, `v = ANY`), run only
      // while one is left, is the last statement of its session.
      await until(
        async () =>
          (await markOf(look)) > 0 ||
          (await look.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%v = ANY%'")).rows[0]!.n > 0,
        "the indexer to run or to wait",
      );
      expect(await markOf(look)).toBe(0);
      await held.query("COMMIT");
      await until(async () => (await markOf(look)) > heldId, "the indexer to move the mark past the held record");
      expect(await markOf(look)).toBe(PER_INDEX + 1);
      // Below the mark now, so read through the index rows only: it is there.
      expect((await s.listDisclosures({ residentCode: "r-held" })).map((x) => x.at.getTime())).toEqual([1]);
      expect((await look.query("SELECT ids FROM disclosures_by_resident WHERE resident_code = 'r-held'")).rows).toEqual([{ ids: [String(heldId)] }]);
      await expectViewsWhole(s, look);
    } finally {
      await held.end();
      await look.end();
      await s.close();
    }
  });

  it("a relink (住民票コード変更) waits for a batch between its read of the records and its commit, so a moved record is filed under the code it moved to", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const blocker = await admin(url);
    const look = await admin(url);
    try {
      await s.upsertResidents(["r-from", "r-to"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      // The batch's rows for r-from: the one with the highest id of the batch (r-from's last record) is made to wait
      // on its unique key — after the batch read the records (its snapshot), before it commits.
      const records = Array.from({ length: PER_INDEX }, (_, i) => d(i % 2 ? "r-from" : `r${i % 7}`, i + 1));
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ('r-from', $1, '{}')", [PER_INDEX]);
      await s.appendDisclosures(records);
      await until(async () => (await waitingOn(look, "%INSERT INTO disclosures_by_resident%")).length > 0, "the batch to wait on the blocker's row");
      // The relink now: it must wait for the batch (the mark's row), not move the records the batch has read.
      let relinked = false;
      const relink = s
        .commitNoticeBatch({ noticeIds: [], residentCodes: ["r-from", "r-to"] }, () => ({
          commit: { at: new Date(9000), notices: [], sequences: [], relinks: [{ from: "r-from", to: "r-to" }], dirtyCas: [], revocations: [] },
        }))
        .then(() => (relinked = true));
      await until(async () => relinked || (await waitingOn(look, "%disclosure_index_state%FOR SHARE%")).length > 0, "the relink to finish or to wait for the batch");
      expect(relinked).toBe(false);
      await blocker.query("ROLLBACK");
      await relink;
      await until(async () => (await markOf(look)) === PER_INDEX, "the batch to commit");
      const moved = records.filter((r) => r.residentCode === "r-from").map((r) => r.at.getTime());
      expect((await s.listDisclosures({ residentCode: "r-to", limit: 100_000 })).map((x) => x.at.getTime())).toEqual(moved);
      expect(await s.listDisclosures({ residentCode: "r-from" })).toEqual([]);
      expect((await look.query("SELECT count(*)::int AS n FROM disclosures_by_resident WHERE resident_code = 'r-from'")).rows[0]).toEqual({ n: 0 });
      await expectViewsWhole(s, look);
    } finally {
      await blocker.end();
      await look.end();
      await s.close();
    }
  });

  it("an indexer run that fails is said (Store.disclosureIndex: a count, how far behind, the error to a listener, no resident's data) and retried once more records come", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    // A short lock wait: the indexer's batch fails on the mark's row held below, not after the default 20 s.
    const s = await PostgresStore.open(url, { lockTimeoutMs: 100 });
    const blocker = await admin(url);
    const look = await admin(url);
    const heard: JpkiError[] = [];
    try {
      const watch = s.disclosureIndex;
      watch.onFailure = (e) => heard.push(e);
      expect([watch.failures, watch.behind]).toEqual([0, 0]);
      await blocker.query("BEGIN");
      await blocker.query("SELECT indexed_through FROM disclosure_index_state WHERE id = 1 FOR UPDATE");
      await s.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(`r-secret-${i % 5}`, i + 1)));
      await until(async () => s.disclosureIndex.failures > 0, "the indexer to fail on the held mark");
      expect(s.disclosureIndex.failures).toBe(1);
      expect(s.disclosureIndex.behind).toBe(PER_INDEX);
      expect(heard.map((e) => e.code)).toEqual(["ERR_WORKSPACE_LOCKED"]);
      expect(JSON.stringify({ m: heard[0]!.message, d: heard[0]!.details })).not.toMatch(/r-secret/);
      expect(await markOf(look)).toBe(0);
      // Not retried on the next append already (a failing indexer is not run for every group) ...
      await s.appendDisclosures([d("r-secret-0", PER_INDEX + 1)]);
      expect(s.disclosureIndex.failures).toBe(1);
      await blocker.query("ROLLBACK");
      // ... but once a quarter batch more is appended: it catches up, and is no longer behind.
      await s.appendDisclosures(Array.from({ length: PER_INDEX / 4 }, (_, i) => d(`r-secret-${i % 5}`, PER_INDEX + 2 + i)));
      await until(async () => (await markOf(look)) > 0, "the indexer to run again");
      expect(await markOf(look)).toBe(PER_INDEX + 1 + PER_INDEX / 4);
      await until(async () => s.disclosureIndex.behind === 0, "the store to see the mark it moved");
      expect([s.disclosureIndex.failures, s.disclosureIndex.behind, heard.length]).toEqual([1, 0, 1]);
      await expectViewsWhole(s, look);
    } finally {
      await blocker.end();
      await look.end();
      await s.close();
    }
  });

  it("an indexer that finds the mark moved by another short of its own target files nothing and keeps the mark it found, so its next batch falls due on time", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const a = await PostgresStore.open(url);
    const b = await PostgresStore.open(url);
    const blocker = await admin(url);
    const look = await admin(url);
    try {
      // A's batch (ids 1 … 4,096) is held after it locked the mark, on the key of its last row, which the blocker holds.
      await blocker.query("BEGIN");
      await blocker.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ('r-x', $1, '{}')", [PER_INDEX]);
      await a.appendDisclosures(Array.from({ length: PER_INDEX }, (_, i) => d(i === PER_INDEX - 1 ? "r-x" : `r${i % 7}`, i + 1)));
      await until(async () => (await waitingOn(look, "%INSERT INTO disclosures_by_resident%")).length > 0, "A's batch to wait on the blocker's row");
      // B appends 100 more: its indexer aims at 4,196 from the mark 0 and waits for A's lock on the mark.
      await b.appendDisclosures(Array.from({ length: 100 }, (_, i) => d("r1", 5000 + i)));
      expect(b.disclosureIndex.behind).toBe(PER_INDEX + 100);
      await until(async () => (await waitingOn(look, "%disclosure_index_state%FOR UPDATE%")).length > 0, "B's indexer to wait on the mark");
      // A files 1 … 4,096; B then finds the mark at 4,096, 100 short of its target, and files nothing.
      await blocker.query("ROLLBACK");
      await until(async () => b.disclosureIndex.behind < PER_INDEX + 100, "B's indexer to end");
      expect(await markOf(look)).toBe(PER_INDEX);
      // What B knows of the mark is the mark (4,096), not the 4,196 it aimed at: 100 records behind.
      expect(b.disclosureIndex.behind).toBe(100);
      // So once the log is a batch past the real mark, B's next append files the index.
      await b.appendDisclosures(Array.from({ length: PER_INDEX - 100 }, (_, i) => d("r2", 6000 + i)));
      await until(async () => (await markOf(look)) === 2 * PER_INDEX, "B to file the next batch");
      await expectViewsWhole(b, look);
    } finally {
      await blocker.end();
      await look.end();
      await a.close();
      await b.close();
    }
  });

  it("a resident's view with a limit reads its index rows newest first and stops early, yet lists the newest records when rows of one batch interleave (two residents' rows a relink merged)", async () => {
    const url = await server.createDatabase(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    const c = await admin(url);
    try {
      // Two batches of x's records, each filed as two rows whose ids interleave (even ids under one newest, odd under
      // the one below): what a relink of y → x leaves when both had records all over the same batches.
      await c.query(
        `INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
         SELECT 'v-01', '0a01', '13-sig', 'x', 'signature', NULL, g, g, 'valid', false FROM generate_series(1, ${2 * PER_INDEX}) g ORDER BY g`,
      );
      await c.query(
        `INSERT INTO disclosures_by_resident (resident_code, newest, ids)
         SELECT 'x', max(g), array_agg(g ORDER BY g) FROM generate_series(1, ${2 * PER_INDEX}) g GROUP BY (g - 1) / ${PER_INDEX}, g % 2`,
      );
      await c.query(`UPDATE disclosure_index_state SET indexed_through = ${2 * PER_INDEX}`);
      expect((await c.query("SELECT newest FROM disclosures_by_resident ORDER BY newest")).rows.map((r) => Number(r.newest))).toEqual([PER_INDEX - 1, PER_INDEX, 2 * PER_INDEX - 1, 2 * PER_INDEX]);
      // And a few above the mark, read from the table.
      await s.appendDisclosures([1, 2, 3].map((k) => d("x", 2 * PER_INDEX + k)));
      const all = Array.from({ length: 2 * PER_INDEX + 3 }, (_, i) => i + 1);
      for (const limit of [1, 3, 4, 5, 6, 100, PER_INDEX + 1, 2 * PER_INDEX, 3 * PER_INDEX]) {
        expect((await s.listDisclosures({ residentCode: "x", limit })).map((r) => r.at.getTime()), `limit ${limit}`).toEqual(all.slice(-limit));
      }
    } finally {
      await c.end();
      await s.close();
    }
  });
});
