/**
 * A stop (a daemon's SIGTERM) while PostgresStore.open waits on another process's upgrade — the migration lock
 * held — ends the open at once, not when lockTimeoutMs runs out; the server's wait is cancelled with it, and
 * nothing of an upgrade is applied. Once the lock is held, a stop no longer interrupts the open: the upgrade
 * finishes. (A stop while connecting: postgres-connect.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { admin, atSchema } from "../../test/postgres-store-kit.js";
import { until } from "../../test/until.js";
import { usePostgres } from "../../test/use-postgres.js";
import { ADVISORY_LOCKS, PG_MIGRATIONS, PG_SCHEMA_VERSION, PostgresStore } from "./postgres.js";

const server = usePostgres();

/** The backends of `url`'s database waiting on a lock (an opener waiting for the migration lock). */
const WAITING = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";

describe("PostgresStore.open stopped while another process upgrades", () => {
  it("a stop during the wait for the migration lock ends the open at once, the server's wait cancelled, nothing applied; the next open upgrades", async () => {
    // an older schema: the opener would upgrade it once it had the lock
    const url = await server.createDatabase();
    const holder = await admin(url);
    try {
      const older = PG_MIGRATIONS.length - 1;
      await atSchema(holder, older);
      const version = async () => (await holder.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]!.value;
      // another process's upgrade, as far as the opener can tell
      await holder.query("SELECT pg_advisory_lock($1, 0)", [ADVISORY_LOCKS.migration]);
      const waiting = async () => (await holder.query<{ n: number }>(WAITING)).rows[0]!.n;

      const stop = new AbortController();
      // A lock timeout of 10 min, past the test's own: the open's end and the server's, seen within the test, can only
      // be the stop's doing (the stop's reason, the CancelRequest), not that timeout's — no bound on the time taken.
      const opening = PostgresStore.open(url, { lockTimeoutMs: 600_000, signal: stop.signal }).then(
        () => "opened",
        (e: unknown) => e,
      );
      await until(async () => (await waiting()) === 1, "the opener to wait on the lock");
      stop.abort();
      expect(await opening).toBe(stop.signal.reason);
      // the server stops waiting too (a CancelRequest): its backend held a connection slot until lock_timeout otherwise
      await until(async () => (await waiting()) === 0, "the server to cancel the opener's lock wait");
      expect(await version()).toBe(String(older));

      await holder.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.migration]);
      const s = await PostgresStore.open(url);
      await s.close();
      expect(await version()).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await holder.end();
    }
  }, 90_000);

  it("a stop once the lock is held changes nothing: the upgrade runs to its end and the store opens", async () => {
    // before the last fill migration (it reports progress, where the stop comes)
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      const fill = PG_MIGRATIONS.map((m) => typeof m === "function" && "fill" in m).lastIndexOf(true);
      expect(fill).toBeGreaterThanOrEqual(0);
      await atSchema(c, fill);
      const stop = new AbortController();
      const s = await PostgresStore.open(url, { signal: stop.signal, upgrade: { onProgress: () => stop.abort() } });
      await s.close();
      expect(stop.signal.aborted).toBe(true);
      expect((await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0]!.value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  }, 30_000);
});
