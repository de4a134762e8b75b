import { spawn } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { inspect } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connectionString, startPostgres, type PostgresTestServer } from "../../test/postgres-server.js";
import { isJpkiError, type JpkiError } from "../errors.js";
import { decodeEntries, encodeEntry } from "../profile/crl-entry.js";
import { CLOSED_BEFORE_SUCCESSORS, expectSuccessorsFilled, keyed, nextSequenceDecider, seedSweepFixture, storeContract } from "./contract.js";
import { auditContract } from "./audit-contract.js";
import { RevocationBlocks } from "./revocation-log.js";
import { ADVISORY_LOCKS, PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresStore, parseLogCopy, type PgMigration } from "./postgres.js";
import type { CaRecord, Store } from "./types.js";
import { certifiedKeyOf } from "./rows.js";
import type { UpgradeProgress } from "./upgrade.js";
import { StoreWatchdog } from "./watchdog.js";
import { DisclosureLog } from "../verifier/disclosure-log.js";

let server: PostgresTestServer;
beforeAll(async () => {
  // prepared transactions: a CA-keys lock held where pg_locks names no session (the tests of withCaKeysLock's retry)
  server = await startPostgres({ settings: { max_prepared_transactions: 4 } });
});
afterAll(async () => {
  await server?.stop();
});

/**
 * A database the store made and migrated once, closed: the template every contract store is copied from.
 * Copying it is a file copy, where migrating anew ran every migration for each of the ~60 stores (what
 * migrating from empty and from older schemas does is tested below, on databases of their own).
 */
let migrated: Promise<string> | undefined;
function migratedTemplate(): Promise<string> {
  return (migrated ??= (async () => {
    const url = await server.createDatabase();
    await (await PostgresStore.open(url, { create: true })).close();
    return new URL(url).pathname.slice(1);
  })());
}

/** A new database per store, each a copy of the migrated template: the contract's tests share nothing. */
const fresh = async (): Promise<Store> => PostgresStore.open(await server.createDatabase(await migratedTemplate()), { create: true });

storeContract("postgres", fresh);
auditContract("postgres", fresh);

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const ca: CaRecord = { id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };

/** A plain connection to look at (and hold locks in) the database the stores use. */
async function admin(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Runs one migration as the store does (SQL, or a function given the connection): to build older schemas. */
async function migrate(c: pg.Client, m: PgMigration): Promise<void> {
  if (typeof m === "string") await c.query(m);
  else await m(c);
}

/** A database as this schema version left it: its migrations run and the version recorded, nothing else. */
async function atSchema(c: pg.Client, version: number): Promise<void> {
  for (const m of PG_MIGRATIONS.slice(0, version)) await migrate(c, m);
  await c.query("INSERT INTO meta (key, value) VALUES ('schema_version', $1)", [String(version)]);
}

/**
 * How many sessions on this database are waiting for a lock right now. Asked on a connection outside any
 * transaction: inside one, pg_stat_activity is a snapshot taken at its first use.
 */
async function waiting(c: pg.Client): Promise<number> {
  const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
  return r.rows[0]!.n;
}

/**
 * Two stores on one new database; every transaction `runs` starts is held at its first lock (the "all residents"
 * lock, held by a third session) until all of them wait there, then they are let go at the same moment.
 */
async function twoStoresReleasedTogether<T>(o: {
  setup: (a: PostgresStore) => Promise<unknown>;
  runs: (a: PostgresStore, b: PostgresStore) => Promise<T>[];
  beforeRelease?: () => void;
  after: (a: PostgresStore, b: PostgresStore, results: T[]) => Promise<void>;
}): Promise<void> {
  const url = await server.createDatabase();
  const a = await PostgresStore.open(url, { create: true });
  const b = await PostgresStore.open(url);
  const gate = await admin(url);
  const watch = await admin(url);
  try {
    await o.setup(a);
    await gate.query("BEGIN");
    await gate.query("SELECT pg_advisory_xact_lock($1, 0)", [ADVISORY_LOCKS.allResidents]);
    const runs = o.runs(a, b);
    await vi.waitFor(async () => expect(await waiting(watch)).toBe(runs.length), { timeout: 20_000, interval: 20 });
    o.beforeRelease?.();
    await gate.query("COMMIT");
    await o.after(a, b, await Promise.all(runs));
  } finally {
    await watch.end();
    await gate.end();
    await a.close();
    await b.close();
  }
}

describe("PostgresStore specifics", () => {
  it("commits liveness checks in id order under concurrent writers: a client paging by the last id it saw misses none", async () => {
    const url = await server.createDatabase(await migratedTemplate());
    const writers = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url)));
    const reader = await PostgresStore.open(url);
    const verifierId = "v-paging";
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ verifierId, at: new Date(), caId: "13-sig", serial: (0x1000 + i).toString(16), certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined }));
    try {
      let stop = false;
      const loops = writers.map(async (w, k) => {
        while (!stop) await w.recordStatusChecks(batch(5 + 7 * k), []);
      });
      // GET /v1/status/history's paging, while the writers go on
      let after = 0;
      let seen = 0;
      const page = async () => {
        const rows = await reader.listStatusChecks({ verifierId, after, limit: 1000 });
        seen += rows.length;
        if (rows.length) after = rows.at(-1)!.id;
        return rows.length;
      };
      const until = Date.now() + 3000;
      while (Date.now() < until) await page();
      stop = true;
      await Promise.all(loops);
      while (await page()) {}
      const all = (await reader.listStatusChecks({ verifierId, after: 0, limit: 10_000_000 })).length;
      expect(all).toBeGreaterThan(500);
      expect(seen).toBe(all);
    } finally {
      for (const s of [...writers, reader]) await s.close();
    }
  }, 30_000);

  it("leaves a notice batch's revoked certificates' issuance information rows for the sweep, which leaves exactly the live ones", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const f = await seedSweepFixture(s);
    const a = await admin(url);
    try {
      const rows = async () => (await a.query<{ serial: string }>("SELECT serial FROM registry_issuances ORDER BY serial")).rows.map((r) => r.serial);
      // the manual revocation deleted its row (0e06); the notice batch left 0e05 and 0e07, which no read returns
      expect(await rows()).toEqual(["0e01", "0e02", "0e03", "0e04", "0e05", "0e07", "0e08"]);
      expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 3 })).toBe(f.expired);
      expect(await rows()).toEqual(f.live);
    } finally {
      await a.end();
      await s.close();
    }
  });

  it("streams a CRL from the revocation log, block by block in revocation order over several pages, and a consumer that stops early gives its connection back", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 2 });
    await s.putCa(ca);
    const n = 20_200;
    const codes = Array.from({ length: n }, (_, i) => `r${String(i).padStart(6, "0")}`);
    await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    const serial = (i: number) => (0x100000 + i).toString(16);
    await s.commitIssuances(codes.map((residentCode, i) => ({
      serial: serial(i), caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    // five notice batches of 4,000, each revoking in descending serial order (five large blocks), then 200
    // manual revocations (200 blocks of one): more blocks than a page's first 64, of very different sizes
    const order: string[] = [];
    for (let k = 0; k < 5; k++) {
      const batch = Array.from({ length: 4000 }, (_, j) => 20_000 - 1 - (k * 4000 + j));
      order.push(...batch.map(serial));
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
        commit: { at: new Date(1000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"], revocations: batch.map((i) => ({ serial: serial(i), reason: 1, source: "t", residentCode: codes[i]! })) },
      }));
    }
    for (let i = 20_000; i < n; i++) {
      await s.revoke({ serial: serial(i), revokedAt: new Date(2000), reason: 1, source: "manual" });
      order.push(serial(i));
    }
    const counts: number[] = [];
    const listed: string[] = [];
    for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) {
      counts.push(chunk.count);
      const serials = decodeEntries(chunk.der).map((e) => e.serial);
      expect(serials.length).toBe(chunk.count);
      listed.push(...serials);
    }
    expect(counts).toEqual([4000, 4000, 4000, 4000, 4000, ...Array.from({ length: 200 }, () => 1)]);
    expect(listed).toEqual(order); // the order they were revoked in, not by serial
    // More early exits than the pool has connections, one with the next page already asked for: each must have
    // rolled back and released its own.
    for (let i = 0; i < 5; i++) {
      for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) {
        expect(chunk.count).toBe(4000);
        break;
      }
    }
    expect(await s.dirtyCas()).toEqual(["13-sig"]);
    await s.close();
  });

  it("reads the log by binary COPY: a CA id that needs quoting, and a failing read that is ERR_STORE and gives its connection back", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 1 });
    const odd = { ...ca, id: "13-o'k\\x" };
    await s.putCa(odd);
    await s.putCa(ca);
    await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    await s.commitIssuances(["r1", "r2"].map((residentCode, i) => ({
      serial: `0f0${i + 1}`, caId: i ? "13-sig" : odd.id, type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    for (const serial of ["0f01", "0f02"]) await s.revoke({ serial, revokedAt: new Date(3000), reason: 1, source: "manual" });
    const list = async (caId: string) => {
      const out: string[] = [];
      for await (const chunk of s.crlEntries(caId, { expiredBefore: new Date(0) })) out.push(...decodeEntries(chunk.der).map((e) => e.serial));
      return out;
    };
    expect(await list(odd.id)).toEqual(["0f01"]);
    expect(await list("13-sig")).toEqual(["0f02"]);
    const a = await admin(url);
    await a.query("ALTER TABLE revocation_log RENAME TO revocation_log_gone");
    await expect(list("13-sig")).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE"));
    await a.query("ALTER TABLE revocation_log_gone RENAME TO revocation_log");
    await a.end();
    expect(await list("13-sig")).toEqual(["0f02"]); // the one connection came back
    await s.close();
  });

  it("parses a binary COPY of log blocks however its bytes are cut into messages, and refuses one that ends early", () => {
    const i4 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
    const i8 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(v); return b; };
    const f = (b: Buffer | null) => (b ? Buffer.concat([i4(b.length), b]) : i4(-1));
    const row = (id: bigint, entries: number, min: bigint, der: Buffer, meta: Buffer | null) =>
      Buffer.concat([Buffer.from([0, 5]), f(i8(id)), f(i4(entries)), f(i8(min)), f(der), f(meta)]);
    const stream = Buffer.concat([
      Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), i4(0), i4(3), Buffer.from("xyz"), // a header extension, skipped
      row(7n, 2, 1000n, Buffer.from("3003020101", "hex"), null),
      row(9n, 1, 2000n, Buffer.from("300402020102", "hex"), Buffer.alloc(8, 1)),
      Buffer.from([0xff, 0xff]),
    ]);
    const want = [
      { id: 7n, entries: 2, minNotAfter: 1000, der: Buffer.from("3003020101", "hex"), meta: null },
      { id: 9n, entries: 1, minNotAfter: 2000, der: Buffer.from("300402020102", "hex"), meta: Buffer.alloc(8, 1) },
    ];
    expect(parseLogCopy([stream])).toEqual(want);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(parseLogCopy([stream.subarray(0, cut), Buffer.alloc(0), stream.subarray(cut)])).toEqual(want);
    }
    expect(parseLogCopy(Array.from(stream, (b) => Buffer.from([b])))).toEqual(want);
    expect(() => parseLogCopy([stream.subarray(0, stream.length - 3)])).toThrow(/ends early/);
    expect(() => parseLogCopy([Buffer.from("not a copy at all")])).toThrow(/signature/);
  });

  it("a delta CRL lists the revocations its base's snapshot did not see: one still running when the base was reserved, not one committed before; a full CRL lists the log blocks its snapshot sees, whatever their ids", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    await s.putCa(ca);
    await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    await s.commitIssuances(["r1", "r2"].map((residentCode, i) => ({
      serial: `0e0${i + 1}`, caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    // A revoking transaction has written its row but not committed when the base is reserved; a later one
    // (a higher transaction id) committed before: a mark by transaction id order would get both wrong.
    // As another jpki process would, it appends its log block too: that block takes the lower id and commits last.
    const full = async () => {
      const out: string[] = [];
      for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) out.push(...decodeEntries(chunk.der).map((e) => e.serial));
      return out;
    };
    const a = await admin(url);
    await a.query("BEGIN");
    await a.query("UPDATE certificates SET revoked_at = 1000, reason = 1, revocation_source = 't', revoked_xid = pg_current_xact_id() WHERE serial = '0e01'");
    const blocks = new RevocationBlocks();
    blocks.add("13-sig", "0e01", 1000, 1, Date.UTC(2030, 0, 1), "131016");
    const [b1] = blocks.take();
    await a.query("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES ($1, $2, $3, $4, $5)", [b1!.caId, b1!.entries, b1!.minNotAfter, b1!.der, b1!.meta]);
    await s.revoke({ serial: "0e02", revokedAt: new Date(2000), reason: 1, source: "manual" });
    expect(await full()).toEqual(["0e02"]);
    const base = await s.reserveCrl("13-sig", new Date(0), new Date(Date.UTC(2030, 0, 1)));
    await a.query("COMMIT");
    await a.end();
    expect(await full()).toEqual(["0e01", "0e02"]); // id order, not commit order: both are listed
    expect(await s.publishCrl({ caId: "13-sig", number: base.number, entries: 1, path: "crl/13-sig.crl", sha256: "ab" }, () => undefined)).toBe(true);
    const listed: string[] = [];
    for await (const chunk of s.deltaCrlEntries("13-sig", base.number, { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
    expect(listed).toEqual(["0e01"]);
    await s.close();
  });

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

  it("holdPresence's connection, ended by the server (a restart, a terminated backend), is opened again; closed, it stays gone", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, presenceRetryMs: 50 });
    await s.holdPresence("serve");
    await s.holdPresence("serve"); // once
    const c = await admin(url);
    const named = async () => (await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'jpki serve %'")).rows.map((r) => r.pid);
    const first = await named();
    expect(first).toHaveLength(1);
    await c.query("SELECT pg_terminate_backend($1)", [first[0]]);
    let now: number[] = [];
    for (let i = 0; i < 200 && !(now.length === 1 && now[0] !== first[0]); i++) {
      await new Promise((r) => setTimeout(r, 25));
      now = await named();
    }
    expect(now).toHaveLength(1);
    expect(now[0]).not.toBe(first[0]);
    await s.close();
    await new Promise((r) => setTimeout(r, 200)); // past a retry's delay: none opens it again
    expect(await named()).toEqual([]);
    await c.end();
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

  // Found in review: pg_restore --clean of a backup from before migration 22 leaves carried_revocations as it was
  // (IF NOT EXISTS), while the backup brings back the certificate of a serial an earlier restore had carried.
  // Both rows were listed: the partition CRL and the delta named the serial twice, which crl-index.ts refuses.
  it("lists on a partition and a delta what the revocation log holds, once each: a revocation in the store and an entry carried over", async () => {
    // Partitions and deltas read the log since migration 23, as full CRLs do: a carried entry is there (carryRevocations
    // appends it), and no row of carried_revocations adds it a second time.
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const far = new Date(Date.UTC(2030, 0, 1));
      await s.commitIssuances(["0c01", "0c02"].map((serial, i) => ({
        serial, caId: "13-sig", type: "signature" as const, residentCode: `r${i + 1}`, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: far, issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
      })));
      const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3));
      const r = await s.reserveCrl("13-sig", t, n);
      await s.publishCrl({ caId: "13-sig", number: r.number, entries: 0, path: "p", sha256: "a" }, () => undefined);
      await s.revoke({ serial: "0c01", revokedAt: new Date(4000), reason: 1, source: "restore" });
      await s.carryRevocations([{ caId: "13-sig", serial: "0c03", revokedAt: new Date(5000), reason: 1, notAfter: far, municipality: "131016" }]);
      const parts = await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: new Date(0) });
      expect(parts.get("131016")!.flatMap((c) => decodeEntries(c.der)).map((e) => e.serial)).toEqual(["0c01", "0c03"]);
      const delta = await s.reserveDeltaCrl("13-sig", t, n);
      expect(delta?.baseNumber).toBe(r.number);
      const listed: string[] = [];
      for await (const chunk of s.deltaCrlEntries("13-sig", r.number, { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
      expect(listed).toEqual(["0c01", "0c03"]);
    } finally {
      await s.close();
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
      for (let i = 0; i < 200 && Number(after.upd) - Number(before.upd) < 20; i++) (await new Promise((r) => setTimeout(r, 50)), (after = await stats()));
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
      expect(await constraints()).toEqual(before.filter((n) => n !== "certificates_ca_id_fkey"));
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
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

  it("a server it cannot reach is ERR_STORE_UNREACHABLE; a file error inside a transaction (install) stays ERR_STORE", async () => {
    await expect(PostgresStore.open(`${server.url("postgres").replace(/\?host=.*$/, "")}?host=/nonexistent-jpki-socket-dir`)).rejects.toMatchObject({
      code: "ERR_STORE_UNREACHABLE",
      details: { reason: "network", code: "ENOENT" },
    });
    const s = await PostgresStore.open(await server.createDatabase(), { create: true });
    try {
      await s.putCa(ca);
      const { number } = await s.reserveCrl(ca.id, new Date(0), new Date(1000));
      const enoent = Object.assign(new Error("ENOENT: no such file or directory, rename 'crl/x.tmp' -> 'crl/x'"), { code: "ENOENT", syscall: "rename" });
      const install = () => {
        throw enoent;
      };
      await expect(s.publishCrl({ caId: ca.id, number, entries: 0, path: "crl/13-sig.crl", sha256: "00" }, install)).rejects.toMatchObject({ code: "ERR_STORE" });
    } finally {
      await s.close();
    }
  });

  it("a role without a privilege it needs is ERR_STORE_PERMISSION naming the object, both when the store is created and when a command writes", async () => {
    const url = await server.createDatabase();
    const db = decodeURIComponent(new URL(url).pathname.slice(1));
    const role = `jpki_noperm_${process.pid}`;
    const a = await admin(server.url("postgres"));
    try {
      await a.query(`CREATE ROLE ${role} LOGIN`);
      const asRole = url.replace(/^postgresql:\/\/[^@]*@/, `postgresql://${role}@`);
      // PostgreSQL 15 grants no CREATE on schema public to other roles: `ca init` as an application role.
      await expect(PostgresStore.open(asRole, { create: true })).rejects.toMatchObject({
        code: "ERR_STORE_PERMISSION",
        message: expect.stringContaining("permission denied for schema public"),
        details: { code: "42501" },
      });
      // A store the owner made, the role allowed to read only: reading works, the first write names the table.
      await (await PostgresStore.open(url, { create: true })).close();
      const owner = await admin(url);
      try {
        await owner.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
      } finally {
        await owner.end();
      }
      const s = await PostgresStore.open(asRole);
      try {
        expect(await s.listCas()).toEqual([]);
        const err = await s.putCa(ca).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: "ERR_STORE_PERMISSION", message: expect.stringMatching(/permission denied for table cas/) });
      } finally {
        await s.close();
      }
    } finally {
      await a.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
      await a.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await a.end();
    }
  });

  it("a constraint a row breaks is ERR_STORE naming the SQLSTATE and constraint, and neither message, details nor cause quotes the row's resident code or four items", async () => {
    // The server's reports of these quote the row: `Key (name, …)=(山田　太郎, …)`, `Failing row contains
    // (12345678906, …)`, and for 22003 the message itself (`value "12345678906" is out of range`).
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const a = await admin(url);
    const code = "12345678906";
    const person = (residentCode: string) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const });
    const secrets = [code, "12345678914", items.name, items.address, items.birthDate, items.gender];
    const failure = async (records: ReturnType<typeof person>[]) => {
      const e = await s.upsertResidents(records).then(() => undefined, (x: unknown) => x);
      expect(e).toSatisfy((x: unknown) => isJpkiError(x, "ERR_STORE"));
      const err = e as JpkiError;
      for (const said of [err.message, JSON.stringify(err.details ?? {}), JSON.stringify(err.toJSON()), inspect(err, { depth: 10 }), String(err)]) {
        for (const v of secrets) expect(said, v).not.toContain(v);
      }
      return err;
    };
    try {
      await a.query("CREATE UNIQUE INDEX residents_one_person ON residents (name, address, birth_date, gender)");
      const unique = await failure([person(code), person("12345678914")]);
      expect(unique.message).toMatch(/^store failure while saving residents: PostgreSQL error 23505 unique_violation on constraint residents_one_person of table residents/);
      expect(unique.details).toEqual({ code: "23505", constraint: "residents_one_person", table: "residents" });
      expect(unique.cause).toMatchObject({ code: "23505", constraint: "residents_one_person", table: "residents" });
      await a.query("DROP INDEX residents_one_person");

      await a.query("ALTER TABLE residents ADD CONSTRAINT residents_not_chiyoda CHECK (address NOT LIKE '%千代田%')");
      const check = await failure([person(code)]);
      expect(check.message).toContain("PostgreSQL error 23514 check_violation on constraint residents_not_chiyoda of table residents");
      expect(check.details).toEqual({ code: "23514", constraint: "residents_not_chiyoda", table: "residents" });
      await a.query("ALTER TABLE residents DROP CONSTRAINT residents_not_chiyoda");

      await a.query("ALTER TABLE residents ALTER COLUMN successor_code SET NOT NULL");
      const notNull = await failure([person(code)]);
      expect(notNull.message).toContain("PostgreSQL error 23502 not_null_violation on column successor_code of table residents");
      expect(notNull.details).toMatchObject({ code: "23502", column: "successor_code", table: "residents" });
      await a.query("ALTER TABLE residents ALTER COLUMN successor_code DROP NOT NULL");

      await a.query("ALTER TABLE residents ADD CONSTRAINT residents_code_int CHECK (resident_code::int > 0)");
      const outOfRange = await failure([person(code)]);
      expect(outOfRange.message).toContain("PostgreSQL error 22003 numeric_value_out_of_range");
      expect(outOfRange.details).toEqual({ code: "22003" });
      await a.query("ALTER TABLE residents DROP CONSTRAINT residents_code_int");

      // nothing was saved, and the store works on
      expect(await s.getResident(code)).toBeUndefined();
      expect(await s.upsertResidents([person(code)])).toEqual({ inserted: 1, updated: 0 });
    } finally {
      await a.end();
      await s.close();
    }
  });

  it("two stores on one database, released at the same moment, decide notice batches for one resident one after the other", async () => {
    const seen: number[] = [];
    const decide = nextSequenceDecider(seen);
    await twoStoresReleasedTogether({
      setup: (a) => a.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]),
      runs: (a, b) => ["a1", "b1", "a2", "b2"].map((id) => (id.startsWith("a") ? a : b).commitNoticeBatch({ noticeIds: [id], residentCodes: ["r1"] }, decide(id))),
      beforeRelease: () => expect(seen).toEqual([]),
      after: async (_a, b) => {
        // each decided from what the one before it committed: no two saw the same sequence
        expect([...seen].sort()).toEqual([0, 1, 2, 3]);
        const ctx = await b.loadNoticeContext({ noticeIds: ["a1", "b1", "a2", "b2"], residentCodes: ["r1"] });
        expect(ctx.lastSequence.get("r1")).toBe(4);
        expect([...ctx.known.values()].map((k) => k.status)).toEqual(["applied", "applied", "applied", "applied"]);
      },
    });
  });

  it("two stores on one database certifying one key for two residents at the same moment: one certificate, the other refused", async () => {
    // three keys, each asked for by one resident through a and another through b
    const codes = ["r1", "r2", "r3", "r4", "r5", "r6"];
    await twoStoresReleasedTogether({
      setup: async (a) => {
        await a.putCa(ca);
        await a.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      },
      runs: (a, b) => codes.map((code, i) => (i % 2 ? b : a).commitIssuances([keyed(`0b0${i + 1}`, code, 1000, `key ${i >> 1}`)])),
      after: async (a, _b, results) => {
        const out = results.map(([r]) => r!.status);
        expect(out.filter((x) => x === "committed")).toHaveLength(3);
        expect(out.filter((x) => x === "key-in-use")).toHaveLength(3);
        expect(await a.findCertificates({ status: "valid" })).toHaveLength(3);
      },
    });
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
        expect((await c.query("SELECT serial, certified_key IS NULL AS none FROM certificates ORDER BY serial")).rows).toEqual([{ serial: "0a00", none: true }, { serial: "0a01", none: false }]);
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
      await atSchema(c, 25);
      const serial = (i: number) => (0x0a00 + i).toString(16).padStart(4, "0");
      const certs = Array.from({ length: 23 }, (_, i) => keyed(serial(i), `r${i}`, 0, `key ${i}`));
      for (const k of certs) {
        await c.query(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender, not_before, not_after, issued_at, der)
           VALUES ($1, '13-sig', 'signature', $2, '131016', 'n', 'a', '1980-01-01', 'male', 0, 9999999999999, 0, $3)`,
          [k.serial, k.residentCode, k.der],
        );
      }
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
      const child = spawn(process.execPath, ["--input-type=module", "-e", script, url], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      expect(await new Promise((res) => child.on("exit", (_code, sig) => res(sig)))).toBe("SIGKILL");
      expect(out).toBe("");
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

  it("two publishers of one CA released at the same moment never install #n after #n+1", async () => {
    const url = await server.createDatabase();
    const a = await PostgresStore.open(url, { create: true });
    const b = await PostgresStore.open(url);
    const gate = await admin(url);
    const watch = await admin(url);
    try {
      await a.putCa(ca);
      for (let round = 0; round < 5; round++) {
        const lower = await a.reserveCrl(ca.id, new Date(0), new Date(1000));
        const higher = await b.reserveCrl(ca.id, new Date(0), new Date(1000));
        expect(higher.number).toBe(lower.number + 1n);
        const installed: bigint[] = [];
        const publish = (s: Store, n: bigint) =>
          s.publishCrl({ caId: ca.id, number: n, entries: 0, path: "crl/13-sig.crl", sha256: n.toString() }, () => installed.push(n));
        // The CA's crl_state row is where publishers queue: hold it until both wait, the higher one first in line.
        await gate.query("BEGIN");
        await gate.query("SELECT 1 FROM crl_state WHERE ca_id = $1 FOR UPDATE", [ca.id]);
        const second = publish(b, higher.number);
        await vi.waitFor(async () => expect(await waiting(watch)).toBe(1), { timeout: 20_000, interval: 20 });
        const first = publish(a, lower.number);
        await vi.waitFor(async () => expect(await waiting(watch)).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 20 });
        await gate.query("COMMIT");
        const [firstInstalled, secondInstalled] = await Promise.all([first, second]);
        expect(secondInstalled).toBe(true);
        // #n is either installed before #n+1 or not at all
        expect(installed).toEqual(firstInstalled ? [lower.number, higher.number] : [higher.number]);
        expect(await a.latestCrl(ca.id)).toMatchObject({ number: higher.number, state: "published" });
      }
      expect(await b.dirtyCas()).toEqual([]);
    } finally {
      await watch.end();
      await gate.end();
      await a.close();
      await b.close();
    }
  });

  it("an OCSP signer stored unless rewrapped waits for a rewrap in progress and is refused once it commits", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const gate = await admin(url);
    const watch = await admin(url);
    try {
      await s.putCa(ca);
      const r = { caId: "13-sig", serial: "0c01", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "o1", notBefore: new Date(1000), notAfter: new Date(2000) };
      await s.putOcspResponder(r);
      const late = { ...r, serial: "0c02", encryptedKeyPem: "under the old passphrase" };
      // the rewrap's transaction (as replaceCaKeys runs it) has re-encrypted a key, not yet committed, when the
      // renewal's write starts: first a CA key, then (a workspace whose CA keys are all in a token) a signer's
      for (const [update, seen, changed] of [
        ["UPDATE cas SET key_pem = 'k2' WHERE id = '13-sig'", { cas: [{ id: "13-sig", encryptedKeyPem: "pem" }], ocspSigners: [] }, "the key of CA 13-sig"],
        ["UPDATE ocsp_responders SET key_pem = 'o2' WHERE ca_id = '13-sig'", { cas: [], ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "o1" }] }, "the OCSP signing key of CA 13-sig"],
      ] as const) {
        await gate.query("BEGIN");
        await gate.query(update);
        const put = s.putOcspResponder(late, { unlessRewrapped: seen }).catch((e: unknown) => e);
        await vi.waitFor(async () => expect(await waiting(watch)).toBe(1), { timeout: 20_000, interval: 20 });
        await gate.query("COMMIT");
        expect(await put).toMatchObject({ code: "ERR_KEYS_REWRAPPED", details: { changed } });
        expect((await s.ocspResponders()).map((o) => o.serial)).toEqual(["0c01"]);
      }
    } finally {
      await watch.end();
      await gate.end();
      await s.close();
    }
  });

  it("a code found while reading (a held resident-code change) that another transaction holds: the batch starts again with it locked and waits", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const gate = await admin(url);
    const watch = await admin(url);
    try {
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const empty = { at: new Date(1), notices: [], sequences: [], revocations: [], relinks: [], dirtyCas: [] };
      const change = { noticeId: "c1", residentCode: "r1", sequence: 2, kind: "resident-code-change", body: JSON.stringify({ newResidentCode: "r2" }), status: "held" as const, revocations: 0 };
      await s.commitNoticeBatch({ noticeIds: ["c1"], residentCodes: ["r1"] }, () => ({ commit: { ...empty, notices: [change] } }));
      await gate.query("BEGIN");
      await gate.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ADVISORY_LOCKS.residents, "r2"]);
      const seen: string[][] = [];
      const run = s.commitNoticeBatch({ noticeIds: [], residentCodes: ["r1"] }, (ctx) => {
        seen.push([...ctx.residents.keys()].sort());
        return { commit: empty };
      });
      await vi.waitFor(async () => expect(await waiting(watch)).toBe(1), { timeout: 20_000, interval: 20 });
      expect(seen).toEqual([]); // it waits for r2 before it reads anything to decide from
      await gate.query("COMMIT");
      await run;
      expect(seen).toEqual([["r1", "r2"]]);
    } finally {
      await watch.end();
      await gate.end();
      await s.close();
    }
  });

  // Every store on a server takes the same advisory key, each in its own database; pg_locks lists them all. CI's
  // test files run side by side on one server, each `ca init` holding the key in its own database.
  it("the CA-keys lock held in this database: refused, naming the session that holds it here, not another store's on the same server", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const holders: pg.Client[] = [];
    const hold = async (at: string, name: string) => {
      const c = new pg.Client({ connectionString: at, application_name: name });
      await c.connect();
      holders.push(c);
      expect((await c.query("SELECT pg_try_advisory_lock($1, 0) AS got", [ADVISORY_LOCKS.caKeys])).rows[0]).toEqual({ got: true });
    };
    try {
      for (let i = 0; i < 4; i++) await hold(await server.createDatabase(), `jpki ca-keys elsewhere ${i}`);
      await hold(url, "jpki ca-keys here");
      for (let i = 4; i < 8; i++) await hold(await server.createDatabase(), `jpki ca-keys elsewhere ${i}`);
      for (let i = 0; i < 3; i++) {
        const refused = await s.withCaKeysLock(async () => "ran").catch((e: unknown) => e);
        expect(refused).toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_LOCKED"));
        expect((refused as Error).message).toMatch(/^another jpki process \(jpki ca-keys here\) is working on the CA keys/);
      }
      // its holder gone, the next one takes it, whatever other databases hold
      await holders.splice(4, 1)[0]!.end();
      expect(await s.withCaKeysLock(async () => "ran")).toBe("ran");
    } finally {
      for (const c of holders) await c.end();
      await s.close();
    }
  });

  /**
   * withCaKeysLock's try-lock statements (CA_KEYS_TRY) on its session connection, counted; `after(n)` runs once the
   * n-th has answered, before withCaKeysLock sees the answer, and `before(n)` before it is sent.
   */
  function watchCaKeysTries(o: { after?: (n: number) => Promise<void>; before?: (n: number) => Promise<void> } = {}) {
    const seen = { tries: 0 };
    const query = pg.Client.prototype.query;
    const spy = vi.spyOn(pg.Client.prototype, "query").mockImplementation(async function (this: pg.Client, ...args: unknown[]) {
      const caKeysTry = typeof args[0] === "string" && args[0].startsWith("WITH try AS MATERIALIZED (SELECT pg_try_advisory_lock(");
      if (!caKeysTry) return (query as (...a: unknown[]) => unknown).apply(this, args);
      const n = ++seen.tries;
      await o.before?.(n);
      const r = await (query as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      await o.after?.(n);
      return r;
    } as typeof query);
    return Object.assign(seen, { restore: () => spy.mockRestore() });
  }

  /**
   * The CA-keys lock held by a prepared transaction: granted in pg_locks with no pid, so the try-lock fails and no
   * holder is seen, as when the holder let go between the try and the read; until `release`.
   */
  async function holdUnnamed(url: string, gid: string): Promise<{ release(): Promise<void> }> {
    const c = await admin(url);
    try {
      await c.query("BEGIN");
      await c.query("SELECT pg_advisory_xact_lock($1, 0)", [ADVISORY_LOCKS.caKeys]);
      await c.query(`PREPARE TRANSACTION '${gid}'`);
    } finally {
      await c.end();
    }
    let released = false;
    return {
      async release() {
        if (released) return;
        released = true;
        const a = await admin(url);
        await a.query(`ROLLBACK PREPARED '${gid}'`).finally(() => a.end());
      },
    };
  }

  /** Whether the CA-keys lock is free now (taken and let go again on a connection of its own), and no session of withCaKeysLock is left open. */
  async function caKeysLockFree(url: string): Promise<{ free: boolean; sessions: number }> {
    const a = await admin(url);
    try {
      const free = (await a.query<{ got: boolean }>("SELECT pg_try_advisory_lock($1, 0) AS got", [ADVISORY_LOCKS.caKeys])).rows[0]!.got;
      if (free) await a.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.caKeys]);
      const sessions = (await a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'jpki ca-keys %'")).rows[0]!.n;
      return { free, sessions };
    } finally {
      await a.end();
    }
  }

  it("the CA-keys lock held by a holder pg_locks does not name, which lets go during the tries: taken on the next try, and fn runs once", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const holder = await holdUnnamed(url, "jpki-ca-keys-let-go");
    const watch = watchCaKeysTries({ after: async (n) => void (n === 2 && (await holder.release())) });
    try {
      let runs = 0;
      expect(await s.withCaKeysLock(async () => `ran ${++runs}`)).toBe("ran 1");
      expect(watch.tries).toBe(3);
      // released on its session, which is closed
      expect(await caKeysLockFree(url)).toEqual({ free: true, sessions: 0 });
    } finally {
      watch.restore();
      await holder.release();
      await s.close();
    }
  });

  it("the CA-keys lock held by a holder pg_locks does not name, which keeps it: refused after 5 tries with no name, nothing run, at once", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const holder = await holdUnnamed(url, "jpki-ca-keys-kept");
    const watch = watchCaKeysTries();
    try {
      let runs = 0;
      const started = performance.now();
      const refused = await s.withCaKeysLock(async () => ++runs).catch((e: unknown) => e);
      // the tries follow one another with no wait: bounded by five round trips, not by a timeout
      expect(performance.now() - started).toBeLessThan(5000);
      expect(refused).toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_LOCKED"));
      expect((refused as Error).message).toMatch(/^another jpki process is working on the CA keys of this PostgreSQL store .*: nothing was done; retry when it finishes$/);
      expect(runs).toBe(0);
      expect(watch.tries).toBe(5);
      // still the holder's: the refused call took nothing, and left no session behind
      expect(await caKeysLockFree(url)).toEqual({ free: false, sessions: 0 });
      await holder.release();
      expect(await s.withCaKeysLock(async () => ++runs)).toBe(1);
    } finally {
      watch.restore();
      await holder.release();
      await s.close();
    }
  });

  it("the CA-keys lock held by a session with no application name: refused at the first try, naming its backend pid, nothing run", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const holder = await admin(url);
    const watch = watchCaKeysTries();
    try {
      const { pid, got } = (await holder.query<{ pid: number; got: boolean }>("SELECT pg_backend_pid() AS pid, pg_try_advisory_lock($1, 0) AS got", [ADVISORY_LOCKS.caKeys])).rows[0]!;
      expect(got).toBe(true);
      let runs = 0;
      const refused = await s.withCaKeysLock(async () => ++runs).catch((e: unknown) => e);
      expect(refused).toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_LOCKED"));
      expect((refused as Error).message).toMatch(new RegExp(`^another jpki process \\(PostgreSQL backend pid ${pid}\\) is working on the CA keys`));
      expect(runs).toBe(0);
      expect(watch.tries).toBe(1);
      expect((await caKeysLockFree(url)).sessions).toBe(0);
    } finally {
      watch.restore();
      await holder.end();
      await s.close();
    }
  });

  it("the CA-keys try-lock failing (its connection ended before it ran): a store error, not tried again, nothing run, the lock left free", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const a = await admin(url);
    const watch = watchCaKeysTries({
      before: async () => {
        const ended = await a.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'jpki ca-keys %'");
        expect(ended.rowCount).toBe(1);
        await vi.waitFor(async () => expect((await caKeysLockFree(url)).sessions).toBe(0), { timeout: 10_000, interval: 20 });
      },
    });
    try {
      let runs = 0;
      const failed = await s.withCaKeysLock(async () => ++runs).catch((e: unknown) => e);
      expect(failed).toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE_UNREACHABLE"));
      expect((failed as Error).message).toMatch(/while taking the CA-keys lock/);
      expect(runs).toBe(0);
      expect(watch.tries).toBe(1);
      expect(await caKeysLockFree(url)).toEqual({ free: true, sessions: 0 });
      // the store's pool is untouched: the next call takes the lock
      watch.restore();
      expect(await s.withCaKeysLock(async () => ++runs)).toBe(1);
    } finally {
      watch.restore();
      await a.end();
      await s.close();
    }
  });

  it("a lock held longer than lockTimeoutMs fails with ERR_WORKSPACE_LOCKED", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, lockTimeoutMs: 200 });
    const gate = await admin(url);
    try {
      await s.putCa(ca);
      await s.reserveCrl(ca.id, new Date(0), new Date(1000));
      await gate.query("BEGIN");
      await gate.query("SELECT 1 FROM crl_state WHERE ca_id = $1 FOR UPDATE", [ca.id]);
      await expect(s.reserveCrl(ca.id, new Date(0), new Date(1000))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_LOCKED"));
      await gate.query("ROLLBACK");
      expect((await s.reserveCrl(ca.id, new Date(0), new Date(1000))).number).toBe(2n);
    } finally {
      await gate.end();
      await s.close();
    }
  });

  it("a notice batch whose numbers are not integers (a reason of 1.5, a count of NaN) is refused as ours (ERR_INTERNAL), not stored cut to 1 or 0", async () => {
    // Its arrays travel in binary (pg-binary.ts), where Buffer's int4 writer would cut them silently.
    const s = await PostgresStore.open(await server.createDatabase(), { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" as const }]);
      const cert = { serial: "0a", caId: ca.id, type: "signature" as const, residentCode: "r1", municipalityCode: "131016", fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(1000), der: Buffer.from("0a", "hex") };
      await s.commitIssuances([cert]);
      const notice = { noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: "{}", status: "applied" as const, revocations: 1 };
      const batch = (reason: number, revocations: number) => s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["r1"] }, () => ({
        commit: { at: new Date(5000), notices: [{ ...notice, revocations }], sequences: [{ residentCode: "r1", last: 1 }], revocations: [{ serial: "0a", reason, source: "notice:n1", residentCode: "r1" }], relinks: [], dirtyCas: [ca.id] },
      }));
      await expect(batch(1.5, 1)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      await expect(batch(1, NaN)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      expect((await s.getCertificate("0a"))?.revocation).toBeUndefined();
      expect(await s.residentNoticeSequence("r1")).toBe(0);
      await batch(1, 1);
      expect((await s.getCertificate("0a"))?.revocation).toMatchObject({ reason: 1, source: "notice:n1" });
    } finally {
      await s.close();
    }
  });

  it("a batch naming more residents than maxResidentLocks locks the resident side as a whole, with the same outcome", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, maxResidentLocks: 2 });
    try {
      await s.putCa(ca);
      const codes = ["r1", "r2", "r3", "r4"];
      expect(await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })))).toEqual({ inserted: 4, updated: 0 });
      const cert = (serial: string, residentCode: string) => ({
        serial, caId: ca.id, type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(1000), der: Buffer.from(serial, "hex"),
      });
      expect((await s.commitIssuances(codes.map((c, i) => cert(`0${i + 1}`, c)))).map((r) => r.status)).toEqual(["committed", "committed", "committed", "committed"]);
      // more keys than per-key locks for fewer residents (renewals in one group): it starts again alone, still checked
      const renewals = await s.commitIssuances([keyed("0c01", "r1", 2000, "k1"), keyed("0c02", "r1", 3000, "k2"), keyed("0c03", "r1", 4000, "k3"), keyed("0c04", "r2", 4000, "k1")]);
      expect(renewals.map((r) => r.status)).toEqual(["committed", "committed", "committed", "key-in-use"]);
      // applyToRegistry learns its codes only as decide reads them (a decide that trusts the records to exist
      // fails while they are not loaded yet); past the limit, it starts again with all of them locked
      const moved = await s.applyToRegistry((read) => {
        const rs = codes.map((c) => read(c)!);
        return { put: rs.map((r) => ({ ...r, fourItems: { ...r.fourItems, address: "大阪府" }, noticeSequence: 1 })), remove: [], result: rs.length };
      });
      expect(moved).toBe(4);
      for (const c of codes) expect((await s.getResidentForIssuance(c))?.registrySequence).toBe(1);
    } finally {
      await s.close();
    }
  });
});

/** The pid of the one session of this database waiting for a lock, once there is one. */
async function waiter(c: pg.Client): Promise<number> {
  let pid = 0;
  await vi.waitFor(async () => {
    const r = await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
    expect(r.rows).toHaveLength(1);
    pid = r.rows[0]!.pid;
  }, { timeout: 20_000, interval: 20 });
  return pid;
}

/**
 * Uncaught exceptions while `body` runs and a little after (the socket's close comes after the server's error):
 * a CLI process would have died of them. vitest reports them too, but outside the test that caused them.
 */
async function uncaughtDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (e: unknown) => seen.push(e);
  process.prependListener("uncaughtException", listener);
  try {
    await body();
  } finally {
    process.removeListener("uncaughtException", listener);
  }
  return seen;
}

describe("PostgresStore when a connection dies", () => {
  it("a backend terminated inside a transaction (a CRL reservation waiting for its lock): ERR_STORE_UNREACHABLE, the process lives on, nothing half done, the next call works", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 2 });
    const gate = await admin(url);
    try {
      await s.putCa(ca);
      await s.reserveCrl(ca.id, new Date(0), new Date(1000));
      await gate.query("BEGIN");
      await gate.query("SELECT 1 FROM crl_state WHERE ca_id = $1 FOR UPDATE", [ca.id]);
      // Without a listener on the checked-out client, its 'error' (the socket closing) ended the process.
      const uncaught = await uncaughtDuring(async () => {
        const run = s.reserveCrl(ca.id, new Date(0), new Date(1000)).then(() => undefined, (e: unknown) => e);
        await gate.query("SELECT pg_terminate_backend($1)", [await waiter(gate)]);
        const e = await run;
        expect(e).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "network", code: "57P01" } });
        // the server was there and ended the session: not "cannot be reached, check the host"
        expect((e as Error).message).toMatch(/^the PostgreSQL server ended the connection \(57P01 admin_shutdown: .*\) while reserving a CRL number: run the command again once the server is up$/);
        await gate.query("ROLLBACK");
        expect((await s.reserveCrl(ca.id, new Date(0), new Date(1000))).number).toBe(2n);
      });
      expect(uncaught).toEqual([]);
    } finally {
      await gate.end();
      await s.close();
    }
  });

  it("a backend terminated while a full CRL stream is held by its consumer: the stream ends in ERR_STORE_UNREACHABLE, not in an untyped error or a dead process", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 1 });
    const a = await admin(url);
    try {
      await s.putCa(ca);
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const issue = (serial: string, residentCode: string) =>
        s.commitIssuances([{ serial, caId: ca.id, type: "signature", residentCode, municipalityCode: "131016", fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]) }]);
      await issue("0a01", "r1");
      await issue("0a02", "r2");
      await s.revoke({ serial: "0a01", revokedAt: new Date(1000), reason: 1, source: "manual" });
      const base = await s.reserveCrl(ca.id, new Date(0), new Date(Date.UTC(2030, 0, 1)));
      expect(await s.publishCrl({ caId: ca.id, number: base.number, entries: 1, path: "crl/13-sig.crl", sha256: "00" }, () => undefined)).toBe(true);
      await s.revoke({ serial: "0a02", revokedAt: new Date(2000), reason: 1, source: "manual" });
      const read = async (entries: AsyncIterable<{ count: number }>) => {
        let killed = false;
        for await (const chunk of entries) {
          expect(chunk.count).toBeGreaterThan(0);
          if (killed) continue;
          killed = true;
          // The consumer signs and writes while it holds the stream; its connection is idle, checked out.
          const pid = (await a.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'jpki'")).rows[0]!.pid;
          await a.query("SELECT pg_terminate_backend($1)", [pid]);
          await vi.waitFor(async () => expect((await a.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).rowCount).toBe(0), { timeout: 20_000, interval: 20 });
        }
      };
      const uncaught = await uncaughtDuring(async () => {
        await expect(read(s.crlEntries(ca.id, { expiredBefore: new Date(0) }))).rejects.toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "network" } });
        // A delta's blocks come in one read (migration 23: from the log, the blocks after its base): nothing is held.
        let delta = 0;
        for await (const chunk of s.deltaCrlEntries(ca.id, base.number, { expiredBefore: new Date(0) })) delta += chunk.count;
        expect(delta).toBe(1);
      });
      expect(uncaught).toEqual([]);
      expect(await s.latestCrl(ca.id)).toMatchObject({ number: base.number }); // the pool made a new connection
    } finally {
      await a.end();
      await s.close();
    }
  });
});

describe("the disclosure log on PostgreSQL when the server does not answer (store/watchdog.ts)", () => {
  it("a write held past the bound (a lock another session holds) fails its callers ERR_STORE_UNRESPONSIVE and refuses the next at once; the statement sent commits once let go (the side disclosure-log.ts chose), and the log writes again", async () => {
    const url = await server.createDatabase(await migratedTemplate());
    const s = await PostgresStore.open(url, { create: true });
    const a = await admin(url);
    const dog = new StoreWatchdog({ waitMs: 200 });
    const log = new DisclosureLog(s, { watchdog: dog });
    const rec = (serial: string) => ({ verifierId: "v-1", serial, issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false });
    try {
      await a.query("BEGIN");
      await a.query("LOCK TABLE disclosures IN ACCESS EXCLUSIVE MODE");
      // without the bound this waited as long as the lock was held
      await expect(log.record(rec("01"))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      await expect(log.record(rec("02"))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      await a.query("ROLLBACK");
      await vi.waitFor(() => expect(dog.stalled).toBe(false), { timeout: 10_000 });
      await log.record(rec("03"));
      // 01's statement was sent before its callers were told 503, and committed once the lock was let go; 02 never left
      expect((await s.listDisclosures({ residentCode: "12345678906" })).map((d) => d.serial)).toEqual(["01", "03"]);
    } finally {
      dog.close();
      await a.end();
      await s.close();
    }
  });
});

describe("stopping on a PostgreSQL server that does not answer (jpki serve's SIGTERM)", () => {
  it("the disclosure log's close gives up a write past the bound and says how many records it held, and the store's close cuts the connection still waiting: both return while the lock is still held", async () => {
    const url = await server.createDatabase(await migratedTemplate());
    // a lock wait longer than the test: without the bounds, the close waited for the lock holder (for good on a hung server)
    const s = await PostgresStore.open(url, { create: true, lockTimeoutMs: 600_000 });
    const a = await admin(url);
    const dog = new StoreWatchdog({ waitMs: 200 });
    const log = new DisclosureLog(s, { watchdog: dog });
    const rec = { verifierId: "v-1", serial: "01", issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false };
    const waiting = () => a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'jpki' AND wait_event_type = 'Lock'");
    try {
      await a.query("BEGIN");
      await a.query("LOCK TABLE disclosures IN ACCESS EXCLUSIVE MODE");
      const answered = log.record(rec);
      await vi.waitFor(async () => expect((await waiting()).rows[0]!.n).toBe(1), { timeout: 10_000, interval: 20 });
      // the stop begins while the write waits for the lock
      const closing = log.close();
      await expect(answered).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      expect(await closing).toEqual({ abandoned: 1, lost: 0 });
      await s.close();
      // the lock is still held (no ROLLBACK yet), and the connection that waited for it is gone from the pool's hands
      expect((await a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'disclosures'::regclass AND granted AND mode = 'AccessExclusiveLock'")).rows[0]!.n).toBe(1);
    } finally {
      dog.close();
      await a.query("ROLLBACK").catch(() => undefined);
      await a.end();
      await s.close();
    }
  }, 60_000);
});

describe("PostgresStore under limits the server's settings set", () => {
  it("no connection free (the role's CONNECTION LIMIT, or max_connections, reached): ERR_STORE_UNREACHABLE naming the limit, not 'cannot be reached'", async () => {
    const url = await server.createDatabase();
    const db = decodeURIComponent(new URL(url).pathname.slice(1));
    const role = `jpki_nolimit_${process.pid}`;
    const a = await admin(server.url("postgres"));
    try {
      await a.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
      const e = await PostgresStore.open(connectionString(server.socketDir, db, role), { create: true }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "connection-limit", code: "53300" } });
      expect((e as Error).message).toMatch(/^the PostgreSQL server has no connection free \(53300\) while opening the store: its max_connections, or the CONNECTION LIMIT of the role or database, is reached/);
    } finally {
      await a.query(`DROP ROLE IF EXISTS ${role}`);
      await a.end();
    }
  });

  /** A new store whose database has `setting` (ALTER DATABASE … SET), opened after it, with the CA in it; and an admin session. */
  async function storeWithDatabaseSetting(setting: string): Promise<{ s: PostgresStore; a: pg.Client }> {
    const url = await server.createDatabase();
    await (await PostgresStore.open(url, { create: true })).close();
    const a = await admin(url);
    await a.query(`ALTER DATABASE ${pg.escapeIdentifier(decodeURIComponent(new URL(url).pathname.slice(1)))} SET ${setting}`);
    const s = await PostgresStore.open(url);
    await s.putCa(ca);
    return { s, a };
  }

  it("a statement_timeout set for the database ends a statement (one waiting for a lock): ERR_STORE naming the setting and how to lift it", async () => {
    const { s, a } = await storeWithDatabaseSetting("statement_timeout = '300ms'");
    try {
      await a.query("BEGIN");
      await a.query("LOCK TABLE crl_state IN ACCESS EXCLUSIVE MODE");
      const e = await s.reserveCrl(ca.id, new Date(0), new Date(1000)).then(
        () => undefined,
        (x: unknown) => x,
      );
      await a.query("ROLLBACK");
      expect(e).toMatchObject({ code: "ERR_STORE", details: { code: "57014" } });
      expect((e as Error).message).toContain("canceling statement due to statement timeout (SQLSTATE 57014)");
      expect((e as Error).message).toContain("ALTER ROLE … RESET statement_timeout");
    } finally {
      await s.close();
      await a.end();
    }
  });

  it("an idle_in_transaction_session_timeout shorter than a pause inside a transaction (a CRL's consumer signing and writing a page): ERR_STORE naming the setting", async () => {
    const { s, a } = await storeWithDatabaseSetting("idle_in_transaction_session_timeout = '100ms'");
    try {
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" as const }]);
      await s.commitIssuances([{ serial: "0a01", caId: ca.id, type: "signature", residentCode: "r1", municipalityCode: "131016", fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]) }]);
      await s.revoke({ serial: "0a01", revokedAt: new Date(1000), reason: 1, source: "manual" });
      // The stream's snapshot transaction idles while its consumer works on a page; the server ends the session.
      const e = await (async () => {
        for await (const chunk of s.crlEntries(ca.id, { expiredBefore: new Date(0) })) {
          expect(chunk.count).toBe(1);
          await new Promise((r) => setTimeout(r, 600));
        }
      })().then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, String(e)).toMatchObject({ code: "ERR_STORE", details: { code: "25P03" } });
      expect((e as Error).message).toContain("terminating connection due to idle-in-transaction timeout (SQLSTATE 25P03): idle_in_transaction_session_timeout, set for the role or database");
    } finally {
      await s.close();
      await a.end();
    }
  });
});
