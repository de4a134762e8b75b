/**
 * What the PostgreSQL disclosure-log test files share (src/store/postgres-disclosure-index, -attack, -catchup and
 * -catchup-attack .test.ts): a record, an older jpki's raw append, the mark and the log's end as the database has
 * them, sessions waiting on a lock, and the check that every resident's view equals the table.
 */
import type pg from "pg";
import { expect } from "vitest";
import type { PostgresStore } from "../src/store/postgres.js";
import { atSchema } from "./postgres-store-kit.js";

/** postgres.ts DISCLOSURES_PER_INDEX: a batch falls due with this many records above the mark. */
export const PER_INDEX = 4096;

/** A disclosure record whose `at` is its unique tag (the views are compared by it); no resident where `residentCode` is undefined. */
export const d = (residentCode: string | undefined, at: number) => ({
  verifierId: "v-01", serial: "0a01", issuer: "13-sig", residentCode, purpose: "signature" as const, legalBasis: undefined,
  at: new Date(at), validationTime: new Date(at), answer: "valid", itemsDisclosed: false,
});

/** An older process's append: a raw INSERT, as a jpki from before 34 makes it ($1 the resident, $2 the tag). */
export const INSERT_ONE = `INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
  VALUES ('v-01', '0a01', '13-sig', $1, 'signature', NULL, $2, $2, 'valid', false) RETURNING id`;

/** The per-resident index's mark as the database has it. */
export const markOf = async (c: pg.Client) => Number((await c.query<{ m: string }>("SELECT indexed_through AS m FROM disclosure_index_state")).rows[0]!.m);
/** The log's highest id (0 when empty). */
export const maxIdOf = async (c: pg.Client) => Number((await c.query<{ m: string }>("SELECT coalesce(max(id), 0) AS m FROM disclosures")).rows[0]!.m);

/** A log of `n` records at schema 33, resident r(g % 40) with at = g (g = 1 … n; every resident in every page), one in 17 of no resident. */
export async function logAt33(c: pg.Client, n: number): Promise<void> {
  await atSchema(c, 33);
  await c.query(`INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
                 SELECT 'v-01', '0a01', '13-sig', CASE WHEN g % 17 = 0 THEN NULL ELSE 'r' || (g % 40) END, 'signature', NULL, g, g, 'valid', false
                 FROM generate_series(1, ${n}) g ORDER BY g`);
}

/** Sessions of this database (not `c`'s) whose statement matches `like` and which are waiting for a lock now. */
export async function waitingOn(c: pg.Client, like: string): Promise<number[]> {
  const r = await c.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE $1",
    [like],
  );
  return r.rows.map((x) => x.pid);
}

/** Every resident's view, as store `s` gives it, against the table read by resident code. */
export async function expectViewsWhole(s: PostgresStore, c: pg.Client): Promise<void> {
  const want = (await c.query<{ r: string; ats: string[] }>("SELECT resident_code AS r, array_agg(at ORDER BY id) AS ats FROM disclosures WHERE resident_code IS NOT NULL GROUP BY resident_code")).rows;
  expect(want.length).toBeGreaterThan(0);
  for (const { r, ats } of want) {
    expect((await s.listDisclosures({ residentCode: r, limit: 1_000_000 })).map((x) => x.at.getTime()), r).toEqual(ats.map(Number));
  }
}
