/**
 * What the PostgreSQL store's test files share (src/store/postgres.test.ts and its siblings postgres-contract,
 * postgres-schema and postgres-log: one file of ≈ 1,500 lines before, which ran on one worker and was the
 * longest of the suite). Each file starts its own throwaway server in beforeAll, as the other PostgreSQL files do
 * (test/postgres-server.ts: within a run each server is a copy of the run's one initdb), so the files run on
 * both workers at once.
 */
import pg from "pg";
import { vi } from "vitest";
import { PG_MIGRATIONS, PostgresStore, type PgMigration } from "../src/store/postgres.js";
import type { CaRecord, Store } from "../src/store/types.js";
import type { PostgresTestServer } from "./postgres-server.js";

/** a resident's four items (基本4情報) as the store tests write them */
export const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
export const ca: CaRecord = { id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };

/** A plain connection to look at (and hold locks in) the database the stores use. */
export async function admin(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Runs one migration as the store does (SQL, or a function given the connection): to build older schemas. */
export async function migrate(c: pg.Client, m: PgMigration): Promise<void> {
  if (typeof m === "string") await c.query(m);
  else await m(c);
}

/** A database as this schema version left it: its migrations run and the version recorded, nothing else. */
export async function atSchema(c: pg.Client, version: number): Promise<void> {
  for (const m of PG_MIGRATIONS.slice(0, version)) await migrate(c, m);
  await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', $1)", [String(version)]);
}

const templates = new WeakMap<PostgresTestServer, Promise<string>>();

/**
 * A database on `server` the store made and migrated once, closed: the template stores are copied from (made on
 * first use, once per server). Copying it is a file copy, where migrating anew ran every migration for each of
 * the ~60 contract stores (what migrating from empty and from older schemas does is tested on databases of their
 * own, postgres-schema.test.ts).
 */
export function migratedTemplate(server: PostgresTestServer): Promise<string> {
  let made = templates.get(server);
  if (!made) {
    made = (async () => {
      const url = await server.createDatabase();
      await (await PostgresStore.open(url, { create: true })).close();
      return new URL(url).pathname.slice(1);
    })();
    templates.set(server, made);
  }
  return made;
}

/**
 * Residents `codes` (active, the kit's four items) in municipality 131016, each holding one signature certificate of
 * 13-sig (put it first) with serial `serialOf(i)` and a stand-in DER: the set-up of the notice-batch and status tests.
 */
export async function certifiedResidents(s: Store, codes: readonly string[], serialOf: (i: number) => string): Promise<void> {
  await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
  await s.commitIssuances(codes.map((residentCode, i) => ({
    serial: serialOf(i), caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
    notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, i & 0xff]),
  })));
}

/** What `fn` sends through node-postgres while it runs: each Client#query call's arguments, in order. */
export async function queriesDuring<T>(fn: () => Promise<T>): Promise<{ value: T; calls: unknown[][] }> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    const value = await fn();
    return { value, calls: spy.mock.calls.map((c) => [...c]) };
  } finally {
    spy.mockRestore();
  }
}

/** The PostgreSQL disclosure log's per-resident index (migration 34) against the table, in one snapshot: every count is of something wrong, so all must be 0. */
export async function indexFaults(c: pg.Client): Promise<Record<string, number>> {
  await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  try {
    const r = await c.query<Record<string, number>>(`
      WITH m AS (SELECT indexed_through AS m FROM disclosure_index_state),
           f AS (SELECT r.resident_code AS rc, r.newest, i FROM disclosures_by_resident r CROSS JOIN LATERAL unnest(r.ids) AS i)
      SELECT
        (SELECT count(*)::int FROM f, m WHERE f.i > m.m) AS above_mark,
        (SELECT count(*)::int FROM (SELECT i FROM f GROUP BY i HAVING count(*) > 1) x) AS filed_twice,
        (SELECT count(*)::int FROM disclosures d, m WHERE d.id <= m.m AND d.resident_code IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM f WHERE f.i = d.id AND f.rc = d.resident_code)) AS lost,
        (SELECT count(*)::int FROM f LEFT JOIN disclosures d ON d.id = f.i WHERE d.id IS NULL OR d.resident_code IS DISTINCT FROM f.rc) AS wrong_code,
        (SELECT count(*)::int FROM disclosures_by_resident r WHERE r.newest <> (SELECT max(i) FROM unnest(r.ids) i)) AS bad_newest,
        (SELECT count(*)::int FROM m) - 1 AS mark_rows`);
    return r.rows[0]!;
  } finally {
    await c.query("COMMIT");
  }
}

export const NO_FAULTS = { above_mark: 0, filed_twice: 0, lost: 0, wrong_code: 0, bad_newest: 0, mark_rows: 0 };
