/**
 * PostgresStore.open of a store at this jpki's schema version: one message to the server (the migration lock and
 * meta's read, OPEN_READ), refusing and waiting exactly as the full open does — the migration lock held past
 * lockTimeoutMs is an upgrade in progress, meta held by a load is the store's generic lock error, a meta of another
 * shape or a mark is refused, a stop ends the wait. (Older and newer schemas: postgres-schema.test.ts.)
 */
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import { admin, atSchema, migratedTemplate } from "../../test/postgres-store-kit.js";
import { until } from "../../test/until.js";
import { usePostgres } from "../../test/use-postgres.js";
import { isJpkiError, type JpkiError } from "../errors.js";
import { ADVISORY_LOCKS, PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresStore, RESTORE_PENDING, UNVERIFIED_COPY } from "./postgres.js";

const server = usePostgres();

/** A database holding a store at this version. */
async function current(): Promise<string> {
  return server.createDatabase(await migratedTemplate(server));
}

/** What `open` makes of the store, and how many messages (Client#query calls: a Query of several statements is one) it sent. */
async function opened(open: () => Promise<PostgresStore>): Promise<{ outcome: "opened" | JpkiError; queries: number }> {
  const spy = vi.spyOn(pg.Client.prototype, "query");
  try {
    const outcome = await open().then(
      async (s) => (await s.close(), "opened" as const),
      (e: JpkiError) => e,
    );
    return { outcome, queries: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

/** Backends of the database waiting on a lock. */
const WAITING = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";


describe("PostgresStore.open of a store at this version", () => {
  afterEach(() => vi.restoreAllMocks());

  it("sends one message; a store one version older goes on to the full open and is upgraded", async () => {
    const at = await current();
    expect(await opened(() => PostgresStore.open(at))).toEqual({ outcome: "opened", queries: 1 });
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await atSchema(c, PG_MIGRATIONS.length - 1);
      const older = await opened(() => PostgresStore.open(url));
      expect(older.outcome).toBe("opened");
      expect(older.queries).toBeGreaterThan(1);
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it("the migration lock held past lockTimeoutMs: ERR_WORKSPACE_LOCKED as an upgrade in progress; let go, it opens", async () => {
    const url = await current();
    const holder = await admin(url);
    try {
      await holder.query("SELECT pg_advisory_lock($1, 0)", [ADVISORY_LOCKS.migration]);
      const { outcome } = await opened(() => PostgresStore.open(url, { lockTimeoutMs: 300 }));
      expect(isJpkiError(outcome, "ERR_WORKSPACE_LOCKED") && outcome.details).toEqual({ reason: "upgrade-in-progress" });
      await holder.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.migration]);
      expect((await opened(() => PostgresStore.open(url))).outcome).toBe("opened");
    } finally {
      await holder.end();
    }
  });

  it("meta held exclusively (a load in progress) past lockTimeoutMs: the store's own ERR_WORKSPACE_LOCKED, not an upgrade's", async () => {
    const url = await current();
    const holder = await admin(url);
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE");
      const { outcome } = await opened(() => PostgresStore.open(url, { lockTimeoutMs: 300 }));
      expect(isJpkiError(outcome, "ERR_WORKSPACE_LOCKED")).toBe(true);
      expect((outcome as JpkiError).details?.reason).toBeUndefined();
      expect((outcome as JpkiError).message).toMatch(/the store is busy .* while opening the store/);
      await holder.query("ROLLBACK");
      expect((await opened(() => PostgresStore.open(url))).outcome).toBe("opened");
    } finally {
      await holder.end();
    }
  });

  it("a stop while it waits for the migration lock ends the open at once with the stop's reason, the server's wait cancelled", async () => {
    const url = await current();
    const holder = await admin(url);
    try {
      await holder.query("SELECT pg_advisory_lock($1, 0)", [ADVISORY_LOCKS.migration]);
      const stop = new AbortController();
      const opening = PostgresStore.open(url, { lockTimeoutMs: 15_000, signal: stop.signal }).then(
        () => "opened",
        (e: unknown) => e,
      );
      await until(async () => (await holder.query<{ n: number }>(WAITING)).rows[0]!.n === 1, "the opener to wait on the lock");
      stop.abort();
      expect(await opening).toBe(stop.signal.reason);
      await until(async () => (await holder.query<{ n: number }>(WAITING)).rows[0]!.n === 0, "the server to cancel the opener's wait");
    } finally {
      await holder.end();
    }
  });

  it("another application's meta holding jpki's rows in columns that are not text: not a jpki store, as before", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      await c.query("CREATE TABLE meta (key varchar PRIMARY KEY, value varchar)");
      await c.query("INSERT INTO meta VALUES ('application', 'jpki'), ('schema_version', $1)", [String(PG_SCHEMA_VERSION)]);
      const { outcome } = await opened(() => PostgresStore.open(url));
      expect(isJpkiError(outcome, "ERR_WORKSPACE_CORRUPT") && outcome.message).toMatch(/not a jpki store/);
    } finally {
      await c.end();
    }
  });

  it("a mark refuses every opener but the one it is for, which opens in one message", async () => {
    for (const [mark, reason, opts] of [
      [UNVERIFIED_COPY, "unverified-copy", { loadTarget: true }],
      [RESTORE_PENDING, "restore-incomplete", { restoring: true }],
    ] as const) {
      const url = await current();
      const c = await admin(url);
      try {
        await c.query("INSERT INTO meta (key, value) VALUES ($1, $2)", [mark, "2026-01-01T00:00:00.000Z x y"]);
        const refused = await opened(() => PostgresStore.open(url));
        expect(isJpkiError(refused.outcome, "ERR_WORKSPACE_CORRUPT") && refused.outcome.details).toEqual({ reason });
        expect(await opened(() => PostgresStore.open(url, opts))).toEqual({ outcome: "opened", queries: 1 });
      } finally {
        await c.end();
      }
    }
  });
});
