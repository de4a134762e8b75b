/**
 * The PostgreSQL store's schema: its version recorded in meta, a restore's unfinished and finishing states, and
 * every upgrade from an older schema (each database built at that version by running the migrations up to it).
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { admin, atSchema, ca, items, migrate } from "../../test/postgres-store-kit.js";
import { childOutput } from "../../test/child-output.js";
import { usePostgres } from "../../test/use-postgres.js";
import { until } from "../../test/until.js";
import { isJpkiError, type JpkiError } from "../errors.js";
import { decodeEntries, encodeEntry } from "../profile/crl-entry.js";
import { CLOSED_BEFORE_SUCCESSORS, expectSuccessorsFilled, keyed } from "./contract.js";
import { RevocationBlocks } from "./revocation-log.js";
import { ADVISORY_LOCKS, PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresStore, postgresError } from "./postgres.js";
import { certifiedKeyOf } from "./rows.js";
import { NO_CERTIFIED_KEY, PG_WRITER_GUARD_CONSTRAINT } from "./writer-guard.js";
import type { UpgradeProgress } from "./upgrade.js";

const server = usePostgres();

/**
 * A schema-25 store (before version 26's fill of certified_key) holding 23 certificates whose serials count up from
 * `base`: enough for five pages of 5 rows, so a test can stop or kill the fill between pages.
 */
async function schema25WithKeys(c: Awaited<ReturnType<typeof admin>>, base: number) {
  await atSchema(c, 25);
  const serial = (i: number) => (base + i).toString(16).padStart(4, "0");
  const certs = Array.from({ length: 23 }, (_, i) => keyed(serial(i), `r${i}`, 0, `key ${i}`));
  for (const k of certs) {
    await c.query(
      `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der)
       VALUES ($1, '13-sig', 'signature', $2, '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $3)`,
      [k.serial, k.residentCode, k.der],
    );
  }
  return { serial, certs };
}

describe("PostgresStore schema and upgrades", () => {
  it("records its schema version in meta, reopens without migrating again, and refuses databases that are not jpki stores", async () => {
    const url = await server.createDatabase();
    await expect(PostgresStore.open(url)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_CORRUPT"));
    const s = await PostgresStore.open(url, { create: true });
    await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]);
    await s.close();
    const c = await admin(url);
    try {
      const meta = Object.fromEntries((await c.query<{ key: string; value: string }>("SELECT key, value FROM meta")).rows.map((r) => [r.key, r.value]));
      expect(PG_SCHEMA_VERSION).toBe(PG_MIGRATIONS.length);
      expect(meta).toEqual({ application: "jpki", schema_version: String(PG_MIGRATIONS.length) });
      const again = await PostgresStore.open(url);
      expect(await again.countResidents()).toBe(1);
      await again.close();
      await c.query("UPDATE meta SET value = $1 WHERE key = 'schema_version'", [String(PG_SCHEMA_VERSION + 1)]);
      await expect(PostgresStore.open(url)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_CORRUPT") && /newer than this jpki/.test((e as Error).message));
    } finally {
      await c.end();
    }
    const foreign = await server.createDatabase();
    const f = await admin(foreign);
    await f.query("CREATE TABLE orders (id int)");
    await expect(PostgresStore.open(foreign, { create: true })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_CORRUPT"));
    // Another application's own `meta` table, of another shape: still "not a jpki store", not a failed statement.
    await f.query("CREATE TABLE meta (id int PRIMARY KEY, data jsonb)");
    try {
      for (const create of [false, true]) {
        await expect(PostgresStore.open(foreign, { create })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_CORRUPT") && /not a jpki store/.test((e as Error).message));
      }
      expect((await f.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'")).rows[0]).toEqual({ n: 2 });
    } finally {
      await f.end();
    }
  });

  it("a store a restore has not finished with: refused to every opener but the restore, and no CRL number is reserved from it, even by a store opened before", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    await s.putCa(ca);
    const day = new Date(Date.UTC(2026, 0, 2));
    const first = await s.reserveCrl("13-sig", new Date(0), day);
    // a full CRL published before the restore: a delta base until then
    const base = await s.reserveCrl("13-sig", new Date(0), day);
    expect(await s.publishCrl({ caId: "13-sig", number: base.number, entries: 0, path: "crl/13-sig.crl", sha256: "00" }, () => undefined)).toBe(true);
    expect((await s.reserveDeltaCrl("13-sig", new Date(0), day))?.baseNumber).toBe(base.number);
    // a jpki process that opened the database before the restore (as `jpki serve` had), then the restore's commit
    const c = await admin(url);
    const note = JSON.stringify({ source: "/backup/it's here", startedAt: "2026-01-01T00:00:00.000Z" });
    await c.query(PostgresStore.restorePendingStatement(note));
    const refused = (e: unknown) => isJpkiError(e, "ERR_WORKSPACE_CORRUPT") && e.details?.reason === "restore-incomplete" && (e as Error).message.includes("jpki restore /backup/it's here --force");
    await expect(s.reserveCrl("13-sig", new Date(0), day)).rejects.toSatisfy(refused);
    await expect(s.reserveCrl("13-sig", new Date(0), day, "131016")).rejects.toSatisfy(refused);
    await expect(s.reserveDeltaCrl("13-sig", new Date(0), day)).rejects.toSatisfy(refused);
    await expect(s.publishCrl({ caId: "13-sig", number: first.number, entries: 0, path: "crl/13-sig.crl", sha256: "00" }, () => undefined)).rejects.toSatisfy(refused);
    await expect(PostgresStore.open(url)).rejects.toSatisfy(refused);
    // the restore itself opens it and moves the numbering on; then the store is everyone's again
    const r = await PostgresStore.open(url, { restoring: true });
    expect(await r.skipCrlNumbers("13-sig", 5000n, day)).toMatchObject({ next: 5000n });
    await r.finishRestore();
    await r.close();
    // the backup's full CRL is no delta base (its snapshot is another server's transaction ids): deltas wait for a new one
    expect(await s.reserveDeltaCrl("13-sig", new Date(0), day)).toBeUndefined();
    expect((await s.reserveCrl("13-sig", new Date(0), day)).number).toBe(5000n);
    expect((await c.query("SELECT count(*)::int AS n FROM meta WHERE key = 'restore_pending'")).rows[0]).toEqual({ n: 0 });
    await c.end();
    await s.close();
  });

  it("a restore's final statement empties carried_revocations left by a dump from before it (schema < 22), so the restore carries those entries anew; a newer dump's stay", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    await s.putCa(ca);
    const entry = { caId: "13-sig", serial: "0e01", revokedAt: new Date(4000), reason: 1, notAfter: new Date(Date.UTC(2030, 0, 1)), municipality: "131016" };
    await s.carryRevocations([entry]);
    const c = await admin(url);
    const rows = async () => (await c.query("SELECT count(*)::int AS n FROM carried_revocations")).rows[0].n as number;
    // a dump at this schema holds the table (pg_restore recreated it with its rows): they stay
    await c.query(PostgresStore.restorePendingStatement("{}"));
    expect(await rows()).toBe(1);
    // a dump from schema 21 holds no such table, and its log no such entry: what was left would make the carry skip it
    await c.query("DELETE FROM meta WHERE key = 'restore_pending'");
    await c.query("UPDATE meta SET value = '21' WHERE key = 'schema_version'");
    await c.query("TRUNCATE revocation_log");
    await c.query(PostgresStore.restorePendingStatement("{}"));
    expect(await rows()).toBe(0);
    await c.query("DELETE FROM meta WHERE key = 'restore_pending'");
    await c.query("UPDATE meta SET value = '22' WHERE key = 'schema_version'");
    await s.carryRevocations([entry]);
    const listed: string[] = [];
    for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
    expect(listed).toEqual(["0e01"]);
    await c.end();
    await s.close();
  });

  it("upgrades a schema-1 database: its facts stay, OCSP responders start empty and can be installed", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await migrate(c, PG_MIGRATIONS[0]!);
      await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', '1')");
      await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES ('13-sig', '13', 'signature', '\\x3000', 'pem', '\\x01', 0)");
      await c.query("INSERT INTO crl_state (ca_id, revision, published_revision) VALUES ('13-sig', 3, 2)");
    } finally {
      await c.end();
    }
    const s = await PostgresStore.open(url);
    expect((await s.listCas()).map((x) => x.id)).toEqual(["13-sig"]);
    expect(await s.caRevisions()).toEqual(new Map([["13-sig", 3]]));
    expect(await s.ocspResponders()).toEqual([]);
    const r = { caId: "13-sig", serial: "0c01", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", notBefore: new Date(1000), notAfter: new Date(2000) };
    await s.putOcspResponder(r);
    expect(await s.ocspResponders()).toEqual([r]);
    await s.close();
    const after = await admin(url);
    try {
      expect((await after.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]).toEqual({ value: String(PG_SCHEMA_VERSION) });
    } finally {
      await after.end();
    }
  });

  it("revokes a certificate as a HOT update: no index entry per revocation (migration 23)", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const a = await admin(url);
    try {
      await s.putCa(ca);
      const codes = Array.from({ length: 200 }, (_, i) => `h${i}`);
      await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      await s.commitIssuances(codes.map((residentCode, i) => ({
        serial: (0x0d00 + i).toString(16), caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
      })));
      const stats = async () => (await a.query<{ upd: string; hot: string }>("SELECT pg_stat_get_tuples_updated(c.oid) + pg_stat_get_xact_tuples_updated(c.oid) AS upd, pg_stat_get_tuples_hot_updated(c.oid) + pg_stat_get_xact_tuples_hot_updated(c.oid) AS hot FROM pg_class c WHERE relname = 'certificates'")).rows[0]!;
      const before = await stats();
      // One resident in ten, as a batch spreads its revocations over the table: a page's free fifth holds the new
      // versions of a few of its rows (all of them it could not).
      const revoked = codes.filter((_, i) => i % 10 === 0);
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: revoked }, (ctx) => ({
        commit: {
          at: new Date(6000),
          notices: [],
          sequences: [],
          revocations: revoked.flatMap((c) => (ctx.certificates.get(c) ?? []).map((x) => ({ serial: x.serial, reason: 1, source: "notice:h", residentCode: c }))),
          relinks: [],
          dirtyCas: ["13-sig"],
        },
      }));
      // A backend reports its counts to the cumulative statistics when idle a while, or when it ends: end them.
      await s.close();
      let after = await stats();
      // a minute by the clock (200 × 50 ms and the queries were ≈ 10 s: the ended backends' reports, on a loaded host)
      await until(async () => Number((after = await stats()).upd) - Number(before.upd) >= 20, "the updates reported to the statistics", { timeoutMs: 60_000, everyMs: 50 }).catch(() => undefined);
      const updated = Number(after.upd) - Number(before.upd);
      const hot = Number(after.hot) - Number(before.hot);
      expect(updated).toBeGreaterThanOrEqual(20);
      // With the partial indexes of revoked certificates (before migration 23) none of them was HOT.
      expect(hot).toBeGreaterThanOrEqual(updated * 0.9);
    } finally {
      await a.end();
      await s.close().catch(() => undefined);
    }
  });

  it("upgrades a schema-9 store (before registered issuance information): each unrevoked certificate's is registered", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 9);
      await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES ('13-sig', '13', 'signature', '\\x3000', 'pem', '\\x01', 0)");
      for (const [serial, revokedAt] of [["0a01", null], ["0a02", 5]] as const) {
        await c.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der, revoked_at)
           VALUES ($1, '13-sig', 'signature', 'r1', '131016', 'n', 'a', '1980-01-01', 'male', 7, 9999999999999, 0, '\\x3000', $2)`,
          [serial, revokedAt],
        );
      }
      const s = await PostgresStore.open(url);
      expect(await s.registeredIssuances("r1")).toEqual([
        { serial: "0a01", caId: "13-sig", type: "signature", residentCode: "r1", fourItems: { name: "n", address: "a", birthDate: "1980-01-01", gender: "male" }, notBefore: new Date(7), notAfter: new Date(9999999999999) },
      ]);
      await s.close();
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-22 store: delta bases recorded before are cleared, blocks logged before stay on full and partition CRLs and off later deltas", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 22);
      await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES ('13-sig', '13', 'signature', '\\x3000', 'pem', '\\x01', 0)");
      for (const [serial, revokedAt] of [["0b01", 4000], ["0b02", null]] as const) {
        await c.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der, revoked_at, reason, revocation_source)
           VALUES ($1, '13-sig', 'signature', $3, '131016', 'n', 'a', '1980-01-01', 'male', 7, 1893456000000, 0, '\\x3000', $2, $4, $5)`,
          [serial, revokedAt, `r${serial}`, revokedAt === null ? null : 1, revokedAt === null ? null : "manual"],
        );
      }
      // 0b01's block, as version 22 logged it (no xid), and a full CRL whose snapshot sees it: a delta base.
      const blocks = new RevocationBlocks();
      blocks.add("13-sig", "0b01", 4000, 1, 1893456000000, "131016");
      for (const b of blocks.take()) await c.query("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES ($1, $2, $3, $4, $5)", [b.caId, b.entries, b.minNotAfter, b.der, b.meta]);
      await c.query("INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope, entries, path, sha256, delta_snapshot) VALUES ('13-sig', 1, 0, 1893456000000, 0, 'published', '', 1, 'p', 'a', pg_current_snapshot())");
      const s = await PostgresStore.open(url);
      try {
        const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3));
        // The base's snapshot was compared with revoked_xid; the log's blocks of before have no xid: no delta on it.
        expect(await s.reserveDeltaCrl("13-sig", t, n)).toBeUndefined();
        const serials = async (entries: AsyncIterable<{ der: Buffer }> | Iterable<{ der: Buffer }>) => {
          const out: string[] = [];
          for await (const e of entries) out.push(...decodeEntries(e.der).map((x) => x.serial));
          return out;
        };
        const base = await s.reserveCrl("13-sig", t, n);
        await s.publishCrl({ caId: "13-sig", number: base.number, entries: 1, path: "p", sha256: "b" }, () => undefined);
        await s.revoke({ serial: "0b02", revokedAt: new Date(5000), reason: 1, source: "manual" });
        const delta = await s.reserveDeltaCrl("13-sig", t, n);
        expect(delta?.baseNumber).toBe(base.number);
        expect(await serials(s.deltaCrlEntries("13-sig", base.number, { expiredBefore: new Date(0) }))).toEqual(["0b02"]);
        expect(await serials(s.crlEntries("13-sig", { expiredBefore: new Date(0) }))).toEqual(["0b01", "0b02"]);
        expect(await serials((await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: new Date(0) })).get("131016")!)).toEqual(["0b01", "0b02"]);
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-18 store: a record closed by an applied resident-code change names the new code, others none", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 18);
      for (const sql of CLOSED_BEFORE_SUCCESSORS.sql) await c.query(sql);
      const s = await PostgresStore.open(url);
      await expectSuccessorsFilled(s);
      await s.close();
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-19 store: certificates lose the per-row foreign key on cas (a trigger query per issued certificate), and nothing else", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 19);
      const constraints = async () =>
        (await c.query<{ conname: string }>("SELECT conname FROM pg_constraint WHERE conrelid = 'certificates'::regclass ORDER BY conname")).rows.map((r) => r.conname);
      const before = await constraints();
      expect(before).toContain("certificates_ca_id_fkey");
      const s = await PostgresStore.open(url);
      await s.close();
      // (and the writer guard arrives with version 29; the application ids' constraint becomes a partial index with 33)
      expect(await constraints()).toEqual([...before.filter((n) => n !== "certificates_ca_id_fkey" && n !== "certificates_application_id_key"), PG_WRITER_GUARD_CONSTRAINT].sort());
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-32 store: application ids stay unique through a partial index, which a certificate without one takes no entry in and every lookup by id uses (33)", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 32);
      const insert = (rec: ReturnType<typeof keyed>, applicationId: string | null) =>
        c.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der, certified_key, application_id)
           VALUES ($1, '13-sig', 'signature', $2, '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $3, $4, $5)`,
          [rec.serial, rec.residentCode, rec.der, certifiedKeyOf(rec.der as Buffer), applicationId],
        );
      const withId = keyed("0c01", "r1", 0, "key 1");
      await insert(withId, "app-1");
      await insert(keyed("0c02", "r2", 0, "key 2"), null);
      await insert(keyed("0c03", "r3", 0, "key 3"), null);
      const s = await PostgresStore.open(url);
      try {
        const indexes = (await c.query<{ name: string; def: string }>("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'certificates' AND indexdef LIKE '%(application_id)%'")).rows;
        expect(indexes).toEqual([{ name: "certificates_application", def: "CREATE UNIQUE INDEX certificates_application ON public.certificates USING btree (application_id) WHERE (application_id IS NOT NULL)" }]);
        expect((await c.query("SELECT conname FROM pg_constraint WHERE conrelid = 'certificates'::regclass AND contype = 'u'")).rows).toEqual([]);
        // The index holds the one certificate with an id, not the two without (a B-tree's tuples, read by a scan
        // of the index alone; with the constraint's index it held three).
        await c.query("VACUUM certificates");
        expect((await c.query<{ n: number }>("SELECT reltuples::int AS n FROM pg_class WHERE relname = 'certificates_application'")).rows[0]!.n).toBe(1);
        // Every statement that looks an id up can use the index, with a generic plan too (no value known to prove the
        // index's predicate from); sequential scans off, or a three-row table is read whole.
        await c.query("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan");
        await c.query("PREPARE one(text) AS SELECT * FROM certificates WHERE application_id = $1; PREPARE many(text[]) AS SELECT * FROM certificates WHERE application_id = ANY($1::text[])");
        for (const q of ["EXPLAIN EXECUTE one('app-1')", "EXPLAIN EXECUTE many(ARRAY['app-1', 'app-2'])"]) {
          expect((await c.query<{ "QUERY PLAN": string }>(q)).rows[0]!["QUERY PLAN"], q).toMatch(/^Index Scan using certificates_application on certificates/);
        }
        // Unique as before: the store answers with the certificate issued for the id; a second row with it is refused.
        expect((await s.getCertificateByApplication("app-1"))?.serial).toBe("0c01");
        await s.putCa(ca);
        await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]);
        const again = await s.commitIssuances([{ ...keyed("0d01", "r1", 1000, "key 4"), applicationId: "app-1" }]);
        expect(again).toMatchObject([{ status: "duplicate-application", existing: { serial: "0c01" } }]);
        const dup = await insert(keyed("0d02", "r9", 0, "key 5"), "app-1").then(() => undefined, (e: unknown) => e);
        expect(dup).toMatchObject({ code: "23505", constraint: "certificates_application" });
        await insert(keyed("0d03", "r9", 0, "key 6"), null);
        expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-33 store: the disclosure log's per-resident index moves to rows of its own, filed after the upgrade by the indexer (disclosures_resident serving the views meanwhile, dropped once caught up), and both relink forms move indexed and unindexed records, before and after (34)", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 33);
      // r1: 5,000 records (two groups of 4,096 ids), r2: 3, one record of no resident, in id order with at = id.
      const insert = (sql: string) =>
        c.query(`INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
                 SELECT 'v-01', '0a01', '13-sig', r, 'signature', NULL, g, g, 'valid', false FROM (${sql}) AS x(r, g) ORDER BY g`);
      await insert("SELECT CASE WHEN g IN (7, 3000, 4999) THEN 'r2' WHEN g = 11 THEN NULL ELSE 'r1' END, g FROM generate_series(1, 5003) g");
      const ats = async (code: string, limit = 100_000) => (await s.listDisclosures({ residentCode: code, limit })).map((x) => x.at.getTime());
      const indexes = async () => (await c.query<{ name: string }>("SELECT indexname AS name FROM pg_indexes WHERE tablename = 'disclosures' ORDER BY 1")).rows.map((r) => r.name);
      const s = await PostgresStore.open(url);
      try {
        // The upgrade filed nothing: the mark at 0, no rows, disclosures_resident kept for the views meanwhile.
        expect(await indexes()).toEqual(["disclosures_pkey", "disclosures_resident"]);
        expect((await c.query("SELECT indexed_through AS m FROM disclosure_index_state")).rows).toEqual([{ m: "0" }]);
        expect((await c.query("SELECT count(*)::int AS n FROM disclosures_by_resident")).rows).toEqual([{ n: 0 }]);
        const r1 = Array.from({ length: 5003 }, (_, i) => i + 1).filter((g) => ![7, 11, 3000, 4999].includes(g));
        expect(await ats("r1")).toEqual(r1);
        expect(await ats("r1", 3)).toEqual(r1.slice(-3));
        expect(await ats("r2")).toEqual([7, 3000, 4999]);
        await s.upsertResidents(["r1", "r2", "r9", "r5", "r6"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
        // A relink before the catch-up (every record above the mark): r1 → r9 set-wise (two codes in the batch).
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r1", "r9", "r5", "r6"] }, () => ({
          commit: { at: new Date(7000), notices: [], sequences: [], revocations: [], relinks: [{ from: "r1", to: "r9" }, { from: "r5", to: "r6" }], dirtyCas: [] },
        }));
        expect(await ats("r9")).toEqual(r1);
        expect(await ats("r1")).toEqual([]);
        const d = (residentCode: string, at: number) => ({
          verifierId: "v-01", serial: "0a01", issuer: "13-sig", residentCode, purpose: "signature" as const, legalBasis: undefined,
          at: new Date(at), validationTime: new Date(at), answer: "valid", itemsDisclosed: false,
        });
        // Appends (ids 5004–5006) start the indexer: it files the log through them, then drops disclosures_resident.
        await s.appendDisclosures([d("r9", 6001), d("r2", 6002), d("r9", 6003)]);
        await until(async () => (await indexes()).length === 1, "the catch-up to drop disclosures_resident");
        expect(await indexes()).toEqual(["disclosures_pkey"]);
        expect((await c.query("SELECT indexed_through AS m FROM disclosure_index_state")).rows).toEqual([{ m: "5006" }]);
        const rows = (await c.query<{ r: string; newest: string; n: number }>("SELECT resident_code AS r, newest, cardinality(ids) AS n FROM disclosures_by_resident ORDER BY 1, 2")).rows;
        expect(rows).toEqual([
          { r: "r2", newest: "3000", n: 2 },
          { r: "r2", newest: "5005", n: 2 },
          { r: "r9", newest: "4096", n: 4093 },
          { r: "r9", newest: "5006", n: 908 },
        ]);
        expect(await ats("r9", 3)).toEqual([5003, 6001, 6003]);
        // Appended after the catch-up: above the mark, read from the table.
        await s.appendDisclosures([d("r9", 6004), d("r2", 6005)]);
        expect(await ats("r9", 2)).toEqual([6003, 6004]);
        // A relink after it moves both: r2 → r3 → r4 one by one.
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r2", "r3", "r4"] }, () => ({
          commit: { at: new Date(7001), notices: [], sequences: [], revocations: [], relinks: [{ from: "r2", to: "r3" }, { from: "r3", to: "r4" }], dirtyCas: [] },
        }));
        expect(await ats("r9")).toEqual([...r1, 6001, 6003, 6004]);
        expect(await ats("r4")).toEqual([7, 3000, 4999, 6002, 6005]);
        for (const gone of ["r1", "r2", "r3"]) expect(await ats(gone)).toEqual([]);
        // The records themselves name the new code (what a dump carries, and a copy files its index by).
        expect(new Set((await s.listDisclosures({ residentCode: "r9", limit: 100_000 })).map((x) => x.residentCode))).toEqual(new Set(["r9"]));
        expect((await c.query("SELECT resident_code AS r, count(*)::int AS n FROM disclosures GROUP BY 1 ORDER BY 1")).rows).toEqual([{ r: "r4", n: 5 }, { r: "r9", n: 5002 }, { r: null, n: 1 }]);
        expect((await c.query("SELECT DISTINCT resident_code AS r FROM disclosures_by_resident ORDER BY 1")).rows).toEqual([{ r: "r4" }, { r: "r9" }]);
        expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-34 store with the relink guard (35): an older jpki's bare relink of the disclosure log is refused whole, under the writer guard's name; this jpki's relinks (both forms) pass", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    // A process of a release from before 34, connected before the upgrade: it relinks with bare UPDATEs of disclosures.
    const old = await admin(url);
    try {
      await atSchema(c, 34);
      await c.query(
        `INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
         SELECT 'v-01', '0a01', '13-sig', 'r1', 'signature', NULL, g, g, 'valid', false FROM generate_series(1, 3) g`,
      );
      // Two filed under the mark, one above it: a relink moves both kinds.
      await c.query("INSERT INTO disclosures_by_resident (resident_code, newest, ids) VALUES ('r1', 2, ARRAY[1, 2])");
      await c.query("UPDATE disclosure_index_state SET indexed_through = 2");
      const s = await PostgresStore.open(url);
      try {
        const ats = async (code: string) => (await s.listDisclosures({ residentCode: code, limit: 100 })).map((x) => x.at.getTime());
        await s.upsertResidents(["r1", "r2", "r3", "r4", "r5"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
        // The old relink, one by one and set-wise (a resident with no record too): each refused, its batch rolled back.
        for (const [sql, params] of [
          ["UPDATE disclosures SET resident_code = $1 WHERE resident_code = $2", ["r2", "r1"]],
          ["UPDATE disclosures SET resident_code = $1 WHERE resident_code = $2", ["r4", "r3"]],
          ["UPDATE disclosures d SET resident_code = u.t FROM unnest($1::text[], $2::text[]) AS u(f, t) WHERE d.resident_code = u.f", [["r1"], ["r2"]]],
        ] as const) {
          await old.query("BEGIN");
          await old.query("UPDATE residents SET notice_sequence = 99 WHERE resident_code = 'r1'");
          const refused = await old.query(sql, params as unknown as unknown[]).then(() => undefined, (e: unknown) => e);
          await old.query("ROLLBACK");
          // All an old jpki shows of it (the SQLSTATE, the constraint's and the table's names); from 29 on it is ERR_STORE_UPGRADED.
          expect(refused, sql).toMatchObject({ code: "23514", constraint: PG_WRITER_GUARD_CONSTRAINT, table: "disclosures" });
          expect((refused as Error).message).toMatch(/^jpki writer guard: .*disclosures_by_resident.* Stop that process and run the new release$/);
          expect(postgresError(refused, "committing a notice batch").code).toBe("ERR_STORE_UPGRADED");
        }
        expect((await c.query("SELECT count(*)::int AS n FROM residents WHERE notice_sequence = 99")).rows[0].n).toBe(0);
        expect((await c.query("SELECT DISTINCT resident_code AS r FROM disclosures")).rows).toEqual([{ r: "r1" }]);
        // Not set by anything but this jpki's relink: a later transaction of the same session is refused as well.
        await expect(c.query("UPDATE disclosures SET resident_code = 'r2' WHERE false")).rejects.toMatchObject({ code: "23514" });
        // This jpki's relinks pass, set-wise (r1 → r2 with r4 → r5) and one by one (r2 → r3 → r4), and carry the records.
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r1", "r2", "r4", "r5"] }, () => ({
          commit: { at: new Date(7000), notices: [], sequences: [], revocations: [], relinks: [{ from: "r1", to: "r2" }, { from: "r4", to: "r5" }], dirtyCas: [] },
        }));
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r2", "r3", "r4"] }, () => ({
          commit: { at: new Date(7001), notices: [], sequences: [], revocations: [], relinks: [{ from: "r2", to: "r3" }, { from: "r3", to: "r4" }], dirtyCas: [] },
        }));
        expect(await ats("r4")).toEqual([1, 2, 3]);
        expect((await c.query("SELECT DISTINCT resident_code AS r FROM disclosures")).rows).toEqual([{ r: "r4" }]);
        // An update of other columns (none of jpki's, but an operator's) is not a relink.
        await c.query("UPDATE disclosures SET answer = answer WHERE id = 1");
        expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
      } finally {
        await s.close();
      }
    } finally {
      await old.end();
      await c.end();
    }
  });

  it("refuses to open a store whose disclosure id sequence was given a cache (the per-resident index's mark relies on CACHE 1), as it is and when upgrading, naming the statement that puts it back", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 34);
      await c.query("ALTER SEQUENCE disclosures_id_seq CACHE 20");
      const refusal = (e: unknown) => {
        expect(isJpkiError(e) && e.code).toBe("ERR_WORKSPACE_CORRUPT");
        expect((e as JpkiError).details).toMatchObject({ reason: "disclosure-sequence-cache", cache: 20 });
        expect((e as JpkiError).message).toContain("'ALTER SEQUENCE disclosures_id_seq CACHE 1'");
      };
      // The full open (an upgrade): refused before its commit, so the store stays at 34.
      refusal(await PostgresStore.open(url).then((s) => s.close(), (e: unknown) => e));
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe("34");
      await c.query("ALTER SEQUENCE disclosures_id_seq CACHE 1");
      await (await PostgresStore.open(url)).close();
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
      // The open of a store as it is (one round trip, opensAsIs).
      await c.query("ALTER SEQUENCE disclosures_id_seq CACHE 2");
      const e = await PostgresStore.open(url).then((s) => s.close(), (x: unknown) => x);
      expect((e as JpkiError).details).toMatchObject({ reason: "disclosure-sequence-cache", cache: 2 });
      await c.query("ALTER SEQUENCE disclosures_id_seq CACHE 1");
      await (await PostgresStore.open(url)).close();
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-10 store (before the registry's outbox): the outbox arrives empty and takes notices", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 10);
      await c.query("INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status, notice_sequence) VALUES ('r1', '131016', 'n', 'a', '1980-01-01', 'male', 'active', 0)");
      const s = await PostgresStore.open(url);
      expect(await s.pendingOutbox(10)).toEqual([]);
      const n = { noticeId: "ctr:r1:1", residentCode: "r1", sequence: 1, body: "{}", createdAt: new Date(1) };
      await s.applyToRegistry((read) => ({ put: [{ ...read("r1")!, noticeSequence: 1 }], remove: [], enqueue: [n], result: undefined }));
      expect(await s.pendingOutbox(10)).toEqual([n]);
      await s.close();
    } finally {
      await c.end();
    }
  });

  it("upgrades a store made at schema version 2 (OCSP, before registered verifiers): its facts stay, the verifier tables arrive", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      // what the previous release made: migrations 1 and 2, and a resident in it
      await migrate(c, PG_MIGRATIONS[0]!);
      await migrate(c, PG_MIGRATIONS[1]!);
      await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', '2')");
      await c.query("INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status) VALUES ('r1', '131016', 'n', 'a', '1980-01-01', 'male', 'active')");
      const s = await PostgresStore.open(url);
      expect(await s.countResidents()).toBe(1);
      expect(await s.listVerifiers()).toEqual([]);
      await s.putVerifier({ id: "v-1", name: "n", kind: "government", tokenSha256: "ee".repeat(32), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(1), revokedAt: undefined });
      await s.recordVerifierFetches([{ verifierId: "v-1", scope: "crl", path: "/crl/13-sig.crl", status: 304, at: new Date(2), count: 1, lastAt: new Date(2) }]);
      expect((await s.listVerifierFetches()).map((f) => f.status)).toEqual([304]);
      await s.close();
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-6 store to the revocation log (7): its CRLs list exactly the same entries as before, in the same order, byte for byte", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const cutoff = Date.UTC(2024, 0, 1);
    // What schema 6's crlEntries listed: the CA's revoked rows by serial, not expired before the cut-off, each encoded.
    const before = async (caId: string, at: number) =>
      (
        await c.query<{ serial: string; revoked_at: string; reason: number }>(
          "SELECT serial, revoked_at, reason FROM certificates WHERE ca_id = $1 AND revoked_at IS NOT NULL AND not_after >= $2 ORDER BY serial",
          [caId, at],
        )
      ).rows.map((r) => encodeEntry({ serial: r.serial, revokedAt: new Date(Number(r.revoked_at)), reason: r.reason }));
    try {
      await atSchema(c, 6);
      for (const id of ["13-sig", "27-sig"]) {
        await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES ($1, $2, 'signature', '\\x3000', 'pem', '\\x01', 0)", [id, id.slice(0, 2)]);
      }
      // 25,000 revoked certificates of 13-sig (more than two migration blocks), inserted out of serial order, a
      // few expired before the cut-off, reasons and dates varied; 27-sig a handful (its serials interleave with
      // 13-sig's); unrevoked ones of both.
      await c.query(
        `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der,
           revoked_at, reason, revocation_source)
         SELECT lpad(to_hex(x * 7919 % 65536 + 65536), 6, '0'), CASE WHEN x % 5000 = 3 THEN '27-sig' ELSE '13-sig' END, 'signature', 'r' || x,
           CASE WHEN x % 2 = 0 THEN '131016' ELSE '271004' END, 'n', 'a', '1980-01-01', 'male', 0,
           CASE WHEN x % 997 = 0 THEN ${Date.UTC(2020, 0, 1)} ELSE ${Date.UTC(2030, 0, 1)} END, 0, '\\x3000',
           CASE WHEN x % 11 = 10 THEN NULL ELSE 1700000000000 + (x % 13) * 1000 END,
           CASE WHEN x % 11 = 10 THEN NULL ELSE x % 4 END,
           CASE WHEN x % 11 = 10 THEN NULL ELSE 'notice:n' || x END
         FROM generate_series(1, 27600) AS x`,
      );
      const revoked = (await c.query<{ ca_id: string; n: string }>("SELECT ca_id, count(*) AS n FROM certificates WHERE revoked_at IS NOT NULL GROUP BY 1 ORDER BY 1")).rows;
      expect(revoked.map((r) => r.ca_id)).toEqual(["13-sig", "27-sig"]);
      expect(Number(revoked[0]!.n)).toBeGreaterThan(20_000);
      const expected = new Map<string, Buffer[]>();
      for (const id of ["13-sig", "27-sig"]) for (const at of [0, cutoff]) expected.set(`${id}@${at}`, await before(id, at));
      expect(expected.get(`13-sig@${cutoff}`)!.length).toBeLessThan(expected.get("13-sig@0")!.length);
      const s = await PostgresStore.open(url);
      for (const id of ["13-sig", "27-sig"]) {
        for (const at of [0, cutoff]) {
          const chunks: Buffer[] = [];
          let count = 0;
          for await (const chunk of s.crlEntries(id, { expiredBefore: new Date(at) })) (chunks.push(chunk.der), (count += chunk.count));
          const want = expected.get(`${id}@${at}`)!;
          expect(count).toBe(want.length);
          expect(Buffer.concat(chunks).equals(Buffer.concat(want))).toBe(true);
        }
      }
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
      // blocks of at most 10,000 entries, per CA
      expect((await c.query("SELECT ca_id, entries FROM revocation_log ORDER BY id")).rows.map((r) => `${r.ca_id}:${r.entries}`)).toEqual(
        ["13-sig:10000", "13-sig:10000", `13-sig:${Number(revoked[0]!.n) - 20_000}`, `27-sig:${revoked[1]!.n}`],
      );
      // a revocation after the upgrade comes after them
      await s.upsertResidents([{ residentCode: "r0", municipalityCode: "131016", fourItems: items, status: "active" }]);
      await s.commitIssuances([{ serial: "0001", caId: "13-sig", type: "signature", residentCode: "r0", municipalityCode: "131016", fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]) }]);
      await s.revoke({ serial: "0001", revokedAt: new Date(5000), reason: 1, source: "manual" });
      const last: string[] = [];
      for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(cutoff) })) last.push(...decodeEntries(chunk.der).map((e) => e.serial));
      expect(last.at(-1)).toBe("01");
      expect(last.length).toBe(expected.get(`13-sig@${cutoff}`)!.length + 1);
      await s.close();
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-25 store: its certificates' keys are filled, and one of them is refused to another resident", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, 25);
      const old = keyed("0a01", "r1", 0, "the card's key");
      await c.query(
        `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der)
         VALUES ('0a01', '13-sig', 'signature', 'r1', '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $1), ('0a00', '13-sig', 'signature', 'r0', '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, '\\x3000')`,
        [old.der],
      );
      const s = await PostgresStore.open(url);
      try {
        // A DER with no key to read: the empty marker (the writer guard, 29), not NULL.
        expect((await c.query("SELECT serial, certified_key FROM certificates ORDER BY serial")).rows).toEqual([
          { serial: "0a00", certified_key: NO_CERTIFIED_KEY },
          { serial: "0a01", certified_key: certifiedKeyOf(old.der) },
        ]);
        await s.putCa(ca);
        await s.upsertResidents([{ residentCode: "r2", municipalityCode: "131016", fourItems: items, status: "active" }]);
        expect(await s.commitIssuances([keyed("0a02", "r2", 1000, "the card's key")])).toEqual([{ status: "key-in-use", serial: "0a01", why: "other-resident" }]);
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });

  it("upgrades a schema-25 store's keys in pages: a kill -9 keeps the committed ones, an opener meanwhile waits or is told, the next open finishes", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      const { serial, certs } = await schema25WithKeys(c, 0x0a00);
      const state = async () => ({
        version: (await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value as string,
        marks: (await c.query("SELECT key, value FROM meta WHERE key LIKE 'upgrade.%'")).rows.map((r: { key: string; value: string }) => [r.key, JSON.parse(r.value)]),
        keys: (await c.query("SELECT serial FROM certificates WHERE certified_key IS NOT NULL ORDER BY serial")).rows.map((r: { serial: string }) => r.serial),
      });
      // A process killed (SIGKILL) in the third page, its rows written and not committed.
      const dist = pathToFileURL(join(import.meta.dirname, "..", "..", "dist", "src", "store", "postgres.js")).href;
      const script = `import(${JSON.stringify(dist)}).then(async (m) => {
        await m.PostgresStore.open(process.argv[1], { upgrade: { pageRows: 5, inPage: (page, version) => { if (version === 26 && page === 3) process.kill(process.pid, "SIGKILL"); } } });
        console.log("finished without being killed");
      })`;
      const child = childOutput(spawn(process.execPath, ["--input-type=module", "-e", script, url], { stdio: ["ignore", "pipe", "inherit"] }));
      expect((await child.ended).signal).toBe("SIGKILL"); // once its stdout is read to the end (child-output.ts)
      expect(child.stdout()).toBe("");
      expect(await state()).toEqual({ version: "25", marks: [["upgrade.26.fill", { after: serial(9), done: 10 }]], keys: certs.slice(0, 10).map((k) => k.serial) });
      // A key the committed pages filled, marked by hand: the next open must not compute it again.
      await c.query("UPDATE certificates SET certified_key = '\\x00' WHERE serial = $1", [serial(4)]);

      const seen: UpgradeProgress[] = [];
      let during: unknown;
      const s = await PostgresStore.open(url, {
        upgrade: {
          pageRows: 5,
          onProgress: (p) => seen.push(p),
          inPage: async (page) => {
            if (page !== 1) return;
            // Another host opening the store meanwhile waits on the migration lock, and is told why it waited.
            during = await PostgresStore.open(url, { lockTimeoutMs: 300 }).then(
              () => "opened",
              (e: JpkiError) => ({ code: e.code, details: e.details, version: undefined }),
            );
          },
        },
      });
      try {
        expect(during).toEqual({ code: "ERR_WORKSPACE_LOCKED", details: { reason: "upgrade-in-progress" }, version: undefined });
        expect(seen.map((p) => [p.stage, p.done])).toEqual([["filling", 15], ["filling", 20], ["filling", 23], ["indexing", 23], ["done", 23]]);
        expect(await state()).toEqual({ version: String(PG_SCHEMA_VERSION), marks: [], keys: certs.map((k) => k.serial) });
        const rows = (await c.query<{ serial: string; der: Buffer; certified_key: Buffer }>("SELECT serial, der, certified_key FROM certificates ORDER BY serial")).rows;
        for (const r of rows) expect([r.serial, r.certified_key]).toEqual([r.serial, r.serial === serial(4) ? Buffer.from([0]) : certifiedKeyOf(r.der)]);
        await c.query("UPDATE certificates SET certified_key = $2 WHERE serial = $1", [serial(4), certifiedKeyOf(certs[4]!.der)]);
        // The key-in-use check reads the filled column (and its index).
        await s.putCa(ca);
        await s.upsertResidents([{ residentCode: "r-new", municipalityCode: "131016", fourItems: items, status: "active" }]);
        expect(await s.commitIssuances([keyed("0b00", "r-new", 1000, "key 4")])).toEqual([{ status: "key-in-use", serial: serial(4), why: "other-resident" }]);
        expect(await s.commitIssuances([keyed("0b01", "r-new", 1000, "key 17")])).toEqual([{ status: "key-in-use", serial: serial(17), why: "other-resident" }]);
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });
  it("a stop during its own fill (a daemon's SIGTERM, nobody else holding the lock) ends the open between two pages: the pages committed stay, the next open goes on from them", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      const { serial, certs } = await schema25WithKeys(c, 0x0c00);
      const stop = new AbortController();
      const reason = new Error("stopped by SIGTERM");
      // the stop comes while the second page is being written, before it commits
      const opening = PostgresStore.open(url, { signal: stop.signal, upgrade: { pageRows: 5, inPage: (page, version) => void (version === 26 && page === 2 && stop.abort(reason)) } });
      await expect(opening).rejects.toBe(reason);
      const marks = async () => (await c.query("SELECT key, value FROM meta WHERE key = 'schema_version' OR key LIKE 'upgrade.%' ORDER BY key")).rows.map((r: { key: string; value: string }) => [r.key, r.value]);
      const filledKeys = async () => (await c.query("SELECT serial FROM certificates WHERE certified_key IS NOT NULL ORDER BY serial")).rows.map((r: { serial: string }) => r.serial);
      // the page the stop came in committed, no page after it ran; the session's migration lock is released
      expect(await marks()).toEqual([["schema_version", "25"], ["upgrade.26.fill", JSON.stringify({ after: serial(9), done: 10 })]]);
      expect(await filledKeys()).toEqual(certs.slice(0, 10).map((k) => k.serial));
      expect((await c.query("SELECT pg_try_advisory_lock($1, 0) AS got", [ADVISORY_LOCKS.migration])).rows[0].got).toBe(true);
      await c.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.migration]);
      const s = await PostgresStore.open(url, { upgrade: { pageRows: 5 } });
      await s.close();
      expect(await marks()).toEqual([["schema_version", String(PG_SCHEMA_VERSION)]]);
      const rows = (await c.query<{ serial: string; der: Buffer; certified_key: Buffer }>("SELECT serial, der, certified_key FROM certificates ORDER BY serial")).rows;
      expect(rows.map((r) => r.serial)).toEqual(certs.map((k) => k.serial));
      for (const r of rows) expect(r.certified_key).toEqual(certifiedKeyOf(r.der));
    } finally {
      await c.end();
    }
  });
  it("upgrades a schema-28 store with the writer guard (29): what an older jpki left without a key, below the fill's mark too, is filled; its next insert is refused by the constraint whose name says what to do", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    // The previous release's process, connected before the upgrade.
    const old = await admin(url);
    try {
      await atSchema(c, 28);
      const oldInsert = (serial: string, code: string, der: Buffer) =>
        old.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der)
           VALUES ($1, '13-sig', 'signature', $2, '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $3)`,
          [serial, code, der],
        );
      // As it wrote them during version 26's fill: serials below the fill's mark, so the fill never saw them.
      const slipped = keyed("0a01", "r1", 0, "slipped past the fill");
      await oldInsert("0a01", "r1", slipped.der as Buffer);
      await oldInsert("0a00", "r0", Buffer.from("3000", "hex"));
      const filled = keyed("0a02", "r2", 0, "filled by the fill");
      await c.query(
        `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der, certified_key)
         VALUES ('0a02', '13-sig', 'signature', 'r2', '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $1, $2)`,
        [filled.der, certifiedKeyOf(filled.der)],
      );
      const s = await PostgresStore.open(url);
      try {
        expect((await c.query("SELECT serial, certified_key FROM certificates ORDER BY serial")).rows).toEqual([
          { serial: "0a00", certified_key: NO_CERTIFIED_KEY },
          { serial: "0a01", certified_key: certifiedKeyOf(slipped.der) },
          { serial: "0a02", certified_key: certifiedKeyOf(filled.der) },
        ]);
        // Added NOT VALID (no scan of the rows there), with the whole sentence as its comment.
        const guard = (
          await c.query<{ valid: boolean; def: string; comment: string }>(
            "SELECT convalidated AS valid, pg_get_constraintdef(oid) AS def, obj_description(oid, 'pg_constraint') AS comment FROM pg_constraint WHERE conrelid = 'certificates'::regclass AND conname = $1",
            [PG_WRITER_GUARD_CONSTRAINT],
          )
        ).rows;
        expect(guard).toEqual([{ valid: false, def: "CHECK ((certified_key IS NOT NULL)) NOT VALID", comment: expect.stringMatching(/^jpki writer guard: this store was upgraded by a newer jpki, .*certified_key.* Stop that process and run the new release$/) }]);
        // The older jpki's next certificate: refused, in a transaction that registered its 発行情報 first — none stays.
        await old.query("BEGIN");
        await old.query(
          `INSERT INTO registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after)
           VALUES ('0a03', 'r3', '13-sig', 'signature', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999)`,
        );
        const refused = await oldInsert("0a03", "r3", keyed("0a03", "r3", 0, "a key").der as Buffer).then(() => undefined, (e: unknown) => e);
        await old.query("ROLLBACK");
        expect(refused).toMatchObject({ code: "23514", constraint: PG_WRITER_GUARD_CONSTRAINT, table: "certificates" });
        expect(PG_WRITER_GUARD_CONSTRAINT.length).toBeLessThanOrEqual(63);
        expect((await c.query("SELECT count(*)::int AS n FROM certificates WHERE serial = '0a03'")).rows[0].n).toBe(0);
        expect((await c.query("SELECT count(*)::int AS n FROM registry_issuances WHERE serial = '0a03'")).rows[0].n).toBe(0);
        // Its revocations (updates of rows that all have a key now) still pass the check.
        await old.query("UPDATE certificates SET revoked_at = 1, reason = 0, revocation_source = 'manual' WHERE serial = '0a00'");
        // The key of the row it wrote before is taken.
        await s.putCa(ca);
        await s.upsertResidents([{ residentCode: "r-new", municipalityCode: "131016", fourItems: items, status: "active" }]);
        expect(await s.commitIssuances([keyed("0b00", "r-new", 1000, "slipped past the fill")])).toEqual([{ status: "key-in-use", serial: "0a01", why: "other-resident" }]);
      } finally {
        await s.close();
      }
    } finally {
      await old.end();
      await c.end();
    }
  });

  it("finds the keys an older writer certified to two residents, which the upgrade filled without a word (Store.sharedCertifiedKeys): live ones only, by whole key, not one resident's renewal", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    const now = new Date(5_000);
    const LIVE = Date.UTC(2030, 0, 1);
    try {
      await atSchema(c, 28);
      // As the previous release inserted them (schema 28 has the column; that writer never filled it, nor checked a key).
      const old = async (serial: string, code: string, key: string, o: { notAfter?: number; revokedAt?: number; certifiedKey?: Buffer } = {}) => {
        const cert = keyed(serial, code, 0, key);
        await c.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der, revoked_at, reason, revocation_source, certified_key)
           VALUES ($1, '13-sig', 'signature', $2, '131016', 'n', 'a', '1980-01-01', 'male', 0, $3, 0, $4, $5, $6, $7, $8)`,
          [serial, code, o.notAfter ?? LIVE, cert.der, o.revokedAt ?? null, o.revokedAt === undefined ? null : 0, o.revokedAt === undefined ? null : "manual", o.certifiedKey ?? null],
        );
        return cert;
      };
      const stolen = await old("0b01", "r1", "one key, two residents");
      await old("0b02", "r2", "one key, two residents");
      await old("0b03", "r2", "one key, two residents");
      await old("0b11", "r3", "one revoked");
      await old("0b12", "r4", "one revoked", { revokedAt: 1_000 });
      await old("0b21", "r5", "one expired");
      await old("0b22", "r6", "one expired", { notAfter: 4_000 });
      await old("0b31", "r7", "a renewal that kept its key");
      await old("0b32", "r7", "a renewal that kept its key");
      // Another key whose 8 octets are the same (certified_key is a lookup, not the key): not the same key.
      await old("0b41", "r8", "another key, the same 8 octets", { certifiedKey: certifiedKeyOf(stolen.der)! });
      const s = await PostgresStore.open(url);
      try {
        expect(await s.sharedCertifiedKeys({ now })).toEqual([
          {
            certifiedKey: certifiedKeyOf(stolen.der)!.toString("hex"),
            certificates: ["0b01:r1", "0b02:r2", "0b03:r2"].map((x) => ({ serial: x.slice(0, 4), caId: "13-sig", type: "signature", residentCode: x.slice(5), notAfter: new Date(LIVE) })),
          },
        ]);
        await s.putCa(ca);
        // once one of them is revoked, the key is one resident's: nothing found
        await s.revoke({ serial: "0b01", revokedAt: new Date(6_000), reason: 1, source: "manual" });
        expect(await s.sharedCertifiedKeys({ now })).toEqual([]);
      } finally {
        await s.close();
      }
    } finally {
      await c.end();
    }
  });

  it("the writer guard: the current code's inserts (an issuance's binary COPY, a load) store a DER with no key as the empty marker; a refusal this jpki meets is ERR_STORE_UPGRADED", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const c = await admin(url);
    const target = await PostgresStore.open(await server.createDatabase(), { create: true, loadTarget: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const noKey = { ...keyed("0a01", "r1", 0, "unused"), der: Buffer.from("30030201ff", "hex") };
      expect(await s.commitIssuances([noKey])).toEqual([{ status: "committed", superseded: [] }]);
      expect((await c.query("SELECT serial, certified_key FROM certificates")).rows).toEqual([{ serial: "0a01", certified_key: NO_CERTIFIED_KEY }]);
      await target.load(s.dump());
      await target.confirmLoad();
      expect((await target.certificatesForStatus({ serials: ["0a01"], certificateIds: [] })).map((r) => r.serial)).toEqual(["0a01"]);

      // A still newer jpki's guard, relying on a column this one may leave empty (here: the application id).
      await c.query(`ALTER TABLE certificates DROP CONSTRAINT ${PG_WRITER_GUARD_CONSTRAINT}`);
      await c.query(`ALTER TABLE certificates ADD CONSTRAINT ${PG_WRITER_GUARD_CONSTRAINT} CHECK (application_id IS NOT NULL AND certified_key IS NOT NULL) NOT VALID`);
      const rec = keyed("0a02", "r2", 0, "a key");
      const e = await s.commitIssuances([rec]).then(() => undefined, (x: unknown) => x);
      expect(e).toMatchObject({ code: "ERR_STORE_UPGRADED", details: { reason: "writer-guard" } });
      expect((e as Error).message).toMatch(/^the store was upgraded by a newer jpki while this process had it open, and refused its write while .*: stop this process and run the new release$/);
      expect(await s.commitIssuances([{ ...rec, applicationId: "app-2" }])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      await target.close();
      await c.end();
      await s.close();
    }
  });
});
