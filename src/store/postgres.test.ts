/**
 * The PostgreSQL store's own behaviour under concurrency and failure: two stores deciding at the same moment, the
 * CA-keys lock and its tries, lock timeouts, privileges and constraints, connections that die, a server that does
 * not answer, and limits the server's settings set. The contract is postgres-contract.test.ts; the schema and
 * upgrades postgres-schema.test.ts; ordered reads (the revocation log) postgres-log.test.ts.
 */
import { inspect } from "node:util";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { admin, ca, items, migratedTemplate as templateOf } from "../../test/postgres-store-kit.js";
import { connectionString } from "../../test/postgres-server.js";
import { usePostgres } from "../../test/use-postgres.js";
import { isJpkiError, type JpkiError } from "../errors.js";
import { keyed, nextSequenceDecider } from "./contract.js";
import { ADVISORY_LOCKS, PostgresStore } from "./postgres.js";
import type { Store } from "./types.js";
import { StoreWatchdog } from "./watchdog.js";
import { firstStallHeld } from "../../test/stall-clock.js";
import { until } from "../../test/until.js";
import { auditHash, type AuditRecord } from "./audit-log.js";
import { verifyAuditLog } from "../audit/verify.js";
import { DisclosureLog } from "../verifier/disclosure-log.js";

  // prepared transactions: a CA-keys lock held where pg_locks names no session (the tests of withCaKeysLock's retry)
const server = usePostgres({ settings: { max_prepared_transactions: 4 } });

const migratedTemplate = (): Promise<string> => templateOf(server);

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
  /** what the gate's transaction holds while the runs queue behind it (default: the all-residents advisory lock) */
  hold?: (gate: pg.Client) => Promise<unknown>;
  runs: (a: PostgresStore, b: PostgresStore) => Promise<T>[];
  beforeRelease?: () => void;
  /** `db`: a session of its own on the database, for what the stores do not read back */
  after: (a: PostgresStore, b: PostgresStore, results: T[], db: pg.Client) => Promise<void>;
}): Promise<void> {
  const url = await server.createDatabase();
  const a = await PostgresStore.open(url, { create: true });
  const b = await PostgresStore.open(url);
  const gate = await admin(url);
  const watch = await admin(url);
  try {
    await o.setup(a);
    await gate.query("BEGIN");
    await (o.hold ? o.hold(gate) : gate.query("SELECT pg_advisory_xact_lock($1, 0)", [ADVISORY_LOCKS.allResidents]));
    const runs = o.runs(a, b);
    await vi.waitFor(async () => expect(await waiting(watch)).toBe(runs.length), { timeout: 20_000, interval: 20 });
    o.beforeRelease?.();
    await gate.query("COMMIT");
    await o.after(a, b, await Promise.all(runs), watch);
  } finally {
    await watch.end();
    await gate.end();
    await a.close();
    await b.close();
  }
}

describe("PostgresStore specifics", () => {
  it("holdPresence's connection, ended by the server (a restart, a terminated backend), is opened again; closed, it stays gone", async () => {
    const url = await server.createDatabase();
    // each end of the presence connection, with whether the store is to open it again: the decision itself, waited
    // on, where a pause past the retry's delay passed as well when the host was too slow to have retried by then
    const ended: boolean[] = [];
    const s = await PostgresStore.open(url, { create: true, presenceRetryMs: 50, onPresenceEnded: (reopening) => ended.push(reopening) });
    await s.holdPresence("serve");
    await s.holdPresence("serve"); // once
    const c = await admin(url);
    const named = async () => (await c.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'jpki serve %'")).rows.map((r) => r.pid);
    const first = await named();
    expect(first).toHaveLength(1);
    await c.query("SELECT pg_terminate_backend($1)", [first[0]]);
    let now: number[] = [];
    await until(async () => ((now = await named()), now.length === 1 && now[0] !== first[0]), "the presence connection opened again");
    expect(ended).toEqual([true]);
    await s.close();
    // The close ended it, and the store decided not to open it again: no retry is pending, so none can open it later.
    // (The backend is in pg_stat_activity before the store has the connection as its presence: a close then ends
    // it where the reopen finishes, and says so the same way.)
    await until(() => ended.length >= 2, "the presence connection's end at the close");
    expect(ended).toEqual([true, false]);
    await until(async () => (await named()).length === 0, "the presence connection gone from pg_stat_activity");
    await c.end();
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
      const refused = await s.withCaKeysLock(async () => ++runs).catch((e: unknown) => e);
      // at once: five try-locks (the statements watched, which never wait on the lock), not a lock wait ended by a
      // timeout — counted, not timed (a loaded host's round trips can pass any bound)
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

  it("single-record audit appends from two stores, all waiting on the head and let go at once, chain one after the other: no seq twice, every record on its predecessor's hash", async () => {
    // jpki_audit_append's one-record path (migration 31) reads the head in the INSERT that locks it: the second of two
    // appenders must write on the head the first left, not on the one both saw before the lock.
    await twoStoresReleasedTogether({
      setup: (a) => a.appendAudit({ action: "x.first", subject: "" }),
      hold: (gate) => gate.query("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE"),
      runs: (a, b) => Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).appendAudit({ action: "x.racing", subject: `s${i}` })),
      after: async (a) => {
        const log: AuditRecord[] = [];
        for await (const r of a.auditRecords()) log.push(r);
        expect(log.map((r) => r.seq)).toEqual(log.map((_, i) => i + 1));
        expect(log.filter((r) => r.action === "x.racing").map((r) => r.subject).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `s${i}`).sort());
        log.forEach((r, i) => {
          if (i) expect(r.prevHash).toBe(log[i - 1]!.hash);
          expect(auditHash(r)).toBe(r.hash);
        });
        expect(await a.auditHead()).toEqual(log[log.length - 1]);
        expect((await verifyAuditLog(a)).ok).toBe(true);
      },
    });
  });

  it("one verifier's disclosure groups from two stores, all waiting on the head and let go at once, chain one after the other in their own statement", async () => {
    // A group with one audit record moves the head in its own statement (migration 32: UPDATE … SET prev_hash = hash),
    // not through jpki_audit_append: each waiting update must chain on the head the one before it left.
    const answer = (i: number) => ({ verifierId: "v-1", serial: `0a${i.toString(16).padStart(2, "0")}`, issuer: "13-sig", residentCode: undefined, purpose: "signature" as const, legalBasis: undefined, at: new Date(8000 + i), validationTime: new Date(8000), answer: "valid", itemsDisclosed: false });
    await twoStoresReleasedTogether({
      setup: (a) => a.appendAudit({ action: "x.first", subject: "" }),
      hold: (gate) => gate.query("SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE"),
      runs: (a, b) => Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).appendDisclosures([answer(2 * i), answer(2 * i + 1)])),
      after: async (a, _b, _results, db) => {
        const log: AuditRecord[] = [];
        for await (const r of a.auditRecords()) log.push(r);
        expect(log.map((r) => r.seq)).toEqual(log.map((_, i) => i + 1));
        expect(log.filter((r) => r.action === "verifier.validate-query")).toHaveLength(12);
        log.forEach((r, i) => {
          if (i) expect(r.prevHash).toBe(log[i - 1]!.hash);
          expect(auditHash(r)).toBe(r.hash);
        });
        expect(await a.auditHead()).toEqual(log[log.length - 1]);
        expect((await verifyAuditLog(a)).ok).toBe(true);
        // the statement's own path moved the head (only it writes prev_hash), and every answer is in, once
        expect((await db.query("SELECT prev_hash FROM audit_head")).rows).toEqual([{ prev_hash: log[log.length - 2]!.hash }]);
        expect((await db.query("SELECT count(DISTINCT serial)::int AS n, count(*)::int AS total FROM disclosures")).rows).toEqual([{ n: 24, total: 24 }]);
      },
    });
  });

  it("a single-record audit append with no head row to chain on fails ERR_STORE and writes nothing, as several records do", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const c = await admin(url);
    try {
      await s.appendAudit({ action: "x.first", subject: "" });
      await c.query("DELETE FROM audit_head");
      const answer = (verifierId: string) => ({ verifierId, serial: "01aa", issuer: "13-sig", residentCode: undefined, purpose: "signature" as const, legalBasis: undefined, at: new Date(8000), validationTime: new Date(8000), answer: "valid", itemsDisclosed: false });
      // one record (the two-statement path), and two verifiers' answers: two records (the loop)
      for (const append of [() => s.appendAudit({ action: "x.orphan", subject: "" }), () => s.appendDisclosures([answer("v-1")]), () => s.appendDisclosures([answer("v-1"), answer("v-2")])]) {
        const e = (await append().catch((x: unknown) => x)) as JpkiError;
        expect(isJpkiError(e) && e.code).toBe("ERR_STORE");
      }
      expect((await c.query("SELECT action FROM audit_log ORDER BY seq")).rows.map((r) => r.action)).toEqual(["x.first"]);
      expect((await c.query("SELECT count(*)::int AS n FROM disclosures")).rows[0].n).toBe(0);
    } finally {
      await c.end();
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

  it("CRL status per scope (every crl generate reads it) is one statement sent alone: one message, no BEGIN and COMMIT around it", async () => {
    const s = await PostgresStore.open(await server.createDatabase(await migratedTemplate()));
    try {
      await s.putCa(ca);
      const spy = vi.spyOn(pg.Client.prototype, "query");
      let messages: number;
      let status: Awaited<ReturnType<PostgresStore["crlScopeStatus"]>>;
      try {
        status = await s.crlScopeStatus();
        messages = spy.mock.calls.length;
      } finally {
        spy.mockRestore();
      }
      expect(messages).toBe(1);
      expect(status.map((x) => [x.caId, x.scope, x.dirty])).toContainEqual([ca.id, "arl", false]);
    } finally {
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
    const clock = firstStallHeld();
    const dog = new StoreWatchdog({ waitMs: 200, now: clock.now, onStalled: clock.onStalled });
    const log = new DisclosureLog(s, { watchdog: dog });
    const rec = (serial: string) => ({ verifierId: "v-1", serial, issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(1000), validationTime: new Date(1000), answer: "valid", itemsDisclosed: false });
    try {
      await a.query("BEGIN");
      await a.query("LOCK TABLE disclosures IN ACCESS EXCLUSIVE MODE");
      // without the bound this waited as long as the lock was held
      await expect(log.record(rec("01"))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      await expect(log.record(rec("02"))).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      clock.release();
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
    // a lock wait longer than the test: without the bounds, the close waited for the lock holder (for good on a hung
    // server); the close's own wait before it cuts is 0.2 s here instead of 2 s (the same cut, sooner)
    const s = await PostgresStore.open(url, { create: true, lockTimeoutMs: 600_000, closeWaitMs: 200 });
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
  /**
   * A store on a database whose `setting` every session of the store opened after `prepare` has: what the test
   * sets up is written before the setting applies, so a short timeout meets only the step the test is about (a
   * setup transaction paused past 100 ms by a loaded host failed with the very error the test expects later: CI).
   */
  async function storeWithDatabaseSetting(setting: string, prepare: (s: PostgresStore) => Promise<void> = async () => undefined): Promise<{ s: PostgresStore; a: pg.Client }> {
    const url = await server.createDatabase();
    const before = await PostgresStore.open(url, { create: true });
    try {
      await before.putCa(ca);
      await prepare(before);
    } finally {
      await before.close();
    }
    const a = await admin(url);
    await a.query(`ALTER DATABASE ${pg.escapeIdentifier(decodeURIComponent(new URL(url).pathname.slice(1)))} SET ${setting}`);
    const s = await PostgresStore.open(url);
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
    const { s, a } = await storeWithDatabaseSetting("idle_in_transaction_session_timeout = '100ms'", async (s) => {
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" as const }]);
      await s.commitIssuances([{ serial: "0a01", caId: ca.id, type: "signature", residentCode: "r1", municipalityCode: "131016", fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]) }]);
      await s.revoke({ serial: "0a01", revokedAt: new Date(1000), reason: 1, source: "manual" });
    });
    try {
      // The stream's snapshot transaction idles while its consumer works on a page; the server ends the session.
      const e = await (async () => {
        for await (const chunk of s.crlEntries(ca.id, { expiredBefore: new Date(0) })) {
          expect(chunk.count).toBe(1);
          // until the server has ended the session idle in it (600 ms stood for that, 6 × the setting: its timer
          // runs in a backend a loaded host may run late, and the stream then committed unharmed)
          const idle = async () => (await a.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'")).rows[0]!.n;
          await until(async () => (await idle()) === 0, "the server to end the session idle in its transaction", { timeoutMs: 60_000 });
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
