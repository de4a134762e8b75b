/**
 * The PostgreSQL store on a database whose default isolation a DBA set to repeatable read
 * (`ALTER DATABASE … SET default_transaction_isolation`, or the same on a role): the store's statements that read
 * after waiting on a lock must still read what the holder committed. Under repeatable read a transaction's snapshot
 * is taken by its first statement — the one that waits — so it read the state from before the wait: a second
 * opener re-ran migrations the first had committed, two CRL reservations took one number, a disclosure group's
 * audit head update failed as a serialization failure. Each test makes the wait happen for certain (a lock held by
 * a connection of the test until everyone waits on it), never by timing.
 */
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { admin, atSchema, ca, migratedTemplate } from "../../test/postgres-store-kit.js";
import { until } from "../../test/until.js";
import { usePostgres } from "../../test/use-postgres.js";
import { auditHash, type AuditRecord } from "./audit-log.js";
import { ADVISORY_LOCKS, PG_SCHEMA_VERSION, PostgresStore } from "./postgres.js";
import type { DisclosureAppend } from "./types.js";

const server = usePostgres();

/** A database set to repeatable read by default, as a DBA would: empty, or a copy of `template`. */
async function repeatableRead(template?: string): Promise<{ url: string; c: pg.Client }> {
  const url = await server.createDatabase(template);
  const c = await admin(url);
  await c.query(`ALTER DATABASE ${c.escapeIdentifier(new URL(url).pathname.slice(1))} SET default_transaction_isolation = 'repeatable read'`);
  // new sessions take it: the setting is in place
  const seen = await admin(url);
  try {
    expect((await seen.query("SHOW default_transaction_isolation")).rows[0].default_transaction_isolation).toBe("repeatable read");
  } finally {
    await seen.end();
  }
  return { url, c };
}

/**
 * Sessions of the database waiting on a lock, asked on a connection of its own each time: within a transaction
 * (the lock holder's) pg_stat_activity shows the moment of its first read again and again.
 */
async function waiting(url: string): Promise<number> {
  const c = await admin(url);
  try {
    return (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows[0]!.n;
  } finally {
    await c.end();
  }
}

const SCHEMA_VERSION_WRITE = "INSERT INTO meta (key, value) VALUES ('schema_version'";

/**
 * Two PostgresStore.open at once, both made to wait on the migration lock in the full open (each held before its
 * lock statement until both are there, the lock then taken by `c` and let go once both wait on it): the one that
 * gets it first migrates, the other then reads what it committed. Returns each open's outcome and how many
 * connections wrote a schema version (migrated).
 */
async function racingOpens(url: string, c: pg.Client, opts: { create?: boolean }): Promise<{ outcomes: unknown[]; migrators: number }> {
  const original = pg.Client.prototype.query;
  const atLock = new Set<object>();
  let bothThere!: () => void;
  const there = new Promise<void>((r) => (bothThere = r));
  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const migrators = new Set<object>();
  const spy = vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (this: pg.Client, ...args: unknown[]) {
    const text = typeof args[0] === "string" ? args[0] : "";
    if (text.startsWith(SCHEMA_VERSION_WRITE)) migrators.add(this);
    if (text.includes("pg_advisory_xact_lock") && Array.isArray(args[1]) && args[1][0] === ADVISORY_LOCKS.migration) {
      atLock.add(this);
      if (atLock.size === 2) bothThere();
      return gate.then(() => (original as (...a: unknown[]) => unknown).apply(this, args));
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original);
  try {
    const opening = [PostgresStore.open(url, opts), PostgresStore.open(url, opts)].map((p) =>
      p.then(
        async (s) => (await s.close(), "opened"),
        (e: unknown) => e,
      ),
    );
    await there;
    await c.query("SELECT pg_advisory_lock($1, 0)", [ADVISORY_LOCKS.migration]);
    go();
    await until(async () => (await waiting(url)) === 2, "both openers to wait on the migration lock");
    await c.query("SELECT pg_advisory_unlock($1, 0)", [ADVISORY_LOCKS.migration]);
    return { outcomes: await Promise.all(opening), migrators: migrators.size };
  } finally {
    spy.mockRestore();
  }
}

describe("PostgreSQL store under a default isolation of repeatable read", () => {
  it("two openers of a new database, one waiting on the other's creation: one creates, both open", async () => {
    const { url, c } = await repeatableRead();
    try {
      expect(await racingOpens(url, c, { create: true })).toEqual({ outcomes: ["opened", "opened"], migrators: 1 });
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it("two openers of a store one version old, one waiting on the other's upgrade: one upgrades, both open", async () => {
    const { url, c } = await repeatableRead();
    try {
      await atSchema(c, PG_SCHEMA_VERSION - 1);
      expect(await racingOpens(url, c, {})).toEqual({ outcomes: ["opened", "opened"], migrators: 1 });
      expect((await c.query("SELECT value FROM meta WHERE key = 'schema_version'")).rows[0].value).toBe(String(PG_SCHEMA_VERSION));
    } finally {
      await c.end();
    }
  });

  it.each([
    ["", ""],
    // the connection string's own options are kept, and a default isolation among them is overridden: the last -c wins
    [" (the connection string asking for serializable)", "&options=" + encodeURIComponent("-c default_transaction_isolation=serializable")],
  ])("two CRL reservations of one CA waiting on its crl_state row: consecutive numbers, neither fails%s", async (_, options) => {
    const { url, c } = await repeatableRead(await migratedTemplate(server));
    const s = await PostgresStore.open(url + options);
    try {
      await s.putCa(ca);
      expect((await s.reserveCrl(ca.id, new Date(1000), new Date(2000))).number).toBe(1n);
      await c.query("BEGIN");
      await c.query("SELECT 1 FROM crl_state WHERE ca_id = $1 FOR UPDATE", [ca.id]);
      const reserving = [s.reserveCrl(ca.id, new Date(3000), new Date(4000)), s.reserveCrl(ca.id, new Date(3000), new Date(4000))].map((p) =>
        p.then(
          (r) => r.number,
          (e: unknown) => e,
        ),
      );
      await until(async () => (await waiting(url)) === 2, "both reservations to wait on the CA's crl_state row");
      await c.query("COMMIT");
      expect((await Promise.all(reserving)).sort()).toEqual([2n, 3n]);
    } finally {
      await c.query("ROLLBACK").catch(() => undefined);
      await s.close();
      await c.end();
    }
  });

  it("two disclosure groups waiting on the audit head: both recorded, the log one chain", async () => {
    const { url, c } = await repeatableRead(await migratedTemplate(server));
    const s = await PostgresStore.open(url);
    try {
      await s.putVerifier({ id: "v-1", name: "Example Bank", kind: "private", tokenSha256: "aa".repeat(32), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined });
      const group = (serial: string): DisclosureAppend[] => [
        { verifierId: "v-1", serial, issuer: "13-sig", residentCode: "r1", purpose: "signature", legalBasis: undefined, at: new Date(8000), validationTime: new Date(8000), answer: "valid", itemsDisclosed: true },
      ];
      await c.query("BEGIN");
      await c.query("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE");
      const appending = [s.appendDisclosures(group("01aa")), s.appendDisclosures(group("01bb"))].map((p) =>
        p.then(
          () => "recorded",
          (e: unknown) => e,
        ),
      );
      await until(async () => (await waiting(url)) === 2, "both groups to wait on the audit head");
      await c.query("COMMIT");
      expect(await Promise.all(appending)).toEqual(["recorded", "recorded"]);
      const log: AuditRecord[] = [];
      for await (const r of s.auditRecords()) log.push(r);
      expect(log.map((r) => r.action)).toEqual(["verifier.register", "verifier.validate-query", "verifier.validate-query"]);
      log.forEach((r, i) => {
        expect(r.seq).toBe(i + 1);
        if (i > 0) expect(r.prevHash).toBe(log[i - 1]!.hash);
        expect(auditHash(r)).toBe(r.hash);
      });
    } finally {
      await c.query("ROLLBACK").catch(() => undefined);
      await s.close();
      await c.end();
    }
  });
});
