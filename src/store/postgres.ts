/**
 * The scale-out store: PostgreSQL through node-postgres (`pg`), versioned migrations recorded in a `meta`
 * table. The facts and the semantics are those of the SQLite store (sqlite.ts is the reference): dates are
 * bigint milliseconds, CRL numbers bigint, identifiers compare byte for byte (COLLATE "C", as SQLite's
 * BINARY), and one behavioural suite (contract.ts) runs against both.
 *
 * Concurrency contract (types.ts). Every transaction runs READ COMMITTED and takes its locks before it
 * reads, so each read sees everything the previous holder of those locks committed:
 * - Resident facts — the registry record, the CA side's notice sequence, held notices, the certificates of
 *   a resident code — are guarded by a transaction-scoped advisory lock per resident code
 *   (`pg_advisory_xact_lock(RESIDENT_LOCKS, hashtext(code))`), taken in sorted order by commitNoticeBatch,
 *   applyToRegistry, commitIssuances and upsertResidents, for every code they read or write. A transaction
 *   also holds one "all residents" lock in shared mode; one that would need more than `maxResidentLocks`
 *   codes (a large batch: advisory locks live in PostgreSQL's shared lock table, sized by
 *   max_locks_per_transaction) takes that lock exclusively instead, and so runs alone on the resident side.
 * - Codes found only while reading (a held resident-code change pointing at a new code, a record
 *   applyToRegistry's `decide` asks for) are locked with try-locks; when one is taken the transaction rolls
 *   back and starts again with the larger set locked up front, in order. Blocking waits thus only ever happen
 *   in sorted order before anything else is held, and cannot deadlock; `decide` is pure, so running it again
 *   is safe.
 * - CRL numbering and publication are serialized per CA by its crl_state row (`INSERT … ON CONFLICT DO
 *   NOTHING`, then `SELECT … FOR UPDATE`); publishCrl's `install()` runs while that row is locked, before
 *   COMMIT. Every revocation bumps the same row, so a reservation reads a revision no revoking transaction
 *   is still writing to.
 * - Changes to the set of CA keys (ca init, rewrap, rollover, bridge) are serialized across every host sharing the
 *   database by a session-level advisory lock held on a connection of its own (withCaKeysLock): a try-lock,
 *   ERR_WORKSPACE_LOCKED at once when held, as each host's lock file refuses.
 * A lock wait longer than `lockTimeoutMs` (PostgreSQL's lock_timeout) fails with ERR_WORKSPACE_LOCKED; a
 * deadlock PostgreSQL detects anyway (40P01) retries the whole call a few times.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createRequire } from "node:module";
import type { CertificateType, Gender } from "../profile/types.js";
import type { Client, ClientBase, Connection, CustomTypesConfig, Pool, PoolClient, QueryResultRow, Submittable } from "pg";
import { JpkiError } from "../errors.js";
import { Coalescer } from "./coalesce.js";
import { parsePostgresUrl } from "./postgres-url.js";
import { isWholeTlv } from "../pki/der.js";
import { BinaryRows, COPY_SIGNATURE, CopyIn, CopyOut, boolArray, byteaArray, int4Array, int8Array, textArray } from "./pg-binary.js";
import { decodeEntries, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import { collectYoungGeneration, STREAM_COLLECT_BYTES } from "./young-generation.js";
import { currentCall, holdFor, runAs, type WatchedCall } from "./watchdog.js";
import { CONNECTION_LOST_AFTER_SENDING } from "./write-outcome.js";
import { dropConnection, sendCancelRequest } from "./pg-stop.js";
import { RevocationBlocks, blockEntries, carriedOrderEntry, municipalityKey, splitBlockByPartition, type RevocationBlock } from "./revocation-log.js";
import {
  toDisclosure,
  type DisclosureRowDb,
  disclosureValues,
  statusCheckValues,
  toStatusCheck,
  toConsent,
  type StatusCheckRowDb,
  type ConsentRowDb,
  itemsOf,
  newResidentCodeOf,
  sameItems,
  toCa,
  toCaLink,
  toOcspResponder,
  ocspSignerAdded,
  verifierCaChanged,
  ocspSignerRenewed,
  keysRewrapped,
  rewrappedKeys,
  toCertRow,
  toCrlRecord,
  toDumpCrl,
  toResident,
  toStoredNotice,
  toVerifier,
  toVerifierCa,
  toVerifierFetch,
  verifierValues,
  wellFormedCertificateIds,
  carriedMunicipality,
  certificateIdKey,
  certifiedKeyOf,
  keyInUse,
  sameCertifiedKey,
  type CertRowDb,
  type CrlRowDb,
  type NoticeRowDb,
  type ResidentRow,
  type VerifierFetchRowDb,
  type VerifierRowDb,
  sharedKeysAmong,
  peopleApart,
  successorsOf,
  SHARED_KEYS_PAGE,
} from "./rows.js";
import type {
  CertificateOwner,
  DisclosureAppend,
  DisclosureOwner,
  DisclosureRecord,
  ConsentRecord,
  StatusCheckRecord,
  StoredStatusCheck,
  CaLinkRecord,
  CaCompromiseRecord,
  RetiredCaIdRecord,
  CaRecord,
  CertificateStatusRow,
  OcspResponderRecord,
  OcspSignerKey,
  VerifierCaKey,
  WrappedKeysSeen,
  CertificateQuery,
  CertificateRow,
  CertifiedRow,
  CrlRecord,
  CrlReservation,
  CrlStatus,
  IssuanceCommitResult,
  IssuanceRecord,
  NoticeCommit,
  NoticeContext,
  NoticeContextKeys,
  NoticeStatus,
  RegistryDecide,
  ResidentForIssuance,
  ResidentRecord,
  OutboxNotice,
  RegisteredIssuance,
  RevokeInput,
  CarriedRevocation,
  CarriedStatus,
  Store,
  StoredNotice,
  HeldNoticeKey,
  DumpBatch,
  DumpCounts,
  DumpKind,
  DumpRevocationOrder,
  DumpOptions,
  VerifierCaRecord,
  VerifierFetch,
  VerifierRecord,
  WriteDeadline,
  SharedCertifiedKey,
} from "./types.js";
import { ARL_SCOPE, COUNTER_NOTICE_ID_KEY, CrlInstallFailed, DELTA_SCOPE, DUMP_KINDS, FULL_SCOPE, guardedInstall, sweepBatchSize, type PublishedCrlRecord, type SweepOptions, type CrlScope, type DisclosureIndexWatch, type CrlScopeStatus, type DeltaCrlReservation, type DeltaCrlStatus, type KnownBlocks } from "./types.js";
import { DumpStreamCheck, type DumpDataBatch } from "./dump.js";
import { activeCompromiseMessage, auditDigest, caCompromisedAudit, caCreatedAudit, caIdRetiredAudit, caRolloverAudit, retiredMessage, checkpointAudit, crlAudit, issuanceAudit, noticeBatchAudit, ocspAudit, queryAudits, rewrapAudit, registryAudit, registryLoadAudit, registrySweepAudit, revokeAudit, toAudit, toAuditCheckpoint, verifierAudit, type AuditCheckpointRowDb, type AuditContext, type AuditRowDb } from "./audit-ops.js";
import { FILL_PAGE_ROWS, fillMarkKey, pageRowsOf, upgradeInProgress, type UpgradeOptions } from "./upgrade.js";
import { certifiedKeyColumn, isPgWriterGuard, NO_CERTIFIED_KEY, PG_RELINK_GUARD_MESSAGE, PG_WRITER_GUARD_COMMENT, PG_WRITER_GUARD_CONSTRAINT, writerGuardRefused } from "./writer-guard.js";
import { auditFields, auditHashTail, GENESIS_HASH, osActor, type AuditCheckpoint, type AuditEntry, type AuditQuery, type AuditRecord } from "./audit-log.js";

/**
 * Advisory lock namespaces, the first key of the two-key form ("JPKI" and the next three codes): what an
 * operator finds in pg_locks (classid) when a jpki transaction waits. Per resident: (residents, hashtext(code)).
 * The CA keys: (caKeys, 0), a session-level lock held by `ca init`, `rewrap`, `rollover` and `bridge` for their
 * whole run (withCaKeysLock) — in pg_locks locktype advisory, classid 1246776140, objid 0, objsubid 2, and the
 * store's database (every store on a server uses the same keys, each in its own database). The liveness checks'
 * history: (statusChecks, 0), transaction-scoped, taken by recordStatusChecks before it draws ids.
 */
export const ADVISORY_LOCKS = { residents: 0x4a504b49, allResidents: 0x4a504b4a, migration: 0x4a504b4b, caKeys: 0x4a504b4c, statusChecks: 0x4a504b4d, certifiedKeys: 0x4a504b4e } as const;
const RESIDENT_LOCKS = ADVISORY_LOCKS.residents;
const ALL_RESIDENTS_LOCK = ADVISORY_LOCKS.allResidents;
const MIGRATION_LOCK = ADVISORY_LOCKS.migration;
const CA_KEYS_LOCK = ADVISORY_LOCKS.caKeys;

/**
 * withCaKeysLock's try-lock, and when it fails the session that holds the lock, in one statement: read after the
 * try (the lateral join waits for its row) and on the server's live lock table, so what it names held the lock
 * after ours was refused, not a session that released it before or a reading of a moment past. pg_locks lists
 * the advisory locks of every database on the server, and other jpki stores on it hold the same key: only this
 * database's holder counts. Never this session itself.
 */
const CA_KEYS_TRY = `WITH try AS MATERIALIZED (SELECT pg_try_advisory_lock($1::int, 0) AS got)
  SELECT try.got, pg_backend_pid() AS pid, h.pid AS holder, h.name FROM try LEFT JOIN LATERAL (
    SELECT l.pid, a.application_name AS name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE NOT try.got AND l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid = $2::bigint::oid AND l.objid = 0 AND l.objsubid = 2 AND l.granted AND l.pid <> pg_backend_pid()
    LIMIT 1) h ON true`;
/** How many times withCaKeysLock tries when the lock is held but its holder let go before it could be named. */
const CA_KEYS_TRIES = 5;

/** A migration: SQL, or a function run with the migrating transaction's connection (for what SQL cannot encode). */
export type PgMigration = string | ((c: ClientBase) => Promise<void>) | PgFillMigration;

/**
 * A migration that fills a column for every row of a table (store/upgrade.ts): the runner commits it in pages
 * (runPgFill), each with how far it has come, and records the version in the transaction that finishes it.
 * Called as a function it does the whole in one go (what tests building an older schema do).
 */
interface PgFill {
  /** for the progress line: "certified keys" */
  readonly what: string;
  /** the table filled, for an estimate of its rows (pg_class.reltuples) */
  readonly table: string;
  /** Run once, in the transaction that writes the first mark: adds the column. */
  readonly start: string;
  /**
   * Fills up to `rows` rows whose key is above `after` ("" before the first page), in key order: the last key it
   * filled and how many, or undefined when none is left.
   */
  readonly page: (c: ClientBase, after: string, rows: number) => Promise<{ last: string; filled: number } | undefined>;
  /** Run in the transaction that records the version, once the column is filled. */
  readonly finish: (c: ClientBase) => Promise<void>;
}
export type PgFillMigration = ((c: ClientBase) => Promise<void>) & { readonly fill: PgFill };

function pgFillMigration(fill: PgFill): PgFillMigration {
  const whole = async (c: ClientBase) => {
    await c.query(fill.start);
    for (let after = ""; ; ) {
      const p = await fill.page(c, after, FILL_PAGE_ROWS);
      if (!p) break;
      after = p.last;
    }
    await fill.finish(c);
  };
  return Object.assign(whole, { fill });
}

/** How far a fill has come (meta, fillMarkKey): the key its pages reached and the rows they filled. */
interface PgFillMark {
  readonly after: string;
  readonly done: number;
}

/**
 * Runs the fill of migration `v` (to version v + 1) on `c`, which holds the migration lock for its session and is
 * in a transaction: that transaction writes the first mark (unless an earlier run did) and commits with the
 * migrations before; each page then commits on its own with the mark moved on, so an opener killed goes on from
 * its last page next time. Returns in a new transaction in which the fill is finished, for the caller to record the
 * version in and go on with the next migrations. Other openers wait on the migration lock meanwhile (open).
 */
async function runPgFill(c: ClientBase, v: number, fill: PgFill, opts: UpgradeOptions, signal?: AbortSignal): Promise<void> {
  const key = fillMarkKey(v + 1);
  const pageRows = pageRowsOf(opts);
  const readMark = async () => {
    const stored = (await c.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [key])).rows[0]?.value;
    return stored === undefined ? undefined : (JSON.parse(stored) as PgFillMark);
  };
  if (!(await readMark())) {
    await c.query(fill.start);
    await c.query("INSERT INTO meta (key, value) VALUES ($1, $2)", [key, JSON.stringify({ after: "", done: 0 } satisfies PgFillMark)]);
  }
  await c.query("COMMIT");
  // An estimate (the planner's row count, -1 before the table was ever analyzed), read once: count(*) would scan it.
  const estimate = Number((await c.query<{ n: number }>("SELECT reltuples::float8 AS n FROM pg_class WHERE oid = to_regclass($1)", [fill.table])).rows[0]?.n ?? 0);
  for (let page = 1; ; page++) {
    await c.query("BEGIN ISOLATION LEVEL READ COMMITTED");
    const mark = (await readMark())!;
    const p = await fill.page(c, mark.after, pageRows);
    if (!p) break;
    await opts.inPage?.(page, v + 1);
    const next: PgFillMark = { after: p.last, done: mark.done + p.filled };
    await c.query("UPDATE meta SET value = $2 WHERE key = $1", [key, JSON.stringify(next)]);
    await c.query("COMMIT");
    opts.onProgress?.({ what: fill.what, done: next.done, total: Math.max(next.done, Math.round(estimate)), stage: "filling" });
    // A daemon's stop (its SIGTERM) that came during the page ends the fill here, between two commits: a national
    // fill runs for hours, and the next open goes on from the mark just committed, as after a kill.
    signal?.throwIfAborted();
  }
  const done = (await readMark())!.done;
  opts.onProgress?.({ what: fill.what, done, total: done, stage: "indexing" });
  await fill.finish(c);
  await c.query("DELETE FROM meta WHERE key = $1", [key]);
  // (recorded with the version by the caller's commit: "done" is as good as that commit, which follows at once)
  opts.onProgress?.({ what: fill.what, done, total: done, stage: "done" });
}

/**
 * A registry_issuances row whose certificate is not revoked: what the registry side holds. A notice batch leaves
 * a revoked certificate's row in place (commitNoticeBatch); the other revoking transactions delete it.
 */
const REGISTERED_UNREVOKED = `NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = registry_issuances.serial AND c.revoked_at IS NOT NULL)`;

/**
 * Whether a batch's relinks may be applied as one set (one statement per table) with the outcome of applying them
 * in order: every code at most once as a source and once as a target, and no target also a source (a code moved on
 * again within the batch: in order its rows travel twice, set-wise once).
 */
function relinksSetwise(relinks: ReadonlyArray<{ readonly from: string; readonly to: string }>): boolean {
  if (relinks.length < 2) return relinks.length === 1 && relinks[0]!.from !== relinks[0]!.to;
  const from = new Set(relinks.map((r) => r.from));
  const to = new Set(relinks.map((r) => r.to));
  return from.size === relinks.length && to.size === relinks.length && ![...to].some((c) => from.has(c));
}

/** Registers the issuance information of every unrevoked certificate (migration 10, and after a load). */
const REGISTER_UNREVOKED = `
  INSERT INTO registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after)
    SELECT serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after
    FROM certificates WHERE revoked_at IS NULL;`;

/**
 * The meta key of a store a PostgreSQL restore (backup/restore.ts) put back and has not finished with: its value
 * (JSON: the backup's directory and when the restore began) is written in the transaction that restores the
 * tables, and removed by {@link PostgresStore.finishRestore} once the CRL numbering and the liveness-check ids
 * have moved past the backup's and the revocations made since are made again. Until then the store holds the
 * backup's numbering, below numbers verifiers have seen (RFC 5280 §5.2.3): it is refused for use, and no CRL
 * number is reserved from it, even by a process that opened the database before the restore.
 */
export const RESTORE_PENDING = "restore_pending";

/**
 * Version 26: each certificate's public key, looked up by `certified_key`, as SQLite's version 29 (sqlite.ts says
 * why). A column the issuing process fills (rows.ts certifiedKeyOf), not an expression index: reading the key out
 * of the DER in SQL would take a procedural function per inserted row. Existing rows are filled here in pages that
 * commit on their own (runPgFill), by serial; the index is built once they are.
 * jpki_lock_keys: the keys a commitIssuances certifies, locked in a fixed order (as jpki_lock_residents).
 */
const migration26 = pgFillMigration({
  what: "certified keys",
  table: "certificates",
  start: "ALTER TABLE certificates ADD COLUMN certified_key bytea",
  page: async (c, after, n) => {
    const rows = (await c.query<{ serial: string; der: Buffer }>("SELECT serial, der FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2", [after, n])).rows;
    if (!rows.length) return undefined;
    await c.query("UPDATE certificates c SET certified_key = u.k FROM unnest($1::text[], $2::bytea[]) AS u(s, k) WHERE c.serial = u.s", [
      textArray(rows.map((r) => r.serial)),
      byteaArray(rows.map((r) => certifiedKeyOf(r.der) ?? undefined)),
    ]);
    return { last: rows[rows.length - 1]!.serial, filled: rows.length };
  },
  finish: async (c) => {
    await c.query(`
  CREATE INDEX certificates_certified_key ON certificates (certified_key);
  CREATE FUNCTION jpki_lock_keys(keys integer[]) RETURNS void LANGUAGE plpgsql AS $$
  DECLARE h integer;
  BEGIN
    FOR h IN SELECT DISTINCT k FROM unnest(keys) AS k ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(${ADVISORY_LOCKS.certifiedKeys}, h);
    END LOOP;
  END $$;
  `);
  },
});

/**
 * Version 29: the writer guard, as SQLite's version 32 (store/writer-guard.ts says why): a certificate without
 * `certified_key`, which only a jpki from before version 26 still running writes, is refused.
 *
 * A CHECK constraint added NOT VALID, not a trigger. Its cost on the insert path is one NULL test per row inside
 * the executor; a BEFORE ROW trigger, even one whose WHEN clause never fires, would turn the issuance's binary
 * COPY (COPY_CERTIFICATES) from batched inserts into one heap insert per row (PostgreSQL's COPY batches only
 * tables without BEFORE/INSTEAD row triggers), and call a function for any row it fires on. NOT VALID: the rows
 * already there are not scanned (at 200M certificates a full scan under the table's lock), only inserts and updates
 * are checked from here. Its name is the message an old jpki shows (it quotes the SQLSTATE and the constraint's
 * name, never the server's text); its comment has the whole sentence. A CHECK is checked on UPDATE too (a
 * revocation): no row may be left NULL, so the rows an old writer already inserted (after the fill committed, or
 * below its mark: version 26 pages by serial) are filled here, and a DER with no key gets NO_CERTIFIED_KEY.
 * Adding the constraint locks the table (ACCESS EXCLUSIVE) until the upgrade commits: it waits for the writers in
 * flight, and none inserts until the rows below are filled. They are found through the column's index (a B-tree
 * holds NULLs): the planner's statistics may be those of the column before its fill, which would make a scan of
 * the table look cheaper, hence no sequential scan for these statements.
 */
async function migration29(c: ClientBase): Promise<void> {
  await c.query(`ALTER TABLE certificates ADD CONSTRAINT ${PG_WRITER_GUARD_CONSTRAINT} CHECK (certified_key IS NOT NULL) NOT VALID`);
  await c.query(`COMMENT ON CONSTRAINT ${PG_WRITER_GUARD_CONSTRAINT} ON certificates IS ${sqlLiteral(PG_WRITER_GUARD_COMMENT)}`);
  const seqscan = (await c.query<{ v: string }>("SELECT current_setting('enable_seqscan') AS v")).rows[0]!.v;
  await c.query("SELECT set_config('enable_seqscan', 'off', true)");
  for (;;) {
    const rows = (await c.query<{ serial: string; der: Buffer }>("SELECT serial, der FROM certificates WHERE certified_key IS NULL LIMIT $1", [FILL_PAGE_ROWS])).rows;
    if (rows.length) {
      await c.query("UPDATE certificates c SET certified_key = u.k FROM unnest($1::text[], $2::bytea[]) AS u(s, k) WHERE c.serial = u.s", [
        textArray(rows.map((r) => r.serial)),
        byteaArray(rows.map((r) => certifiedKeyColumn(r.der))),
      ]);
    }
    if (rows.length < FILL_PAGE_ROWS) break;
  }
  await c.query("SELECT set_config('enable_seqscan', $1, true)", [seqscan]);
}

/**
 * Disclosure records above the per-resident index's mark (migration 34) from which an append starts bringing the
 * index up to date (#indexDisclosures), and the size of the groups a migration or a load indexes in. A batch
 * this size groups a resident's records into one row when they fall in it, and keeps what a reader takes from the
 * table itself about this short.
 */
const DISCLOSURES_PER_INDEX = 4096;

/**
 * The setting (local to its transaction) by which this release's relinks pass the relink guard (migration 35): set
 * by the statement that locks the per-resident index's mark before a relink (#disclosuresIndexedThrough).
 */
const DISCLOSURE_RELINK_SETTING = "jpki.disclosure_relink";

/** Migration 35's SQL (PG_MIGRATIONS says what it does). */
const MIGRATION_35 = `
  CREATE FUNCTION jpki_disclosures_relink_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    IF coalesce(current_setting('${DISCLOSURE_RELINK_SETTING}', true), '') <> 'on' THEN
      RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = '${PG_WRITER_GUARD_CONSTRAINT}', TABLE = 'disclosures',
        MESSAGE = ${sqlLiteral(PG_RELINK_GUARD_MESSAGE)};
    END IF;
    RETURN NULL;
  END
  $fn$;
  CREATE TRIGGER jpki_disclosures_relink_guard BEFORE UPDATE OF resident_code ON disclosures FOR EACH STATEMENT EXECUTE FUNCTION jpki_disclosures_relink_guard();
`;

/** Ordered migrations; the index + 1 is the schema version. Never edit a published one, append. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  `
  CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
  INSERT INTO meta (key, value) VALUES ('application', 'jpki');
  CREATE TABLE cas (
    id text COLLATE "C" PRIMARY KEY,
    prefecture text COLLATE "C" NOT NULL,
    purpose text COLLATE "C" NOT NULL CHECK (purpose IN ('signature','authentication')),
    cert_der bytea NOT NULL,
    key_pem text NOT NULL,
    key_id bytea NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE TABLE residents (
    resident_code text COLLATE "C" PRIMARY KEY,
    municipality_code text NOT NULL,
    name text NOT NULL,
    address text NOT NULL,
    birth_date text NOT NULL,
    gender text NOT NULL,
    status text NOT NULL,
    notice_sequence bigint NOT NULL DEFAULT 0
  );
  CREATE TABLE certificates (
    serial text COLLATE "C" PRIMARY KEY,
    ca_id text COLLATE "C" NOT NULL REFERENCES cas(id),
    type text NOT NULL,
    resident_code text COLLATE "C" NOT NULL,
    municipality_code text NOT NULL,
    name text NOT NULL,
    address text NOT NULL,
    birth_date text NOT NULL,
    gender text NOT NULL,
    not_before bigint NOT NULL,
    not_after bigint NOT NULL,
    issued_at bigint NOT NULL,
    der bytea NOT NULL,
    revoked_at bigint,
    reason integer,
    revocation_source text,
    application_id text COLLATE "C" UNIQUE
  );
  CREATE INDEX certificates_resident ON certificates (resident_code);
  -- CRLs stream from this index alone: keyset pages by serial, the entry's fields included.
  CREATE INDEX certificates_revoked ON certificates (ca_id, serial) INCLUDE (revoked_at, reason, not_after) WHERE revoked_at IS NOT NULL;
  CREATE TABLE crl_state (
    ca_id text COLLATE "C" PRIMARY KEY REFERENCES cas(id),
    revision bigint NOT NULL DEFAULT 0,
    published_revision bigint NOT NULL DEFAULT 0
  );
  CREATE TABLE crls (
    ca_id text COLLATE "C" NOT NULL REFERENCES cas(id),
    number bigint NOT NULL,
    this_update bigint NOT NULL,
    next_update bigint NOT NULL,
    entries integer,
    path text,
    sha256 text,
    revision bigint NOT NULL DEFAULT 0,
    state text NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved','published','superseded')),
    PRIMARY KEY (ca_id, number)
  );
  CREATE TABLE notices (
    notice_id text COLLATE "C" PRIMARY KEY,
    resident_code text COLLATE "C" NOT NULL,
    sequence bigint NOT NULL,
    kind text NOT NULL,
    status text NOT NULL CHECK (status IN ('applied','held')),
    body text NOT NULL,
    received_at bigint NOT NULL,
    applied_at bigint,
    revocations integer NOT NULL DEFAULT 0
  );
  CREATE INDEX notices_held ON notices (resident_code, sequence) WHERE status = 'held';
  CREATE TABLE resident_sequences (resident_code text COLLATE "C" PRIMARY KEY, last_sequence bigint NOT NULL);
  -- Per-resident advisory locks in a fixed order (sorted by key), so two lockers never wait on each other in a cycle.
  CREATE FUNCTION jpki_lock_residents(codes text[]) RETURNS void LANGUAGE plpgsql AS $$
  DECLARE h integer;
  BEGIN
    FOR h IN SELECT DISTINCT hashtext(c) FROM unnest(codes) AS c ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(${RESIDENT_LOCKS}, h);
    END LOOP;
  END $$;
  CREATE FUNCTION jpki_try_lock_residents(codes text[]) RETURNS boolean LANGUAGE plpgsql AS $$
  DECLARE h integer;
  BEGIN
    FOR h IN SELECT DISTINCT hashtext(c) FROM unnest(codes) AS c ORDER BY 1 LOOP
      IF NOT pg_try_advisory_xact_lock(${RESIDENT_LOCKS}, h) THEN RETURN false; END IF;
    END LOOP;
    RETURN true;
  END $$;
  `,
  // 2: OCSP (RFC 6960): each CA's delegated signing certificate and its key, encrypted as CA keys are.
  `
  CREATE TABLE ocsp_responders (
    ca_id text COLLATE "C" PRIMARY KEY REFERENCES cas(id),
    serial text COLLATE "C" NOT NULL,
    cert_der bytea NOT NULL,
    key_pem text NOT NULL,
    not_before bigint NOT NULL,
    not_after bigint NOT NULL
  );
  `,
  // 3: municipality partitions and ARLs (issue 9), as SQLite's version 9: crls.scope ("" full, a
  // municipality code, "arl"; numbers stay one sequence per CA), crl_scopes (each partition's and ARL's
  // freshness, a row per municipality the CA issued in), and an index listing a partition's revoked
  // certificates without reading the CA's others.
  `
  ALTER TABLE crls ADD COLUMN scope text COLLATE "C" NOT NULL DEFAULT '';
  CREATE INDEX crls_scope ON crls (ca_id, scope, number);
  CREATE TABLE crl_scopes (
    ca_id text COLLATE "C" NOT NULL REFERENCES cas(id),
    scope text COLLATE "C" NOT NULL,
    revision bigint NOT NULL DEFAULT 0,
    published_revision bigint NOT NULL DEFAULT 0,
    published_number bigint,
    PRIMARY KEY (ca_id, scope)
  );
  INSERT INTO crl_scopes (ca_id, scope) SELECT DISTINCT ca_id, municipality_code FROM certificates ORDER BY 1, 2;
  CREATE INDEX certificates_revoked_partition ON certificates (ca_id, municipality_code, serial) INCLUDE (revoked_at, reason, not_after)
    WHERE revoked_at IS NOT NULL;
  `,
  // 4: registered signature verifiers (署名検証者, issue 9 point 6): as SQLite's version 10.
  `
  CREATE TABLE verifier_ca (
    id integer PRIMARY KEY CHECK (id = 1),
    cert_der bytea NOT NULL,
    key_pem text NOT NULL,
    created_at bigint NOT NULL
  );
  CREATE TABLE verifiers (
    id text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('government','private')),
    token_sha256 text COLLATE "C" UNIQUE,
    cert_sha256 text COLLATE "C" UNIQUE,
    cert_not_after bigint,
    created_at bigint NOT NULL,
    revoked_at bigint
  );
  CREATE TABLE verifier_fetches (
    id bigserial PRIMARY KEY,
    verifier_id text COLLATE "C" NOT NULL,
    scope text NOT NULL,
    path text NOT NULL,
    status integer NOT NULL,
    at bigint NOT NULL
  );
  CREATE INDEX verifier_fetches_verifier ON verifier_fetches (verifier_id, id);
  `,
  // 5: aggregated fetch records, as SQLite migration 11 (sqlite.ts says why).
  `
  ALTER TABLE verifier_fetches ADD COLUMN count integer NOT NULL DEFAULT 1;
  ALTER TABLE verifier_fetches ADD COLUMN last_at bigint;
  `,
  // 6: delta CRLs (RFC 5280 §5.2.4, crl/delta.ts), as SQLite's version 12 with this backend's own mark. A
  // revocation records the transaction that made it (revoked_xid); a full CRL records, when its number is
  // reserved under the CA's crl_state row, the snapshot of that moment (delta_snapshot): a delta on it lists
  // the CA's revocations whose transaction that snapshot does not see — committed later or still running then —
  // the ones the CRL may miss. (A sequence number would not do: it is taken before commit, so a smaller one can
  // commit after a reservation saw a larger.) base_number, on a delta: its base's number. Revocations and
  // full CRLs from before this version have neither, and no delta is built on such a CRL.
  `
  ALTER TABLE certificates ADD COLUMN revoked_xid xid8;
  CREATE INDEX certificates_revoked_xid ON certificates (ca_id, revoked_xid) INCLUDE (serial, revoked_at, reason, not_after) WHERE revoked_xid IS NOT NULL;
  ALTER TABLE crls ADD COLUMN delta_snapshot pg_snapshot;
  ALTER TABLE crls ADD COLUMN base_number bigint;
  `,
  // 7: the revocation log, as SQLite's (migration 7 there, store/revocation-log.ts): each transaction that
  // revokes appends, per CA, one block of encoded CRL entries, so a full CRL is its CA's blocks in id order and
  // no entry is encoded again. Measured at 1,000,000 revocations, reading rows by serial and encoding each
  // entry in JS took 2.6 s of a CRL build. Ids come from a sequence, not in commit order: a full CRL lists the
  // blocks its snapshot sees, whatever their ids; deltas keep using revoked_xid, never block ids.
  migration7,  // 8: the disclosure log, as SQLite's version 14 (sqlite.ts says what it holds and why).
  `
  CREATE TABLE disclosures (
    id bigserial PRIMARY KEY,
    verifier_id text COLLATE "C" NOT NULL,
    serial text COLLATE "C" NOT NULL,
    issuer text NOT NULL,
    resident_code text COLLATE "C",
    purpose text NOT NULL,
    legal_basis text,
    at bigint NOT NULL,
    validation_time bigint NOT NULL,
    answer text NOT NULL,
    items_disclosed boolean NOT NULL
  );
  CREATE INDEX disclosures_resident ON disclosures (resident_code, id) WHERE resident_code IS NOT NULL;
  `,
  // 9: liveness checks and old/new certificate links (issue 11 point 4), as SQLite's version 15 (sqlite.ts says
  // what each holds and why). The certificate id (hex SHA-256 of the DER) is an expression index here:
  // sha256() and encode() are immutable built-ins, so no column to fill, and every writer keeps it right.
  `
  CREATE INDEX certificates_der_sha256 ON certificates ((encode(sha256(der), 'hex')));
  CREATE TABLE status_checks (
    id bigserial PRIMARY KEY,
    verifier_id text COLLATE "C" NOT NULL,
    at bigint NOT NULL,
    ca_id text,
    serial text COLLATE "C",
    certificate_id text COLLATE "C",
    status text NOT NULL CHECK (status IN ('good', 'revoked', 'unknown')),
    reason integer,
    revoked_at bigint,
    replaced_by_ca_id text,
    replaced_by_serial text
  );
  CREATE INDEX status_checks_verifier ON status_checks (verifier_id, id);
  CREATE TABLE consents (
    id bigserial PRIMARY KEY,
    resident_code text COLLATE "C" NOT NULL,
    verifier_id text COLLATE "C" NOT NULL,
    granted_at bigint NOT NULL,
    withdrawn_at bigint
  );
  CREATE UNIQUE INDEX consents_live ON consents (resident_code, verifier_id) WHERE withdrawn_at IS NULL;
  CREATE INDEX consents_verifier ON consents (verifier_id, id);
  `,
  // 10: the issuance information the registry side registered (発行情報; issue 12 point 1), as SQLite's
  // version 16 (sqlite.ts says why it is keyed by serial): one row per unrevoked certificate, filled here.
  `
  CREATE TABLE registry_issuances (
    serial text COLLATE "C" PRIMARY KEY,
    resident_code text COLLATE "C" NOT NULL,
    ca_id text COLLATE "C" NOT NULL,
    type text NOT NULL CHECK (type IN ('signature','authentication')),
    name text NOT NULL,
    address text NOT NULL,
    birth_date text NOT NULL,
    gender text NOT NULL,
    not_before bigint NOT NULL,
    not_after bigint NOT NULL
  );
  CREATE INDEX registry_issuances_resident ON registry_issuances (resident_code);
  ${REGISTER_UNREVOKED}
  `,
  // 11: the registry side's transactional outbox, as SQLite's version 17 (sqlite.ts says why). `id` orders the
  // rows: two transactions enqueuing for one resident are serialized by its advisory lock, so its later notice
  // always takes the higher id; across residents the order does not matter.
  `
  CREATE TABLE registry_outbox (
    id bigserial PRIMARY KEY,
    notice_id text COLLATE "C" NOT NULL UNIQUE,
    resident_code text COLLATE "C" NOT NULL,
    sequence bigint NOT NULL,
    body text NOT NULL,
    created_at bigint NOT NULL
  );
  `,
  // 12: CA keys in a PKCS#11 token, as SQLite's version 18: the key's RFC 7512 URI, NULL for a software key.
  `
  ALTER TABLE cas ADD COLUMN key_ref text;
  `,
  // 13: the audit log, as SQLite's version 19 (sqlite.ts). Here several processes append at once, so the head
  // lives in a one-row table, audit_head, that each appending transaction locks FOR UPDATE as its last step
  // (appendAudits): appends are serialized, and the lock is held only from there to COMMIT. Nothing is locked
  // after it, so it takes part in no deadlock. detail is text, not jsonb: the hash covers its exact bytes.
  `
  CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    at bigint NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    detail text NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
  );
  CREATE TABLE audit_head (
    id int PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    hash text NOT NULL
  );
  INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
  CREATE TABLE audit_checkpoints (
    seq bigint PRIMARY KEY,
    hash text NOT NULL,
    at bigint NOT NULL,
    ca_id text NOT NULL,
    cert_der bytea NOT NULL,
    signature bytea NOT NULL
  );
  `,
  // 14: CA key rollover's link certificates, as SQLite's version 20 (sqlite.ts says why).
  `
  CREATE TABLE ca_links (
    new_ca_id text COLLATE "C" PRIMARY KEY REFERENCES cas(id),
    old_ca_id text COLLATE "C" NOT NULL UNIQUE REFERENCES cas(id),
    old_with_new bytea NOT NULL,
    new_with_old bytea NOT NULL,
    created_at bigint NOT NULL
  );
  `,
  // 15: link-less rollovers after a key compromise, as SQLite's version 21 (sqlite.ts says why).
  `
  ALTER TABLE ca_links ALTER COLUMN old_with_new DROP NOT NULL, ALTER COLUMN new_with_old DROP NOT NULL,
    ADD CONSTRAINT ca_links_both_or_neither CHECK ((old_with_new IS NULL) = (new_with_old IS NULL));
  `,
  // 16: the audit log's records sealed in the database. Appending took two round trips in the appending
  // transaction (the head locked and read, then the records and the new head written) with each record's hash
  // made in between by auditHash; the function does both in one statement, hashing what auditHash hashes:
  // SHA-256 over '["' || prev_hash || '",' || tail, tail being auditHashTail (the rest of auditHash's JSON
  // array, made by the caller). The head is still locked as the transaction's last step (see 13).
  `
  CREATE FUNCTION jpki_audit_append(p_at bigint[], p_actor text[], p_action text[], p_subject text[], p_detail text[], p_tail text[])
  RETURNS bigint LANGUAGE plpgsql AS $fn$
  DECLARE
    s bigint;
    h text;
    prev text;
  BEGIN
    SELECT seq, hash INTO s, h FROM audit_head WHERE id = 1 FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_tail, 1), 0) LOOP
      prev := h;
      h := encode(sha256(convert_to('["' || prev || '",' || p_tail[i], 'UTF8')), 'hex');
      s := s + 1;
      INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
        VALUES (s, p_at[i], p_actor[i], p_action[i], p_subject[i], p_detail[i], prev, h);
    END LOOP;
    UPDATE audit_head SET seq = s, hash = h WHERE id = 1;
    RETURN s;
  END
  $fn$;
  `,
  // 17: the certificate id indexed by the digest's first 8 octets, as SQLite's version 23 (sqlite.ts says why):
  // 32 instead of ~70 bytes a key in an index every issuance writes at a random place. A lookup compares the
  // whole digest of what the prefix finds (certificatesForStatus).
  `
  DROP INDEX certificates_der_sha256;
  CREATE INDEX certificates_der_sha256_prefix ON certificates ((substring(sha256(der) from 1 for 8)));
  `,
  // 18: applied resident-code changes by their old code, as SQLite's version 24 (sqlite.ts says why).
  `
  CREATE INDEX notices_code_changes ON notices (resident_code) WHERE kind = 'resident-code-change' AND status = 'applied';
  `,
  migration19,
  // 20: no foreign key from certificates to cas. PostgreSQL checks one with a trigger per inserted row that runs
  // its own query (SELECT … FOR KEY SHARE on cas): ≈ 4 µs of server CPU per issued certificate, measured on
  // groups of 500, for a fact the code already holds — every ca_id is written from a CA record this process read,
  // and nothing deletes a CA. SQLite never enforced its foreign keys (PRAGMA foreign_keys is off there): both
  // stores now keep the same rule.
  `
  ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_ca_id_fkey;
  `,
  // 21: CA ids never to be created again, as SQLite's version 26 (sqlite.ts says why). IF NOT EXISTS: a restore
  // of an older backup over a newer database (pg_restore --clean drops only what the dump holds) leaves the table,
  // and its ids stay retired.
  `
  CREATE TABLE IF NOT EXISTS retired_ca_ids (
    id text COLLATE "C" PRIMARY KEY,
    retired_at bigint NOT NULL,
    reason text NOT NULL
  );
  `,
  // 22: CRL entries a restore carried over for certificates the store has no row of (Store.carryRevocations).
  // Their full CRL entries are in the revocation log like any; this backend builds partitions and deltas from
  // certificate rows, so these rows stand in for them there: the partition CRL of the municipality that listed
  // the entry (municipality_code '' when none did), and deltas on bases whose snapshot does not see carried_xid;
  // and OCSP answers them revoked (certificateStatus), by serial, as SQLite's version 27.
  // No foreign key to cas: a restore's pg_restore --clean drops cas and could not while this table pointed at it.
  // IF NOT EXISTS, as 21: an older backup restored over a newer database leaves the table and its entries
  // (revocations verifiers saw stay listed).
  `
  CREATE TABLE IF NOT EXISTS carried_revocations (
    ca_id text COLLATE "C" NOT NULL,
    serial text COLLATE "C" NOT NULL,
    municipality_code text COLLATE "C" NOT NULL,
    revoked_at bigint NOT NULL,
    reason integer NOT NULL,
    not_after bigint NOT NULL,
    carried_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (serial)
  );
  `,
  // 23: a revocation is a HOT update of its certificate row: no index names revoked_at, reason, revocation_source or
  // revoked_xid, and the table's pages keep a fifth free for the new row version. The three partial indexes of
  // revoked certificates gave every revocation an entry in each of the table's indexes (≈ 40 µs of server CPU per
  // revocation measured, ≈ 10 without them and HOT). Partition CRLs and deltas read the revocation log instead, as
  // full CRLs already did (and as SQLite does): each block records the transaction that appended it (logged_xid),
  // which a delta compares with its base's snapshot as it compared revoked_xid. Carried entries are in the log too,
  // so those reads no longer add carried_revocations (OCSP still reads it). Blocks from before this version have no
  // xid, and the delta bases recorded before it are cleared: the next full CRL is the first base, and every block
  // after its snapshot has one. Existing pages keep their fill until rewritten (VACUUM FULL), new ones leave room.
  // certificates.revoked_xid is no longer read, and revocations from this version on leave it NULL.
  `
  ALTER TABLE revocation_log ADD COLUMN logged_xid xid8;
  ALTER TABLE revocation_log ALTER COLUMN logged_xid SET DEFAULT pg_current_xact_id();
  CREATE INDEX revocation_log_xid ON revocation_log (ca_id, logged_xid) WHERE logged_xid IS NOT NULL;
  UPDATE crls SET delta_snapshot = NULL WHERE delta_snapshot IS NOT NULL;
  DROP INDEX IF EXISTS certificates_revoked;
  DROP INDEX IF EXISTS certificates_revoked_partition;
  DROP INDEX IF EXISTS certificates_revoked_xid;
  ALTER TABLE certificates SET (fillfactor = 80);
  `,
  // 24: reserving and publishing a CRL in the database. Reserving took six sequential round trips (BEGIN, the CA's
  // crl_state row created and locked, the highest number, the insert, COMMIT) and publishing ten: a notice run's
  // 400 CRLs spent most of their store time waiting on the loopback. Reserving is now one statement (its own
  // transaction), publishing four (BEGIN; check under the lock; the files installed by the caller; the rows and the
  // audit record; COMMIT). The steps, locks and their order are those of the statements they replace.
  `
  CREATE FUNCTION jpki_crl_state_lock(p_ca text, OUT o_revision bigint, OUT o_restore text) LANGUAGE plpgsql AS $fn$
  BEGIN
    SELECT s.revision INTO o_revision FROM crl_state s WHERE s.ca_id = p_ca FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO crl_state (ca_id) VALUES (p_ca) ON CONFLICT (ca_id) DO NOTHING;
      SELECT s.revision INTO o_revision FROM crl_state s WHERE s.ca_id = p_ca FOR UPDATE;
    END IF;
    -- read with the row held: a restore that finished before this lock is seen
    SELECT m.value INTO o_restore FROM meta m WHERE m.key = '${RESTORE_PENDING}';
  END
  $fn$;

  CREATE FUNCTION jpki_crl_reserve(p_ca text, p_this bigint, p_next bigint, p_scope text, OUT o_number bigint, OUT o_revision bigint, OUT o_restore text)
  LANGUAGE plpgsql AS $fn$
  BEGIN
    SELECT l.o_revision, l.o_restore INTO o_revision, o_restore FROM jpki_crl_state_lock(p_ca) l;
    IF o_restore IS NOT NULL THEN RETURN; END IF;
    IF p_scope <> '' THEN
      o_revision := coalesce((SELECT s.revision FROM crl_scopes s WHERE s.ca_id = p_ca AND s.scope = p_scope), 0);
    END IF;
    o_number := coalesce((SELECT max(c.number) FROM crls c WHERE c.ca_id = p_ca), 0) + 1;
    -- A full CRL records this statement's snapshot, taken with the crl_state row held: deltas on it list the
    -- revocations it does not see.
    INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope, delta_snapshot)
      VALUES (p_ca, o_number, p_this, p_next, o_revision, 'reserved', p_scope, CASE WHEN p_scope = '' THEN pg_current_snapshot() END);
  END
  $fn$;

  CREATE FUNCTION jpki_crl_publish_check(p_ca text, p_number bigint, p_scope text, OUT o_state text, OUT o_revision bigint, OUT o_restore text)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    st text;
    sc text;
    latest bigint;
  BEGIN
    SELECT l.o_restore INTO o_restore FROM jpki_crl_state_lock(p_ca) l;
    IF o_restore IS NOT NULL THEN RETURN; END IF;
    SELECT c.revision, c.state, c.scope INTO o_revision, st, sc FROM crls c WHERE c.ca_id = p_ca AND c.number = p_number;
    IF NOT FOUND OR st <> 'reserved' OR sc <> p_scope THEN
      o_state := 'unreserved';
      RETURN;
    END IF;
    SELECT max(c.number) INTO latest FROM crls c WHERE c.ca_id = p_ca AND c.scope = p_scope AND c.state = 'published';
    IF latest >= p_number THEN
      UPDATE crls SET state = 'superseded' WHERE ca_id = p_ca AND number = p_number;
      o_state := 'superseded';
      RETURN;
    END IF;
    o_state := 'reserved';
  END
  $fn$;

  CREATE FUNCTION jpki_crl_publish_finish(p_ca text, p_number bigint, p_scope text, p_revision bigint, p_entries integer, p_path text, p_sha256 text,
    p_at bigint[], p_actor text[], p_action text[], p_subject text[], p_detail text[], p_tail text[])
  RETURNS void LANGUAGE plpgsql AS $fn$
  BEGIN
    UPDATE crls SET entries = p_entries, path = p_path, sha256 = p_sha256, state = 'published' WHERE ca_id = p_ca AND number = p_number;
    -- A delta marks nothing clean: the CA stays due for its next complete CRL.
    IF p_scope = '' THEN
      UPDATE crl_state SET published_revision = greatest(published_revision, p_revision) WHERE ca_id = p_ca;
    ELSIF p_scope <> 'delta' THEN
      INSERT INTO crl_scopes (ca_id, scope, revision, published_revision, published_number) VALUES (p_ca, p_scope, 0, p_revision, p_number)
        ON CONFLICT (ca_id, scope) DO UPDATE SET published_revision = greatest(crl_scopes.published_revision, excluded.published_revision),
          published_number = greatest(crl_scopes.published_number, excluded.published_number);
    END IF;
    -- the audit head last, as every appending transaction takes it (16)
    PERFORM jpki_audit_append(p_at, p_actor, p_action, p_subject, p_detail, p_tail);
  END
  $fn$;
  `,
  // 25: a verifier's history by the time of its checks (GET /v1/status/history?since=): with only (verifier_id, id),
  // since filtered every check of the verifier after the cursor, a verifier with millions of them took ≈ 0.5 s a
  // request (listStatusChecks).
  `
  CREATE INDEX status_checks_verifier_at ON status_checks (verifier_id, at, id);
  `,
  migration26,
  // 27: the registry record's notice sequence each certificate was issued at, as SQLite's version 30 (sqlite.ts says why).
  `
  ALTER TABLE certificates ADD COLUMN registry_sequence bigint;
  `,
  // 28: a retired generation's key declared compromised after an ordinary rollover, as SQLite's version 31 (sqlite.ts says why).
  `
  ALTER TABLE ca_links ADD COLUMN compromised_at bigint;
  `,
  migration29,
  // 30: each revocation log block's SHA-256, as it is appended: a full CRL built with its previous one's blocks at
  // hand (crl/reuse.ts) asks for every block's digest instead of its bytes, and hashing them in the server took
  // ≈ 0.3 s a 1,000,000-entry CRL. Blocks logged before have none; the heads query hashes those (readLogHeads).
  `
  ALTER TABLE revocation_log ADD COLUMN digest bytea;
  `,
  // 31: jpki_audit_append (16) writes a single record in two statements instead of three. Most appends are one record
  // (an operation's, and a disclosure group's: one per verifier); their head was locked and read by a SELECT of its
  // own, then the record inserted, then the head moved. The record is now inserted from the head row it locks
  // (INSERT … SELECT … FOR UPDATE: a second appender waits on the row and, once the first commits, reads the head it
  // left, as the SELECT did), which saved ≈ 20–30 µs of the server's CPU per disclosure statement (≈ 1.5–2.5 µs per answer
  // at the bench's groups of 9–14). Same lock, same moment in the transaction (its last step), same hash; several
  // records go through the loop as before.
  `
  CREATE OR REPLACE FUNCTION jpki_audit_append(p_at bigint[], p_actor text[], p_action text[], p_subject text[], p_detail text[], p_tail text[])
  RETURNS bigint LANGUAGE plpgsql AS $fn$
  DECLARE
    s bigint;
    h text;
    prev text;
  BEGIN
    IF array_length(p_tail, 1) = 1 THEN
      INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
        SELECT a.seq + 1, p_at[1], p_actor[1], p_action[1], p_subject[1], p_detail[1], a.hash,
          encode(sha256(convert_to('["' || a.hash || '",' || p_tail[1], 'UTF8')), 'hex')
        FROM audit_head a WHERE a.id = 1 FOR UPDATE
        RETURNING seq, hash INTO s, h;
      -- no head row: the loop below would have failed on a NULL seq; never append a record nothing chains
      IF NOT FOUND THEN RAISE EXCEPTION 'audit_head has no row'; END IF;
      UPDATE audit_head SET seq = s, hash = h WHERE id = 1;
      RETURN s;
    END IF;
    SELECT seq, hash INTO s, h FROM audit_head WHERE id = 1 FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_tail, 1), 0) LOOP
      prev := h;
      h := encode(sha256(convert_to('["' || prev || '",' || p_tail[i], 'UTF8')), 'hex');
      s := s + 1;
      INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
        VALUES (s, p_at[i], p_actor[i], p_action[i], p_subject[i], p_detail[i], prev, h);
    END LOOP;
    UPDATE audit_head SET seq = s, hash = h WHERE id = 1;
    RETURN s;
  END
  $fn$;
  `,
  // 32: a disclosure group with one verifier (the common case: one audit record) chains that record in its own
  // statement, without jpki_audit_append (appendDisclosures). Its head update returns the hash it replaced, which
  // UPDATE … RETURNING cannot (PostgreSQL before 18 returns the new row only): the update sets prev_hash to the
  // old hash (a SET reads the row as it was) and returns it. prev_hash is a slot that statement writes and reads
  // back, not a fact about the head: jpki_audit_append and a load leave it as it was. The row lock is the
  // update's own, taken after the disclosures are in (the last lock, as before), and a second appender's update
  // waits on it and then re-reads the head the first left (READ COMMITTED's recheck), so the chain stays one.
  // jpki_audit_head_missing raises in the statement when the head row is gone (the function's 'audit_head has no
  // row'), so nothing is written that the log does not chain.
  `
  ALTER TABLE audit_head ADD COLUMN prev_hash text;
  CREATE FUNCTION jpki_audit_head_missing() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
  BEGIN
    RAISE EXCEPTION 'audit_head has no row';
  END
  $fn$;
  `,
  // 33: application ids unique among the certificates that carry one, as SQLite's index has been since its version 5:
  // a partial unique index instead of the column's UNIQUE constraint. PostgreSQL's B-trees index NULL, so the
  // constraint's index took an entry for every certificate issued without an application id — an insert and its
  // WAL record per issuance for a key nothing looks up (every lookup is application_id = $1 or = ANY($1), which the
  // partial index serves, tested with generic plans too), and at national scale an index of hundreds of millions
  // of NULLs. Measured (INSERT … SELECT groups of 500 into the issuance's two tables, after 10,000 rows, three
  // alternated pairs): the backend's CPU 1.0–2.0 µs and WAL 52–83 bytes a certificate less, every pair. Uniqueness
  // of the ids given is unchanged (NULLs never collided). Building it reads the table once, as version 17's index
  // did; the constraint's index goes with the constraint.
  `
  CREATE UNIQUE INDEX certificates_application ON certificates (application_id) WHERE application_id IS NOT NULL;
  ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_application_id_key;
  `,
  // 34: the disclosure log's per-resident index is kept apart and brought up to date in batches (#indexDisclosures),
  // as SQLite's version 22, not by every statement of the validation API: disclosures_resident took an entry on a
  // random leaf per answer, ≈ 7 µs of the server's CPU an answer (old72/findings-apipg3: the API with and without it).
  // A batch's records are grouped by resident into one row each, (resident, the highest id, the ids ascending): a
  // resident answered about several times in a batch takes one heap tuple and one index entry for all of them, and
  // at worst (every record another resident's) a batch costs what the old index did, off the answering path. The
  // highest id names a row for good, relinks included: each id is in one row, so no two rows share it.
  // What the rows do not cover yet (ids above indexed_through) readers take from disclosures itself, by its primary
  // key: a bounded tail. #indexDisclosures says why the mark never passes a record that commits later.
  // migration34 says how the existing log is filed (not here: in pages, off the upgrade's transaction).
  migration34,
  // 35: the relink guard, the writer guard's (29) counterpart for the disclosure log's per-resident index (34). A jpki
  // from before 34 still running against the upgraded store relinks (住民票コード変更) with a bare UPDATE of
  // disclosures' resident codes: the index rows below the mark stay under the old code, and the resident's view of
  // the new code misses them for good. A statement trigger on UPDATE OF resident_code refuses any such statement
  // (even one that moves no row: the old relink of a resident without records is refused too, so a batch fails whole,
  // not by whose records it touched) unless its transaction marked itself as this release's relink
  // (DISCLOSURE_RELINK_SETTING, set by the statement that reads and locks the mark: no round trip of its own). The
  // refusal names the writer guard's constraint under SQLSTATE 23514, which is all an older jpki shows of a server
  // error (and what one from 29 on maps to ERR_STORE_UPGRADED): the name says to stop the process and run the new
  // release, and the transaction — the whole notice batch — rolls back. A statement trigger, not a row one: it runs
  // once per relink statement and never on the API's appends (an INSERT does not fire it).
  // Its SQL is MIGRATION_35's; the table's lock (CREATE TRIGGER's, SHARE ROW EXCLUSIVE) is taken first by
  // lockBriefly, so that an append in flight for long (an older process's) makes the upgrade retry, not every
  // append queue behind the upgrade's request.
  async (c: ClientBase) => {
    await lockBriefly(c, "disclosures", "SHARE ROW EXCLUSIVE");
    await c.query(MIGRATION_35);
  },
];

/**
 * Version 19: a record closed by a resident-code change names the code the person moved to, as SQLite's version
 * 25 (sqlite.ts says why and which closed records get one). The bodies are read here, not cast to json in SQL:
 * one that is not JSON must leave its record without a successor, not fail the upgrade.
 */
async function migration19(c: ClientBase): Promise<void> {
  await c.query(`ALTER TABLE residents ADD COLUMN successor_code text COLLATE "C"`);
  const rows = await c.query<{ resident_code: string; body: string }>(
    `SELECT r.resident_code, n.body FROM residents r
       JOIN notices n ON n.resident_code = r.resident_code AND n.kind = 'resident-code-change' AND n.status = 'applied' AND n.sequence = r.notice_sequence
     WHERE r.status = 'removed' AND r.notice_sequence > 0`,
  );
  const found = new Map<string, string>();
  for (const r of rows.rows) {
    const to = newResidentCodeOf(r.body);
    if (to !== undefined && !found.has(r.resident_code)) found.set(r.resident_code, to);
  }
  if (!found.size) return;
  await c.query(
    `UPDATE residents r SET successor_code = u.t FROM unnest($1::text[], $2::text[]) AS u(f, t)
     WHERE r.resident_code = u.f AND EXISTS (SELECT 1 FROM residents s WHERE s.resident_code = u.t)`,
    [[...found.keys()], [...found.values()]],
  );
}

/** jpki_audit_append's arguments (migration 16) as $1–$6: the columns #auditColumns makes. */
const AUDIT_APPEND_ARGS = "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]";

/**
 * appendDisclosures' statement, up to its audit record: the answers (unnest of $7–$17), each with its certificate's
 * owner when the store holds that very certificate (o), inserted in their order (d). appendDisclosures says why it
 * is one statement and why the owners are joined where they are.
 *
 * The stored DER is read once per answer (head), not once per use: a certificate row (≈ 1.6 KB of DER, the key and
 * the four items) is over TOAST's 2 KB threshold, so der is kept out of line, and each function given the column
 * fetched it again — get_byte twice (the whole value) and substring (its slice): three TOAST index probes and chunk
 * reads an answer. The join (x) is on the serial alone, planned as any equi-join (an index probe per answer in a
 * large store, a hash join in a small one: a LATERAL subquery per answer scanned a 64-row table once per answer),
 * and fetches one slice; the subquery is not pulled up (OFFSET 0), so head is computed there once and the test runs
 * on that plain value. The slice is as long as any header the rule reads can make it need (2 octets and at most 127
 * length octets before the tbsCertificate), so the test is the one on der: same octets, same answer. owner_ca and
 * owner_resident are those of the certificate under the serial, whether or not it is the one answered: every reader
 * (d, DISCLOSURES_OWNERS) takes them only where owned.
 */
const DISCLOSURES_APPEND_CTES = `WITH o AS (
               SELECT x.n::int AS n, x.verifier_id, x.serial, x.issuer, x.resident_code, x.purpose, x.legal_basis, x.at, x.validation_time, x.answer, x.items_disclosed,
                 coalesce(CASE WHEN octet_length(x.head) < 2 THEN false
                   ELSE substring(x.head FROM 3 + CASE WHEN get_byte(x.head, 1) > 127 THEN get_byte(x.head, 1) - 128 ELSE 0 END FOR octet_length(x.tbs)) = x.tbs END, false) AS owned,
                 x.owner_ca, x.owner_resident
               FROM (SELECT u.*, c.ca_id AS owner_ca, c.resident_code AS owner_resident, substring(c.der FROM 1 FOR octet_length(u.tbs) + 129) AS head
                 FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[], $15::text[], $16::boolean[], $17::bytea[])
                   WITH ORDINALITY AS u(verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed, tbs, n)
                 LEFT JOIN certificates c ON c.serial = u.serial AND u.tbs IS NOT NULL OFFSET 0) x),
             d AS (
               INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
               SELECT verifier_id, serial, CASE WHEN owned THEN owner_ca ELSE issuer END, CASE WHEN owned THEN owner_resident ELSE resident_code END,
                 purpose, legal_basis, at, validation_time, answer, items_disclosed
               FROM o ORDER BY n
               RETURNING id)`;

/**
 * The owners found (o), in the answers' order, and the highest id the group took (whether the per-resident index
 * is due, #afterDisclosures): the statement's last four columns.
 */
const DISCLOSURES_OWNERS = `array(SELECT n FROM o WHERE owned ORDER BY n) AS ns,
               array(SELECT owner_ca FROM o WHERE owned ORDER BY n) AS cas, array(SELECT owner_resident FROM o WHERE owned ORDER BY n) AS residents,
               (SELECT max(id) FROM d) AS newest`;

/** Any number of audit records ($1–$6): jpki_audit_append chains them, called once the disclosures are in. */
const DISCLOSURES_APPEND_OWNED = `${DISCLOSURES_APPEND_CTES}
             SELECT jpki_audit_append(${AUDIT_APPEND_ARGS}) AS audited, ${DISCLOSURES_OWNERS}
             FROM (SELECT count(*) FROM d) AS inserted`;

/**
 * One audit record (element 1 of $1–$6), chained here (migration 32): the head moved by an UPDATE that waits for the
 * disclosures (its condition counts d, evaluated before any row is locked) and returns the hash it replaced, the
 * record inserted from what it returns — the hash as jpki_audit_append computes it (auditHashTail). No head row:
 * jpki_audit_head_missing raises, and the statement writes nothing.
 */
const DISCLOSURES_APPEND_ONE = `${DISCLOSURES_APPEND_CTES},
             h AS (
               UPDATE audit_head SET seq = seq + 1, prev_hash = hash,
                 hash = encode(sha256(convert_to('["' || hash || '",' || ($6::text[])[1], 'UTF8')), 'hex')
               WHERE id = 1 AND (SELECT count(*) FROM d) >= 0
               RETURNING seq, prev_hash, hash),
             a AS (
               INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
               SELECT seq, ($1::bigint[])[1], ($2::text[])[1], ($3::text[])[1], ($4::text[])[1], ($5::text[])[1], prev_hash, hash FROM h
               RETURNING seq)
             SELECT coalesce((SELECT seq FROM a), jpki_audit_head_missing()) AS audited, ${DISCLOSURES_OWNERS}`;

/**
 * A relink's statements for the disclosure log (migration 34), `from` and `to` text arrays (SQL) of codes: the
 * records up to `mark` found through their index rows (no index on disclosures' resident codes any more), those
 * above it in the table by its primary key, then the index rows moved. The caller holds the mark's row FOR SHARE.
 */
function relinkDisclosures(from: string, to: string, mark: number): string[] {
  const m = String(Math.trunc(mark)); // a number read from the store: a literal, so the range is planned as one
  return [
    `UPDATE disclosures d SET resident_code = x.t
     FROM (SELECT u.t, i FROM unnest(${from}, ${to}) AS u(f, t) JOIN disclosures_by_resident r ON r.resident_code = u.f CROSS JOIN LATERAL unnest(r.ids) AS i) x
     WHERE d.id = x.i`,
    `UPDATE disclosures d SET resident_code = u.t FROM unnest(${from}, ${to}) AS u(f, t) WHERE d.id > ${m} AND d.resident_code = u.f`,
    `UPDATE disclosures_by_resident r SET resident_code = u.t FROM unnest(${from}, ${to}) AS u(f, t) WHERE r.resident_code = u.f`,
  ];
}

/**
 * Migration 34, as it runs since the upgrade stopped filing the existing log in its own transaction. It filed it
 * under `LOCK TABLE disclosures IN SHARE ROW EXCLUSIVE MODE` and set the mark to the log's highest id: 14.6 s for
 * 2M records on a loaded host (old73/findings-pgdiscreview), every append of an older process still running waiting
 * meanwhile, and failing at its 20 s lock_timeout from ≈ 2.7M records — a national log would have stopped the API's
 * appends for many minutes. Now it only makes the two tables, the mark at 0, and keeps disclosures_resident: the
 * indexer (#indexDisclosures) files the log in pages, each its own short transaction, once the first appends find it
 * behind, and drops disclosures_resident (CONCURRENTLY) once the mark has reached the log's end.
 * A store upgraded by the old text (every record filed, the mark at the highest id then, no disclosures_resident)
 * and one by this (the mark at 0 or anywhere short of the end, disclosures_resident kept until it is caught up) are
 * states of the same schema, which every reader and writer of 34 takes as it finds it:
 * - the mark short of the log's end is the state the indexer leaves between its batches anyway: what is above it is
 *   read from disclosures itself (listDisclosures, and a relink's tail UPDATE), so views equal the table;
 * - only how fast the part above the mark is read depends on disclosures_resident: with it (here, while the log is
 *   being caught up) a resident's records above the mark are found by (resident_code, id), not by a scan of the
 *   tail, which is the whole log at first; without it (the old text, or once caught up) the tail is short;
 * - the pages follow the mark's rule as every batch does (#indexDisclosures), the relink guard (35) and the relinks'
 *   FOR SHARE on the mark hold between any two pages as between two batches.
 * An empty log (a new store) has nothing to catch up: disclosures_resident goes at once, under a brief lock.
 */
async function migration34(c: ClientBase): Promise<void> {
  await c.query(`
  CREATE TABLE disclosures_by_resident (
    resident_code text COLLATE "C" NOT NULL,
    newest bigint NOT NULL,
    ids bigint[] NOT NULL,
    PRIMARY KEY (resident_code, newest)
  );
  CREATE TABLE disclosure_index_state (
    id integer PRIMARY KEY CHECK (id = 1),
    indexed_through bigint NOT NULL
  );
  INSERT INTO disclosure_index_state (id, indexed_through) VALUES (1, 0);
  `);
  if ((await c.query<{ e: boolean }>("SELECT EXISTS (SELECT 1 FROM disclosures) AS e")).rows[0]!.e) return;
  // A record an older process appends between the look and the lock stays in the tail, read from the table.
  await lockBriefly(c, "disclosures", "ACCESS EXCLUSIVE");
  await c.query("DROP INDEX disclosures_resident");
}

/** How long one try of lockBriefly waits for a table lock: the most an append queued behind the request waits. */
const BRIEF_LOCK_TRY_MS = 100;

/**
 * Takes `mode` on `table` in `c`'s transaction (an upgrade's) in tries of BRIEF_LOCK_TRY_MS, pausing between them,
 * for as long as the session's lock_timeout allows in all. A lock request that waits makes every later request that
 * conflicts with it wait behind it: one plain LOCK waiting for an older process's append held open (a slow
 * transaction of its) kept all of that process's appends waiting too, up to their lock_timeout. A try given up
 * lets them through; the one that is granted is held only for the rest of the upgrade's transaction (a few DDL).
 */
async function lockBriefly(c: ClientBase, table: string, mode: "SHARE ROW EXCLUSIVE" | "ACCESS EXCLUSIVE"): Promise<void> {
  const total = Number((await c.query<{ ms: string }>("SELECT setting AS ms FROM pg_settings WHERE name = 'lock_timeout'")).rows[0]?.ms ?? 0);
  const tryMs = total > 0 ? Math.min(BRIEF_LOCK_TRY_MS, total) : BRIEF_LOCK_TRY_MS;
  const until = total > 0 ? performance.now() + total : Infinity;
  for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
    try {
      await c.query("SAVEPOINT jpki_brief_lock");
    } catch (e) {
      // No transaction (a test building an older schema statement by statement): nothing would hold the lock past
      // this statement, and each DDL takes its own.
      if (pgCode(e) === PG.noActiveTransaction) return;
      throw e;
    }
    try {
      await c.query("SELECT set_config('lock_timeout', $1, true)", [`${tryMs}ms`]);
      await c.query(`LOCK TABLE ${table} IN ${mode} MODE`);
      // the session's own again, for what the upgrade does next
      await c.query("SELECT set_config('lock_timeout', $1, true)", [`${total}ms`]);
      await c.query("RELEASE SAVEPOINT jpki_brief_lock");
      return;
    } catch (e) {
      if (pgCode(e) !== PG.lockNotAvailable) throw e;
      // the savepoint takes the try's lock_timeout back with it
      await c.query("ROLLBACK TO SAVEPOINT jpki_brief_lock");
      if (performance.now() + pause >= until) throw e;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}

/**
 * Ids the indexer files in one transaction (#indexDisclosures): 16 batches. A log upgraded from 33 is filed in pages
 * of this many (≈ 0.3–0.5 s each on a loaded host at ≈ 5–7 µs a record), a relink waiting for at most one of them.
 */
const DISCLOSURES_PER_PAGE = 16 * DISCLOSURES_PER_INDEX;

/** How long the disclosure indexer waits for the transactions that may hold ids below its mark (#indexDisclosures). */
const DISCLOSURE_INDEX_WAIT_MS = 30_000;

/**
 * Files the disclosure records with ids in (from, to] under their residents (migration 34) and moves the mark to
 * `to`, in `c`'s transaction, which holds the mark's row or the table: one row per resident and DISCLOSURES_PER_INDEX
 * ids, sorted by resident so the index takes its entries in key order.
 */
async function indexDisclosureRange(c: ClientBase, from: number, to: number): Promise<void> {
  await c.query(
    `INSERT INTO disclosures_by_resident (resident_code, newest, ids)
     SELECT resident_code, max(id), array_agg(id ORDER BY id) FROM disclosures
     WHERE id > $1 AND id <= $2 AND resident_code IS NOT NULL GROUP BY resident_code, (id - $1 - 1) / ${DISCLOSURES_PER_INDEX} ORDER BY resident_code`,
    [from, to],
  );
  await c.query("UPDATE disclosure_index_state SET indexed_through = $1 WHERE id = 1", [to]);
}

/** Entries per log block written by migration 7 and by a load (later blocks hold what one transaction revoked). */
const MIGRATION_BLOCK = 10_000;

async function migration7(c: ClientBase): Promise<void> {
  await c.query(`
  CREATE TABLE revocation_log (
    id bigserial PRIMARY KEY,
    ca_id text COLLATE "C" NOT NULL,
    entries integer NOT NULL,
    min_not_after bigint NOT NULL,
    der bytea NOT NULL,
    meta bytea NOT NULL
  );
  CREATE INDEX revocation_log_ca ON revocation_log (ca_id, id);
  -- Stored out of line uncompressed, as SQLite stores them: a CRL reads every byte of its CA's blocks, and
  -- decompressing them (pglz) made reading 1,000,000 entries 1.35× slower; compressed they took 21 MB, not 56.
  ALTER TABLE revocation_log ALTER COLUMN der SET STORAGE EXTERNAL, ALTER COLUMN meta SET STORAGE EXTERNAL;
  `);
  // The existing revocations become the first blocks, per CA in serial order: the order CRLs listed them in,
  // so the first CRL after the upgrade lists exactly what the last one before it did.
  const blocks = new RevocationBlocks();
  for (let after: [string, string] = ["", ""]; ; ) {
    const rows = (
      await c.query<{ ca_id: string; serial: string; revoked_at: bigint; reason: number | null; not_after: bigint; municipality_code: string }>(
        `SELECT ca_id, serial, revoked_at, reason, not_after, municipality_code FROM certificates
         WHERE revoked_at IS NOT NULL AND (ca_id, serial) > ($1, $2) ORDER BY ca_id, serial LIMIT ${MIGRATION_BLOCK}`,
        after,
      )
    ).rows;
    let ca = rows[0]?.ca_id;
    for (const r of rows) {
      if (r.ca_id !== ca) (await appendBlocks(c, blocks.take(), SCHEMA_7), (ca = r.ca_id));
      blocks.add(r.ca_id, r.serial, Number(r.revoked_at), r.reason ?? 0, Number(r.not_after), r.municipality_code);
    }
    await appendBlocks(c, blocks.take(), SCHEMA_7);
    if (rows.length < MIGRATION_BLOCK) break;
    const last = rows[rows.length - 1]!;
    after = [last.ca_id, last.serial];
  }
}

/** appendBlocks into the revocation log of schema 7 to 29 (migration 7's fill). */
const SCHEMA_7 = 7;
const APPEND_LOG_SCHEMA_7 = `INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta)
    SELECT u.ca, u.entries, u.min_not_after, substring($4::bytea FROM u.der_at FOR u.der_len), substring($7::bytea FROM u.meta_at FOR u.meta_len)
    FROM unnest($1::text[], $2::int[], $3::bigint[], $5::int[], $6::int[], $8::int[], $9::int[]) WITH ORDINALITY
      AS u(ca, entries, min_not_after, der_at, der_len, meta_at, meta_len, n)
    ORDER BY u.n`;

/**
 * Appends log blocks in one INSERT, in the order given (ids from the sequence, ascending within the statement).
 * Every block's DER and metadata travel back to back in two binary parameters, cut apart by offset in the server
 * (packed): a bytea[] parameter would travel as hex text. (Not a COPY: the ids must follow the order given.)
 */
async function appendBlocks(c: ClientBase, blocks: readonly RevocationBlock[], schema?: typeof SCHEMA_7): Promise<void> {
  if (!blocks.length) return;
  await c.query({
    // Migration 7 fills the log as its table stood then (no digest column before 30): its own statement, unnamed.
    ...(schema === SCHEMA_7 ? { text: APPEND_LOG_SCHEMA_7 } : { name: "jpki_append_revocation_log", text: SQL.appendRevocationLog }),
    values: [blocks.map((b) => b.caId), blocks.map((b) => b.entries), blocks.map((b) => b.minNotAfter), ...packed(blocks.map((b) => b.der)), ...packed(blocks.map((b) => b.meta))],
  });
}

/**
 * Byte strings as one binary parameter with where each starts (from 1, as SQL's substring counts) and its
 * length: the server cuts them apart with `substring($n FROM off FOR len)`. A bytea[] parameter would travel
 * as hex text (node-postgres sends arrays as text): twice the bytes, encoded in node and decoded in the server.
 */
function packed(parts: readonly Buffer[]): [bytes: Buffer, offsets: number[], lengths: number[]] {
  const offsets: number[] = [];
  let at = 1;
  for (const p of parts) {
    offsets.push(at);
    at += p.length;
  }
  return [Buffer.concat(parts), offsets, parts.map((p) => p.length)];
}

const COPY_CERTIFICATES = `COPY certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender,
  not_before, not_after, issued_at, der, application_id, certified_key, registry_sequence) FROM STDIN (FORMAT binary)`;

/** Issued certificates as COPY_CERTIFICATES's rows (exported for its test: postgres-rows.test.ts). */
export function certificateRows(records: readonly IssuanceRecord[], keys: ReadonlyMap<IssuanceRecord, Buffer | null>): Buffer {
  // Room for every row from the start: each DER, the name and address at three octets of UTF-8 per UTF-16 unit
  // (what BinaryRows reserves for a text), and the other fields well within the rest. The flat 1,600 per row
  // it had was short of a row of a 1.4 KB certificate, so the buffer grew once per group commit: a copy of
  // the rows so far into a fresh buffer twice the size, each of its pages a page fault.
  let size = 0;
  for (const x of records) size += x.der.length + 3 * (x.fourItems.name.length + x.fourItems.address.length) + 768;
  const w = new BinaryRows(size);
  for (const x of records) {
    const key = keys.get(x);
    w.row(16).text(x.serial).text(x.caId).text(x.type).text(x.residentCode).text(x.municipalityCode);
    w.text(x.fourItems.name).text(x.fourItems.address).text(x.fourItems.birthDate).text(x.fourItems.gender);
    w.int8(x.notBefore.getTime()).int8(x.notAfter.getTime()).int8(x.issuedAt.getTime()).bytea(x.der).textOrNull(x.applicationId);
    // never NULL: the writer guard (migration 29) takes NULL for an older jpki's row
    w.bytea(key ?? NO_CERTIFIED_KEY);
    if (x.registrySequence === undefined) w.null();
    else w.int8(x.registrySequence);
  }
  return w.end();
}

const COPY_REGISTRY_ISSUANCES = `COPY registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after)
  FROM STDIN (FORMAT binary)`;

/** The 発行情報 of issued certificates as COPY_REGISTRY_ISSUANCES's rows. */
function registryIssuanceRows(records: readonly IssuanceRecord[]): Buffer {
  const w = new BinaryRows(records.length * 300);
  for (const x of records) {
    w.row(10).text(x.serial).text(x.residentCode).text(x.caId).text(x.type);
    w.text(x.fourItems.name).text(x.fourItems.address).text(x.fourItems.birthDate).text(x.fourItems.gender);
    w.int8(x.notBefore.getTime()).int8(x.notAfter.getTime());
  }
  return w.end();
}

/** Runs a binary COPY … FROM STDIN on the caller's connection (in its transaction). */
async function copyIn(c: ClientBase, text: string, rows: Buffer): Promise<number> {
  const q = new CopyIn(text, rows);
  c.query(q);
  return q.done;
}

function toRetiredCaId(r: Record<string, unknown>): RetiredCaIdRecord {
  return { id: r.id as string, retiredAt: new Date(Number(r.retired_at)), reason: r.reason as string };
}

/** ERR_CA_RETIRED when `id` was retired (Store.retireCaIds), in the caller's transaction. */
async function assertNotRetired(c: ClientBase, id: string): Promise<void> {
  const r = await c.query<{ reason: string }>("SELECT reason FROM retired_ca_ids WHERE id = $1", [id]);
  if (r.rowCount) throw new JpkiError("ERR_CA_RETIRED", retiredMessage(id, r.rows[0]!.reason), { details: { caId: id } });
}

export const PG_SCHEMA_VERSION = PG_MIGRATIONS.length;

/** Silence on a connection before TCP keepalive probes start (ms): Node's default, 0, leaves the kernel's two hours. */
const KEEPALIVE_DELAY_MS = 10_000;

/**
 * How long close() waits for the connections still checked out before it cuts them (and again after). Whatever a
 * command or server had to do is done or given up by then: a connection still out at close is a statement the
 * server has not answered.
 */
const CLOSE_WAIT_MS = 2_000;

/**
 * The meta key of a store that `load` filled and no `confirmLoad` has confirmed yet: the load commits before the
 * copy is read back, so a copy stopped between the two (killed, its connection lost, a mismatch) leaves a store
 * that looks complete. Refused for use; replaced by the next load.
 */
export const UNVERIFIED_COPY = "unverified_copy";

/**
 * What a store marked {@link UNVERIFIED_COPY} answers (`mark`: the mark's value, the load's time first); also a
 * backup's dump that finds the mark in its snapshot (backup/postgres-tools.ts).
 */
export function unverifiedCopy(mark: string): JpkiError {
  return new JpkiError(
    "ERR_WORKSPACE_CORRUPT",
    `the PostgreSQL database holds a store copy that was never verified (a 'jpki store copy' into it stopped on ${mark.split(" ")[0]}): run the copy again, which replaces it, or drop the database`,
    { details: { reason: "unverified-copy" } },
  );
}


/**
 * What a store marked {@link RESTORE_PENDING} answers, naming the backup so the operator can run the restore again;
 * also a backup's dump that finds the mark in its snapshot (backup/postgres-tools.ts).
 */
export function restoreIncomplete(note: string): JpkiError {
  let source = "the backup";
  let at = "";
  try {
    const v = JSON.parse(note) as { source?: unknown; startedAt?: unknown };
    if (typeof v.source === "string") source = v.source;
    if (typeof v.startedAt === "string") at = ` (started ${v.startedAt})`;
  } catch {
    // a note in another form: the general advice stands
  }
  return new JpkiError(
    "ERR_WORKSPACE_CORRUPT",
    `a restore of ${source} into this PostgreSQL database did not finish${at}: its CRL numbering and liveness-check ids are still the backup's, below those published since, so no jpki process may use it. Run 'jpki restore ${source} --force' again, which completes it`,
    { details: { reason: "restore-incomplete" } },
  );
}

/** Audit records per page read (auditRecords). */
const AUDIT_PAGE = 500;

/**
 * The cache of disclosures' id sequence (no row before the table exists). The per-resident index's mark
 * (#indexDisclosures) relies on ids handed out one at a time, bigserial's CACHE 1: with a cache, a session holds ids
 * it draws later, below a mark another moved past them, and the resident's view would miss those records for good.
 */
const DISCLOSURE_SEQUENCE_CACHE = "SELECT seqcache AS disclosure_sequence_cache FROM pg_sequence WHERE seqrelid = to_regclass('disclosures_id_seq')";

/**
 * PostgresStore.open's first message: the migration lock, then meta as the full open reads it (only when the table
 * is ours: text columns key and value), and the disclosure sequence's cache (checkDisclosureSequenceCache), sent as one simple-protocol Query. PostgreSQL runs a message's statements as
 * one transaction and, in READ COMMITTED (every session of the store's, READ_COMMITTED_OPTION, whatever the database's
 * default), gives each its own snapshot: meta is read after the lock is granted, as the
 * full open reads it, and the lock goes when the message ends. One round trip where the full open takes six (BEGIN,
 * the lock, three reads, COMMIT): ≈ 10–40 ms of every PostgreSQL command on a loaded host.
 */
const OPEN_READ = `SELECT pg_advisory_xact_lock(${MIGRATION_LOCK}, 0) AS migration_lock;
  SELECT key, value FROM meta WHERE (SELECT count(*) FROM pg_attribute WHERE attrelid = 'meta'::regclass AND attname IN ('key', 'value') AND atttypid = 'text'::regtype AND NOT attisdropped) = 2;
  ${DISCLOSURE_SEQUENCE_CACHE}`;

/**
 * Refuses a store whose disclosure id sequence an operator gave a cache (ALTER SEQUENCE … CACHE n): the open says
 * which statement puts it back. `cache` is DISCLOSURE_SEQUENCE_CACHE's answer (undefined: no such sequence).
 */
function checkDisclosureSequenceCache(cache: bigint | number | string | undefined): void {
  if (cache === undefined || Number(cache) <= 1) return;
  throw new JpkiError(
    "ERR_WORKSPACE_CORRUPT",
    `the PostgreSQL store's sequence disclosures_id_seq has CACHE ${Number(cache)}; the disclosure log's per-resident index relies on ids handed out one at a time: run 'ALTER SEQUENCE disclosures_id_seq CACHE 1' as the tables' owner, then start jpki again`,
    { details: { reason: "disclosure-sequence-cache", cache: Number(cache) } },
  );
}

/**
 * Whether the store opens as it is, read in one round trip (OPEN_READ): a jpki store at this jpki's schema version
 * with no mark that refuses this opener — exactly the stores on which the full open would change nothing and
 * succeed. Anything else (no meta, another application's, an older or newer version, a mark) is false, and the full
 * open then decides under the lock as before: it migrates, refuses with its own error, or creates.
 *
 * A lock wait past lock_timeout fails as the full open's does: on the migration lock, as an upgrade in progress; on
 * meta itself (a load holds it exclusively), as the store's generic ERR_WORKSPACE_LOCKED. Which of the two waited is
 * told by the lock statement's row, received only once the lock is granted.
 */
async function opensAsIs(c: ClientBase, opts: Pick<PostgresStoreOptions, "loadTarget" | "restoring">): Promise<boolean> {
  const { Query } = loadPg();
  const q = new Query(OPEN_READ);
  let locked = false;
  const meta = new Map<string, string>();
  let cache: string | undefined;
  q.on("row", (row: Record<string, string>) => {
    if ("migration_lock" in row) locked = true;
    else if ("disclosure_sequence_cache" in row) cache = row.disclosure_sequence_cache;
    else meta.set(row.key!, row.value!);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      q.once("end", () => resolve());
      q.once("error", reject);
      c.query(q);
    });
  } catch (e) {
    if (pgCode(e) === PG.lockNotAvailable && !locked) throw upgradeInProgress(undefined, PG_SCHEMA_VERSION, safeCause(e));
    // no table meta, or one without those columns, or none we may read: the full open reads the same and says what it is
    if (isServerError(e) && pgCode(e).startsWith("42")) return false;
    throw e;
  }
  const asIs =
    meta.get("application") === "jpki" &&
    Number(meta.get("schema_version") ?? 0) === PG_SCHEMA_VERSION &&
    (!meta.has(UNVERIFIED_COPY) || opts.loadTarget === true) &&
    (!meta.has(RESTORE_PENDING) || opts.restoring === true);
  if (asIs) checkDisclosureSequenceCache(cache);
  return asIs;
}

/**
 * A stop during PostgresStore.open: `during` runs one wait on the server (connecting, the migration lock) and a
 * stop that comes meanwhile, or came before it, calls its `end` (pg-stop.ts), after which the open rejects with the
 * signal's reason instead of the error the ended wait gave. Outside those waits a stop is left to the caller.
 */
class OpenStop {
  readonly #signal: AbortSignal | undefined;
  #end: (() => void) | undefined;
  #ended = false;
  /** the CancelRequest sent for a lock wait, awaited before the open rejects: the process may exit right after */
  cancelling: Promise<void> | undefined;
  readonly #onAbort = () => {
    if (!this.#end) return;
    this.#ended = true;
    this.#end();
  };

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
    signal?.addEventListener("abort", this.#onAbort);
  }

  /** whether a stop ended a wait: the open's failure is the stop */
  get ended(): boolean {
    return this.#ended;
  }

  get reason(): unknown {
    return this.#signal?.reason;
  }

  async during<T>(end: () => void, wait: () => Promise<T>): Promise<T> {
    if (this.#signal?.aborted) {
      this.#ended = true;
      throw this.#signal.reason;
    }
    this.#end = end;
    try {
      return await wait();
    } finally {
      this.#end = undefined;
    }
  }

  done(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

export interface PostgresStoreOptions {
  /** create the schema in an empty database (otherwise an empty database is refused) */
  readonly create?: boolean;
  /**
   * opened as a store copy's target (copy.ts): a store holding a copy that was loaded but never verified
   * ({@link UNVERIFIED_COPY}) opens, for `load` to replace; otherwise it is refused
   */
  readonly loadTarget?: boolean;
  /**
   * opened by the restore that put the store back (backup/restore.ts): a store marked {@link RESTORE_PENDING}
   * opens, for the restore to move its numbering on and {@link PostgresStore.finishRestore}; otherwise it is refused
   */
  readonly restoring?: boolean;
  /** how long a transaction waits for a lock before ERR_WORKSPACE_LOCKED (default 20 s, as SQLite's busy timeout) */
  readonly lockTimeoutMs?: number;
  /** the most resident codes a transaction locks one by one; a larger one locks the whole resident side (default 64) */
  readonly maxResidentLocks?: number;
  /** connections per store (default 10) */
  readonly poolSize?: number;
  /**
   * how long one connection may take to be established and logged in before ERR_STORE_UNREACHABLE (default: the
   * connection string's connect_timeout or PGCONNECT_TIMEOUT in seconds, as libpq reads them, else 15 s). Without
   * it a server that accepts the connection and never answers (a hung host, a wrong port behind a firewall
   * that holds it open) would hang every command.
   */
  readonly connectTimeoutMs?: number;
  /** how long after losing it (the server restarted) holdPresence's connection is opened again, ms (default 5000) */
  readonly presenceRetryMs?: number;
  /**
   * Called each time holdPresence's connection has ended, with whether it is to be opened again (false once the
   * store is closed): for a test to wait on that decision instead of a pause; nothing in jpki sets it.
   */
  readonly onPresenceEnded?: (reopening: boolean) => void;
  /**
   * Called as the store makes each connection to the server (the pool's, holdPresence's, a session lock's), just
   * before it connects: for a test to see an attempt made, or none, without a pause; nothing in jpki sets it.
   */
  readonly onConnecting?: () => void;
  /** how long close() waits for connections still checked out before it cuts them, ms (default CLOSE_WAIT_MS; tests shorten it) */
  readonly closeWaitMs?: number;
  /** progress of an upgrade that fills a column for every certificate (store/upgrade.ts) */
  readonly upgrade?: UpgradeOptions;
  /**
   * A stop (a daemon's SIGTERM): while the open waits on the server — connecting, or on another process's
   * upgrade (the migration lock) — it ends that wait and rejects with the signal's reason, at once rather than
   * after the connect timeout or lockTimeoutMs. Once the lock is held the open runs to its end (see open), but for
   * a fill of a column, which the stop ends between two committed pages (the next open goes on from there).
   */
  readonly signal?: AbortSignal;
}

export { parsePostgresUrl } from "./postgres-url.js";

/** The connect timeout of a connection string: libpq's connect_timeout (seconds), then PGCONNECT_TIMEOUT, else 15 s. */
export function connectTimeoutOf(connectionString: string, env: NodeJS.ProcessEnv = process.env): number {
  // node-postgres reports a malformed string
  const fromUrl = parsePostgresUrl(connectionString)?.url.searchParams.get("connect_timeout") ?? null;
  for (const v of [fromUrl, env.PGCONNECT_TIMEOUT]) {
    const n = v === null || v === undefined || v.trim() === "" ? NaN : Number(v);
    // libpq: 0 or negative waits forever; we keep a bound and take it as the default instead
    if (Number.isFinite(n) && n > 0) return Math.max(2, n) * 1000; // libpq, too, never waits less than 2 s
  }
  return 15_000;
}

let pgModule: typeof import("pg") | undefined;

/**
 * node-postgres in one file (bin/bundle.cjs PG_BUNDLE), when this module runs from the start-up bundle, which holds
 * it beside its chunks: ≈ 10 ms of a PostgreSQL command's start-up less than its 32 files from node_modules. From
 * dist/src (the library, the tests) there is none, and pg comes from node_modules.
 */
function bundledPg(load: NodeJS.Require): string | undefined {
  try {
    return load.resolve("./pg.cjs");
  } catch {
    return undefined;
  }
}

/**
 * node-postgres, loaded once. Its load probes for Cloudflare Workers (lib/stream.js): without a global
 * `navigator` (Node 20 has none; 21 and later do) it constructs a fetch Response, which loads undici — about
 * 18 ms of every PostgreSQL command's start-up, a tenth of `jpki crl generate`'s fixed cost. A navigator
 * stand-in answers the probe during the load. The load is a synchronous require, so no other code of the
 * process runs while the stand-in exists (an asynchronous import would let other tasks see it).
 */
function loadPg(): typeof import("pg") {
  if (pgModule) return pgModule;
  const g = globalThis as { navigator?: unknown };
  const standIn = g.navigator === undefined;
  if (standIn) Object.defineProperty(g, "navigator", { value: { userAgent: "Node.js" }, configurable: true, writable: true });
  try {
    const load = createRequire(import.meta.url);
    pgModule = load(bundledPg(load) ?? "pg") as typeof import("pg");
  } finally {
    if (standIn) delete g.navigator;
  }
  return pgModule;
}

/**
 * The startup option that makes READ COMMITTED every session's default isolation, whatever the database's or role's
 * default_transaction_isolation (a DBA's `ALTER DATABASE … SET default_transaction_isolation = 'repeatable read'`).
 * The store's single-message transactions read after waiting on a lock and count on a snapshot taken after the
 * wait, which only READ COMMITTED gives (a repeatable-read snapshot is the first statement's, taken before it
 * waits): the open's one message (OPEN_READ: the migration lock, then meta), a CRL reservation (jpki_crl_reserve:
 * the CA's crl_state row, then its highest number) and a disclosure group (its audit-head UPDATE re-reads the head
 * another group moved, where repeatable read fails it as a serialization failure). They are one statement or one
 * message so as to cost one round trip; a BEGIN ISOLATION LEVEL around each would cost two more, and a SET SESSION
 * CHARACTERISTICS after connecting one more per connection (a command opens one), where the startup packet costs
 * none. Transactions that begin explicitly name their level too (#tx, the open's full path, a fill's pages).
 */
const READ_COMMITTED_OPTION = "-c default_transaction_isolation=read\\ committed";

/**
 * Adds {@link READ_COMMITTED_OPTION} after the options `c` was given (the connection string's `options`, else
 * PGOPTIONS, as node-postgres resolved them): the last -c of a setting is the one the server keeps. Set on pg's
 * resolved parameters, read when the client connects: the connection string's own `options` would replace one
 * passed beside it in the config.
 */
function readCommittedByDefault(c: import("pg").Client): void {
  const params = (c as unknown as { connectionParameters?: { options?: string } }).connectionParameters;
  if (typeof params !== "object") throw new JpkiError("ERR_INTERNAL", "node-postgres has no connectionParameters: the store cannot set its sessions' isolation");
  params.options = params.options ? `${params.options} ${READ_COMMITTED_OPTION}` : READ_COMMITTED_OPTION;
}

/** int8 as bigint: CRL numbers need all 64 bits; the other columns are converted with Number() where read. */
function int8AsBigint(types: typeof import("pg").types): CustomTypesConfig {
  return {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === types.builtins.INT8 && format !== "binary" ? (v: string) => BigInt(v) : types.getTypeParser(oid, format)) as typeof types.getTypeParser,
  };
}

/** The PostgreSQL error codes we act on. */
const PG = {
  uniqueViolation: "23505",
  lockNotAvailable: "55P03",
  deadlock: "40P01",
  serialization: "40001",
  noDatabase: "3D000",
  insufficientPrivilege: "42501",
  noActiveTransaction: "25P01",
} as const;

const DEADLOCK_RETRIES = 5;

function pgCode(e: unknown): string {
  return (e as { code?: unknown }).code?.toString() ?? "";
}

/** Why a connection could not be made or was lost: see {@link connectionFailure}. */
export type ConnectionFailure = "network" | "authentication" | "database" | "connection-limit";

/** Node's socket errors (on these system calls) that mean the server was not reached, or went away. */
const SOCKET_SYSCALLS = new Set(["connect", "getaddrinfo", "read", "write"]);
const NETWORK_ERRNOS = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOENT", "EACCES", "EPIPE"]);

/**
 * A failure to reach, log in to, or find the database named by the connection string — as opposed to a
 * failure of a statement. SQLSTATE classes 08 (connection exception), 28 (invalid authorization), 3D000
 * (no such database), 53300 (too many connections) and 57P01–57P03 (shutting down, starting up); Node's
 * socket errors; node-postgres's own messages when the server asks for a password it was not given or the
 * socket closes.
 */
function connectionFailure(e: unknown): ConnectionFailure | undefined {
  const code = pgCode(e);
  if (code === PG.noDatabase) return "database";
  if (code.startsWith("28")) return "authentication";
  if (code === "53300") return "connection-limit";
  if (code.startsWith("08") || /^57P0[123]$/.test(code)) return "network";
  // a socket's, not a file's (publishCrl's install() runs inside a transaction and may fail with ENOENT or EACCES)
  if (NETWORK_ERRNOS.has(code) && SOCKET_SYSCALLS.has((e as NodeJS.ErrnoException).syscall ?? "")) return "network";
  const message = (e as Error)?.message ?? "";
  if (!code && /^SASL: |password must be a string|password authentication/i.test(message)) return "authentication";
  // (the last: a statement on a client whose connection was lost while it was idle in our hands)
  if (!code && /^Connection terminated|connection timeout|^timeout expired|^Client has encountered a connection error/i.test(message)) return "network";
  return undefined;
}

const FAILURE_TEXT: Record<ConnectionFailure, string> = {
  network: "the PostgreSQL server cannot be reached",
  authentication: "the PostgreSQL server refused the login",
  database: "the PostgreSQL server has no such database",
  "connection-limit": "the PostgreSQL server has no connection free",
};
const FAILURE_HINT: Record<ConnectionFailure, string> = {
  network: "check the host, port or socket directory in JPKI_STORE and that the server is running",
  authentication: "check the user in JPKI_STORE and the password (PGPASSWORD or ~/.pgpass)",
  database: "create it (createdb) or fix the database name in JPKI_STORE",
  "connection-limit":
    "its max_connections, or the CONNECTION LIMIT of the role or database, is reached (each jpki process holds up to 10): end idle sessions (pg_stat_activity lists them), raise the limit, or run fewer jpki processes at once",
};

/**
 * The SQLSTATEs of a server that is there but stopping, crashed or starting: "cannot be reached, check the host"
 * sent the operator of a server restarted mid-command to look for a typo in JPKI_STORE.
 */
const SERVER_STATE_TEXT: Readonly<Record<string, { text: string; hint: string }>> = {
  "57P01": {
    text: "the PostgreSQL server ended the connection (57P01 admin_shutdown: it is shutting down, or an administrator ended the session)",
    hint: "run the command again once the server is up",
  },
  "57P02": {
    text: "the PostgreSQL server ended the connection (57P02 crash_shutdown: a server process crashed and the server is restarting)",
    hint: "run the command again once the server is up",
  },
  "57P03": {
    text: "the PostgreSQL server accepts no connection now (57P03 cannot_connect_now: it is starting up, shutting down or recovering)",
    hint: "run the command again once the server is up",
  },
};

/**
 * Server errors that a setting of the role or database causes, not jpki or the data: the setting named, and how
 * to lift it. Their server messages quote no value ("canceling statement due to statement timeout",
 * "terminating connection due to idle-in-transaction timeout") and are kept (MESSAGE_KEPT).
 */
function settingHint(e: ServerError): string | undefined {
  if (e.code === "57014" && /statement timeout/i.test(e.message)) {
    return "a statement_timeout set for the role or database ended a statement of jpki: lift it for jpki's role (ALTER ROLE … RESET statement_timeout, or ALTER DATABASE …) or raise it above jpki's longest statement";
  }
  if (e.code === "25P03") {
    return "idle_in_transaction_session_timeout, set for the role or database, is shorter than a pause jpki makes inside a transaction (signing a CRL, writing its file): lift it for jpki's role (ALTER ROLE … RESET idle_in_transaction_session_timeout, or ALTER DATABASE …)";
  }
  return undefined;
}

/**
 * The condition names (PostgreSQL's Appendix A) of the SQLSTATEs a store failure is likeliest to carry: the
 * code alone says little to an operator. Others are given by their code.
 */
const CONDITION_NAMES: Readonly<Record<string, string>> = {
  "22001": "string_data_right_truncation",
  "22003": "numeric_value_out_of_range",
  "22007": "invalid_datetime_format",
  "22008": "datetime_field_overflow",
  "22021": "character_not_in_repertoire",
  "22P02": "invalid_text_representation",
  "23502": "not_null_violation",
  "23503": "foreign_key_violation",
  "23505": "unique_violation",
  "23514": "check_violation",
  "23P01": "exclusion_violation",
  "25006": "read_only_sql_transaction",
  "40001": "serialization_failure",
  "40P01": "deadlock_detected",
  "42P01": "undefined_table",
  "42703": "undefined_column",
  "42883": "undefined_function",
  "53100": "disk_full",
  "53200": "out_of_memory",
  "54000": "program_limit_exceeded",
  "57014": "query_canceled",
  P0001: "raise_exception",
  XX000: "internal_error",
  XX001: "data_corrupted",
};

/**
 * SQLSTATEs whose server message is kept: 25006 is our retirement trigger's (it names where the workspace moved,
 * any password redacted) or the server's "cannot execute … in a read-only transaction"; 42501's name the object
 * ("permission denied for table crl_state"); 57014's and 25P03's name what ended the statement or session (a
 * timeout, a cancel request). None quotes a row value.
 */
const MESSAGE_KEPT = new Set(["25006", PG.insufficientPrivilege, "57014", "25P03"]);

/** An error report from the server (node-postgres's DatabaseError): a SQLSTATE and, for some, the objects involved. */
interface ServerError extends Error {
  readonly code: string;
  readonly severity: string;
  readonly constraint?: string;
  readonly table?: string;
  readonly column?: string;
}

function isServerError(e: unknown): e is ServerError {
  return e instanceof Error && typeof (e as { severity?: unknown }).severity === "string" && /^[0-9A-Z]{5}$/.test(pgCode(e));
}

/**
 * What may be told of a server error: its SQLSTATE and the names of the constraint, table and column (schema, not
 * data). Never its `detail` (`Key (resident_code)=(…) already exists`, `Failing row contains (…)` with the four
 * items), `where` (a COPY's line quotes the row) or, but for MESSAGE_KEPT, its message, which quotes values for
 * some SQLSTATEs (`value "…" is out of range for type integer`, `invalid input syntax for type date: "…"`).
 */
function serverErrorFields(e: ServerError): { code: string; constraint?: string; table?: string; column?: string } {
  const named = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const [constraint, table, column] = [named(e.constraint), named(e.table), named(e.column)];
  return { code: e.code, ...(constraint ? { constraint } : {}), ...(table ? { table } : {}), ...(column ? { column } : {}) };
}

function describeServerError(e: ServerError): string {
  if (MESSAGE_KEPT.has(e.code)) {
    const hint = settingHint(e);
    return `${e.message} (SQLSTATE ${e.code})${hint ? `: ${hint}` : ""}`;
  }
  const f = serverErrorFields(e);
  const name = CONDITION_NAMES[f.code];
  const on = [f.constraint && `constraint ${f.constraint}`, f.column && `column ${f.column}`, f.table && `table ${f.table}`].filter(Boolean);
  return `PostgreSQL error ${f.code}${name ? ` ${name}` : ""}${on.length ? ` on ${on.join(" of ")}` : ""} (the server's log has its full report)`;
}

/**
 * The cause a JpkiError keeps of a server error: its SQLSTATE, the objects it names and its stack frames, none of
 * its text. jpki prints no cause (the CLI writes the message, and --json the code, message and details, with
 * JPKI_DEBUG=1 too; `jpki serve` logs the message), but a library caller that logs a JpkiError with console.error
 * or util.inspect prints its cause with every field node-postgres gave it, `detail` and `where` among them.
 * Other errors (Node's, node-postgres's own) are kept as they are: they quote no row.
 */
function safeCause(e: unknown): unknown {
  if (!isServerError(e)) return e;
  const text = describeServerError(e);
  const c = Object.assign(new Error(text), serverErrorFields(e), { severity: e.severity });
  c.name = "PostgresServerError";
  const frames = (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l));
  c.stack = [`${c.name}: ${text}`, ...frames].join("\n");
  return c;
}

/** The server's error that ended a pooled session while it idled in our hands (see the pool's 'connect' listener). */
const SERVER_ENDED = new WeakMap<object, ServerError>();

/**
 * What a statement on `c` failed with, or, when that is node-postgres's own word for a connection already lost
 * ("Client has encountered a connection error and is not queryable", "Connection terminated"), the server's error
 * that ended it: a session ended by idle_in_transaction_session_timeout was "cannot be reached, check the host".
 */
function endedBy(c: object, e: unknown): unknown {
  return LET_GO.get(c) ?? (isServerError(e) ? e : (SERVER_ENDED.get(c) ?? e));
}

/** Connections closed because the watched call they were checked out for went late (PostgresStore #cutLate), with what their statements then fail with. */
const LET_GO = new WeakMap<object, JpkiError>();

/** How to untie a checked-out connection from the watched call it was taken for (#tie): done when it is released. */
const TIES = new WeakMap<object, () => void>();

/**
 * The failure of a call the watchdog declared late (store/watchdog.ts), as the store gives it up: `connection-closed`,
 * its connection was closed under a statement the server may still carry out (a write may commit); `not-sent`, a
 * connection came free only after the bound and nothing was sent. Its waiter had its ERR_STORE_UNRESPONSIVE already.
 */
function lateCallError(what: string, lateCall: "connection-closed" | "not-sent"): JpkiError {
  const how = lateCall === "not-sent" ? "nothing was sent" : "its connection was closed (what was sent on it may still be carried out by the server)";
  return new JpkiError("ERR_STORE_UNRESPONSIVE", `the store did not answer ${what} within the bound jpki serve waits for it: ${how}`, { details: { lateCall } });
}

/**
 * `failed`, the store's error for a statement that failed with `e` (the driver's), marked when the statement was
 * sent and its connection then lost before the server answered (write-outcome.ts): a write may have committed.
 * Not when the driver refused to send it on a connection it knew broken ("not queryable"), nor when the server
 * itself answered the statement with an error (a FATAL 57P01 ends the statement's transaction uncommitted).
 */
function lostAfterSending(e: unknown, failed: JpkiError): JpkiError {
  if (failed.code !== "ERR_STORE_UNREACHABLE" || isServerError(e) || /not queryable/.test((e as Error)?.message ?? "")) return failed;
  return new JpkiError(failed.code, `${failed.message} (the statement was sent before the connection was lost: the server may have carried it out)`, {
    cause: failed.cause,
    details: { ...failed.details, connectionLost: CONNECTION_LOST_AFTER_SENDING },
  });
}

function storeError(e: unknown, what: string): JpkiError {
  if (e instanceof JpkiError) return e;
  const code = pgCode(e);
  const cause = safeCause(e);
  if (code === PG.lockNotAvailable) {
    return new JpkiError("ERR_WORKSPACE_LOCKED", `the store is busy (another jpki process holds a lock) while ${what}: retry when it finishes`, { cause });
  }
  if (isPgWriterGuard(e)) return writerGuardRefused(what, cause);
  if (code === "ERR_INVALID_URL") {
    // node-postgres parses the string with URL; neither message nor cause may show it (it may hold a password)
    return new JpkiError("ERR_USAGE", "the PostgreSQL connection string is not a valid URL (postgres://user@host:port/db)");
  }
  if (code === PG.insufficientPrivilege) {
    // The role JPKI_STORE logs in as may not do what this command does: a grant is missing, or the store was
    // made by another role (PostgreSQL 15 gives no CREATE on schema public to anyone but its owner). The
    // server's message names the object ("permission denied for table crl_state") and holds no row values.
    return new JpkiError(
      "ERR_STORE_PERMISSION",
      `the PostgreSQL role in JPKI_STORE lacks a privilege while ${what}: ${(e as Error).message}: grant it to that role, or run jpki as the role that owns the jpki tables`,
      { cause, details: { code } },
    );
  }
  const failure = connectionFailure(e);
  if (failure) {
    // Our words only, and the SQLSTATE or socket error: the server's and Node's messages name hosts, users and
    // databases, which may be fine, but a message of ours never has to be checked for a password.
    const state = SERVER_STATE_TEXT[code];
    // node-postgres's own words carry no code: a server that accepted the connection and never answered (a hung
    // host, a port held open by a firewall) is told apart from one that closed it
    const how = code || (/connection timeout|^timeout expired/i.test((e as Error)?.message ?? "") ? "no answer within the connect timeout" : "connection closed");
    const message = state ? `${state.text} while ${what}: ${state.hint}` : `${FAILURE_TEXT[failure]} (${how}) while ${what}: ${FAILURE_HINT[failure]}`;
    return new JpkiError("ERR_STORE_UNREACHABLE", message, {
      cause,
      details: { reason: failure, ...(code ? { code } : {}) },
    });
  }
  if (isServerError(e)) {
    // Our words, the SQLSTATE and the names of what failed: see serverErrorFields for what the rest may quote.
    return new JpkiError("ERR_STORE", `store failure while ${what}: ${describeServerError(e)}`, { cause, details: serverErrorFields(e) });
  }
  // Node's or node-postgres's own (a file error inside a transaction, a pool already ended): they quote no row.
  return new JpkiError("ERR_STORE", `store failure while ${what}: ${(e as Error).message}`, { cause });
}

/**
 * A failure of a connection made outside a store (backup and restore's own sessions, backup/postgres-tools.ts) as
 * the store reports it: ERR_STORE_UNREACHABLE for a server gone or refusing, ERR_STORE for a statement.
 */
export function postgresError(e: unknown, what: string): JpkiError {
  return storeError(e, what);
}

/**
 * A lone connection outside any store (backup and restore's own session), made as the store makes its own: the
 * same connect timeout, so a server that accepts and never answers is ERR_STORE_UNREACHABLE instead of a hang, and
 * an 'error' listener, so a server that goes away while the connection idles (pg_dump runs meanwhile, a restart)
 * fails the next statement instead of ending the process with node-postgres's stack trace. `what` names the step in
 * a failure to connect.
 */
export async function connectLoneClient(connectionString: string, applicationName: string, what: string): Promise<Client> {
  const { Client } = loadPg();
  let client: Client;
  try {
    client = new Client({ connectionString, application_name: applicationName, connectionTimeoutMillis: connectTimeoutOf(connectionString) });
  } catch (e) {
    throw storeError(e, what);
  }
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw storeError(e, what);
  }
  return client;
}

/** Thrown inside a resident transaction when more codes must be locked than could be without risking a deadlock. */
class LockRestart extends Error {
  /** `exclusive`: start again with the "all residents" lock held exclusively (more keys than per-key locks allow) */
  constructor(readonly codes: readonly string[], readonly exclusive = false) {
    super("restart with more resident codes locked");
  }
}

/** The resident-code locks one transaction holds (see the header). */
class ResidentLocks {
  readonly #c: PoolClient;
  readonly #max: number;
  readonly #held = new Set<string>();
  #all = false;

  constructor(c: PoolClient, max: number) {
    this.#c = c;
    this.#max = max;
  }

  /** The locks taken first, waiting as long as it takes (in key order). */
  async acquire(codes: ReadonlySet<string>, exclusive = false): Promise<void> {
    if (exclusive || codes.size > this.#max) {
      await this.#c.query("SELECT pg_advisory_xact_lock($1, 0)", [ALL_RESIDENTS_LOCK]);
      this.#all = true;
      return;
    }
    await this.#c.query("SELECT pg_advisory_xact_lock_shared($1, 0)", [ALL_RESIDENTS_LOCK]);
    if (codes.size) await this.#c.query("SELECT jpki_lock_residents($1::text[])", [[...codes]]);
    for (const code of codes) this.#held.add(code);
  }

  /**
   * More codes, found while reading: taken without waiting unless nothing is held yet. When that fails, or
   * the set grows past the limit, the transaction starts again with them locked up front.
   */
  async extend(codes: Iterable<string>): Promise<void> {
    if (this.#all) return;
    const fresh = [...new Set(codes)].filter((c) => !this.#held.has(c));
    if (!fresh.length) return;
    if (this.#held.size + fresh.length > this.#max) throw new LockRestart(fresh);
    if (this.#held.size === 0) {
      await this.#c.query("SELECT jpki_lock_residents($1::text[])", [fresh]);
    } else {
      const r = await this.#c.query<{ ok: boolean }>("SELECT jpki_try_lock_residents($1::text[]) AS ok", [fresh]);
      if (!r.rows[0]!.ok) throw new LockRestart(fresh);
    }
    for (const code of fresh) this.#held.add(code);
  }

  /**
   * The public keys a commitIssuances certifies (rows.ts certifiedKeyOf), taken after the resident locks, in key
   * order: two transactions certifying one key for two residents hold different resident locks, and one must
   * see the other's certificate. Nothing to take while this transaction runs alone (the "all residents" lock
   * held exclusively: every commitIssuances takes it, shared, first); more keys than per-key locks allow start
   * the transaction again alone.
   */
  async lockKeys(keys: readonly Buffer[]): Promise<void> {
    if (this.#all || !keys.length) return;
    const ids = [...new Set(keys.map((k) => k.readInt32BE(0)))];
    if (ids.length > this.#max) throw new LockRestart([], true);
    await this.#c.query("SELECT jpki_lock_keys($1::int4[])", [int4Array(ids)]);
  }
}

interface ResidentRowDb extends ResidentRow {
  notice_sequence: bigint;
}

/** A certificate committed earlier in the same batch, as toCertRow would read it back. */
function committedRow(rec: IssuanceRecord): CertificateRow {
  return {
    serial: rec.serial,
    caId: rec.caId,
    type: rec.type,
    residentCode: rec.residentCode,
    municipalityCode: rec.municipalityCode,
    fourItems: { ...rec.fourItems },
    notBefore: rec.notBefore,
    notAfter: rec.notAfter,
    issuedAt: rec.issuedAt,
    der: rec.der,
    applicationId: rec.applicationId ?? undefined,
    ...(rec.registrySequence === undefined ? {} : { registrySequence: rec.registrySequence }),
    revocation: undefined,
  };
}

/**
 * A text[] as an SQL literal (array_in's syntax, every element quoted), for the statements that travel several to a
 * simple-protocol message, where nothing can be bound. A NUL would end the message's text there: refused.
 */
export function textArrayLiteral(values: readonly string[]): string {
  for (const v of values) if (v.includes("\0")) throw new JpkiError("ERR_INTERNAL", "a NUL character cannot be sent to PostgreSQL in a text value");
  return `${sqlLiteral(`{${values.map((v) => `"${v.replace(/[\\"]/g, "\\$&")}"`).join(",")}}`)}::text[]`;
}

interface NoticeContextReads {
  readonly held: NoticeRowDb[];
  readonly changes: Array<{ resident_code: string; body: string }>;
  readonly ids: Array<{ notice_id: string; status: NoticeStatus; body: string; received_at: string | number | bigint; applied_at: string | number | bigint | null }>;
  readonly seqs: Array<{ resident_code: string; last_sequence: bigint }>;
  /**
   * the unrevoked certificates with their row's ctid (as text), and a row with serial NULL for each code whose
   * every certificate is revoked
   */
  readonly certified: Array<
    Pick<CertRowDb, "resident_code"> & { serial: string | null; ca_id: string; type: CertRowDb["type"]; tid: string | null } & {
      name: string | null;
      address: string | null;
      birth_date: string | null;
      gender: string | null;
      registry_sequence: bigint | null;
    }
  >;
}

/**
 * A notice batch's context reads over `codes` and `ids` (array literals), as one message of five statements (the
 * results in this order): the held notices, the applied resident-code changes, the notices already stored under
 * the batch's ids, the CA side's sequences, and the certificates: the unrevoked ones (row-locked when committing: a
 * manual revocation cannot slip in between this read and the batch's own), then a row with serial NULL for each
 * code that had certificates but has none unrevoked. The codes that ever had a certificate are those two sets.
 * They were a statement of their own (SELECT DISTINCT resident_code … = ANY(codes)): an index descent for every
 * code of the batch, ≈ 4.9 ms of the server's CPU a 1,000-notice batch beside ≈ 9.0 for the certified rows (1M
 * residents, 100 batches captured from an ingest, replayed 3 times); together now ≈ 12.1 (≈ 11.3 without the
 * outer ORDER BY). The codes the certified rows name need no second look; the rest (new residents, those whose
 * every certificate is revoked: ≈ 5 % of a bench batch's codes) get one EXISTS probe each.
 * The four items only where a notice compares them (CertifiedRow): NULL, so never decoded, but on a signature
 * certificate.
 */
const noticeContextReads = Object.assign(
  (r: unknown): NoticeContextReads => {
    const [held, changes, ids, seqs, certified] = (r as Array<{ rows: unknown[] }>).map((x) => x.rows);
    return { held, changes, ids, seqs, certified } as unknown as NoticeContextReads;
  },
  {
    text: (codes: string, ids: string, lock: boolean): string =>
      [
        `SELECT * FROM notices WHERE status = 'held' AND resident_code = ANY(${codes}) ORDER BY resident_code, sequence`,
        `SELECT resident_code, body FROM notices WHERE kind = 'resident-code-change' AND status = 'applied' AND resident_code = ANY(${codes})`,
        `SELECT notice_id, status, body, received_at, applied_at FROM notices WHERE notice_id = ANY(${ids})`,
        `SELECT resident_code, last_sequence FROM resident_sequences WHERE resident_code = ANY(${codes})`,
        // The rows are locked in the order they always were (the CTE's ORDER BY under its FOR NO KEY UPDATE); the
        // outer ORDER BY gives the result that order too, the code-only rows (issued_at NULL) in among them.
        // issued_at orders the rows but is not sent: nothing here reads it, and an int8 in a text result is a
        // BigInt parsed per row (two a notice): ≈ 1.3 µs of our CPU a notice, a fifth of this message's (client
        // CPU of the message for 1,000 codes, 200k-resident store, 10 alternated rounds: 6.7 → 5.2 µs, medians).
        `WITH cert AS MATERIALIZED (
           SELECT serial, ca_id, type, resident_code, CASE WHEN type = 'signature' THEN name END AS name, CASE WHEN type = 'signature' THEN address END AS address,
             CASE WHEN type = 'signature' THEN birth_date END AS birth_date, CASE WHEN type = 'signature' THEN gender END AS gender, registry_sequence, issued_at,
             ctid::text AS tid
           FROM certificates WHERE revoked_at IS NULL AND resident_code = ANY(${codes}) ORDER BY resident_code, issued_at, serial${lock ? " FOR NO KEY UPDATE" : ""})
         SELECT serial, ca_id, type, resident_code, name, address, birth_date, gender, registry_sequence, tid FROM (
           SELECT serial, ca_id, type, resident_code, name, address, birth_date, gender, registry_sequence, issued_at, tid FROM cert
           UNION ALL
           SELECT NULL, NULL, NULL, x.code, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM unnest(${codes}) AS x(code)
           WHERE NOT EXISTS (SELECT FROM cert WHERE cert.resident_code = x.code) AND EXISTS (SELECT FROM certificates c WHERE c.resident_code = x.code)) AS r
         ORDER BY resident_code, issued_at, serial`,
      ].join(";\n"),
  },
);

/** Sorted, without repeats: the order in which row locks are taken. */
function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const SQL = {
  // Run as a named (prepared) statement: its columns are listed, so a column added later by a newer jpki's
  // migration cannot change the result type of a plan this process has cached.
  residentForIssuance: `SELECT r.resident_code, r.municipality_code, r.name, r.address, r.birth_date, r.gender, r.status, r.notice_sequence,
      r.successor_code, coalesce(s.last_sequence, 0) AS ca_sequence
    FROM residents r LEFT JOIN resident_sequences s ON s.resident_code = r.resident_code WHERE r.resident_code = ANY($1::text[])`,
  upsertResidents: `INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status, notice_sequence, successor_code)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])`,
  // Partitions (ca, municipality) a transaction revoked in: their revision goes up with it, in key order.
  bumpScopes: `INSERT INTO crl_scopes (ca_id, scope, revision) SELECT DISTINCT u.ca, u.m, 1 FROM unnest($1::text[], $2::text[]) AS u(ca, m) ORDER BY 1, 2
    ON CONFLICT (ca_id, scope) DO UPDATE SET revision = crl_scopes.revision + 1`,
  registerScopes: `INSERT INTO crl_scopes (ca_id, scope) SELECT DISTINCT u.ca, u.m FROM unnest($1::text[], $2::text[]) AS u(ca, m) ORDER BY 1, 2
    ON CONFLICT (ca_id, scope) DO NOTHING`,
  bumpRevisions: `INSERT INTO crl_state (ca_id, revision, published_revision) SELECT id, 1, 0 FROM unnest($1::text[]) AS id ORDER BY id
    ON CONFLICT (ca_id) DO UPDATE SET revision = crl_state.revision + 1`,
  // Dirty: revisions no CRL covers yet, or a reservation above the latest published number that never
  // finished (a run killed while installing its files leaves the DER and PEM to be replaced).
  dirty: `SELECT ca_id FROM crl_state WHERE revision > published_revision
    UNION
    SELECT c.ca_id FROM crls c WHERE c.state = 'reserved' AND c.scope = ''
      AND c.number > coalesce((SELECT max(p.number) FROM crls p WHERE p.ca_id = c.ca_id AND p.scope = '' AND p.state = 'published'), 0)
    ORDER BY 1`,
  listCas: "SELECT * FROM cas ORDER BY prefecture, purpose DESC, id",
  // $4 and $7 hold every block's DER and metadata back to back; $5/$6 and $8/$9 say where each starts (from 1)
  // and how long it is. Inserted in the order given (ORDER BY the ordinality), so the ids keep it.
  appendRevocationLog: `INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta, digest)
    SELECT u.ca, u.entries, u.min_not_after, substring($4::bytea FROM u.der_at FOR u.der_len), substring($7::bytea FROM u.meta_at FOR u.meta_len),
      sha256(substring($4::bytea FROM u.der_at FOR u.der_len))
    FROM unnest($1::text[], $2::int[], $3::bigint[], $5::int[], $6::int[], $8::int[], $9::int[]) WITH ORDINALITY
      AS u(ca, entries, min_not_after, der_at, der_len, meta_at, meta_len, n)
    ORDER BY u.n`,
} as const;

/**
 * A notice batch's writes after its revocations, in one statement (commitNoticeBatch): the revoked rows' log blocks
 * ($1–$9, as SQL.appendRevocationLog), the notices ($10 the time, $11–$17), the CA side's sequences ($18, $19) and
 * the revisions of the CAs it dirtied ($20, sorted: SQL.bumpRevisions). Data-modifying WITH parts each run once and
 * to completion, on four different tables, none reading another's rows; an empty array writes nothing.
 */
const NOTICE_BATCH_WRITES = `WITH
  log AS (
    INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta, digest)
    SELECT u.ca, u.entries, u.min_not_after, substring($4::bytea FROM u.der_at FOR u.der_len), substring($7::bytea FROM u.meta_at FOR u.meta_len),
      sha256(substring($4::bytea FROM u.der_at FOR u.der_len))
    FROM unnest($1::text[], $2::int[], $3::bigint[], $5::int[], $6::int[], $8::int[], $9::int[]) WITH ORDINALITY
      AS u(ca, entries, min_not_after, der_at, der_len, meta_at, meta_len, n)
    ORDER BY u.n
    RETURNING 1),
  put AS (
    INSERT INTO notices (notice_id, resident_code, sequence, kind, status, body, received_at, applied_at, revocations)
    SELECT u.id, u.code, u.seq, u.kind, u.status, u.body, $10::bigint, CASE WHEN u.status = 'applied' THEN $10::bigint END, u.revocations
    FROM unnest($11::text[], $12::text[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::int[]) AS u(id, code, seq, kind, status, body, revocations)
    ON CONFLICT (notice_id) DO UPDATE SET status = excluded.status, applied_at = excluded.applied_at, revocations = excluded.revocations
    WHERE notices.status = 'held'
    RETURNING 1),
  seqs AS (
    INSERT INTO resident_sequences (resident_code, last_sequence) SELECT * FROM unnest($18::text[], $19::bigint[])
    ON CONFLICT (resident_code) DO UPDATE SET last_sequence = greatest(resident_sequences.last_sequence, excluded.last_sequence)
    RETURNING 1),
  bumped AS (
    INSERT INTO crl_state (ca_id, revision, published_revision) SELECT id, 1, 0 FROM unnest($20::text[]) AS id ORDER BY id
    ON CONFLICT (ca_id) DO UPDATE SET revision = crl_state.revision + 1
    RETURNING 1)
  SELECT 1`;

/**
 * What a revoking UPDATE … FROM unnest(…) WITH ORDINALITY AS u(…, n) returns: the row's values as it set them,
 * and `n`, the revocation's place in the call, since RETURNING gives rows in no particular order.
 */
interface RegisteredRowDb {
  serial: string;
  resident_code: string;
  ca_id: string;
  type: CertificateType;
  name: string;
  address: string;
  birth_date: string;
  gender: string;
  not_before: bigint | string;
  not_after: bigint | string;
}

function toRegistered(r: RegisteredRowDb): RegisteredIssuance {
  return { serial: r.serial, caId: r.ca_id, type: r.type, residentCode: r.resident_code, fourItems: itemsOf(r), notBefore: new Date(Number(r.not_before)), notAfter: new Date(Number(r.not_after)) };
}

/** The registry side no longer holds a revoked certificate's 発行情報: removed in the revoking transaction. */
async function unregister(c: ClientBase, revoked: ReadonlyArray<{ readonly serial: string }>): Promise<void> {
  if (revoked.length) await c.query("DELETE FROM registry_issuances WHERE serial = ANY($1::text[])", [textArray(revoked.map((r) => r.serial))]);
}

const REVOKED_RETURNING = "u.n, c.serial, c.ca_id, c.municipality_code, c.not_after, c.revoked_at, c.reason";

/** The rows of REVOKE_BY_TID's parameters: $2 serials, $3 reasons, $4 sources, $5 ctids as text (or NULL), numbered. */
const TID_ROWS = "unnest($2::text[], $3::int[], $4::text[], $5::text[]::tid[]) WITH ORDINALITY AS u(serial, reason, source, tid, n)";

/**
 * The one revoking UPDATE every notice-batch form shares ($1 the revocation time, the rows `from`): a row is matched
 * on its serial and only while unrevoked, whatever else `narrow` adds.
 */
function revokingUpdate(from: string, ...narrow: string[]): string {
  return `UPDATE certificates c SET revoked_at = $1, reason = u.reason, revocation_source = u.source
    FROM ${from}
    WHERE ${[...narrow, "c.serial = u.serial", "c.revoked_at IS NULL"].join(" AND ")} RETURNING ${REVOKED_RETURNING}`;
}

/** Where a notice batch's context found an unrevoked certificate: its row's ctid (text) and the code it was under. */
interface CertifiedTid {
  readonly tid: string;
  readonly residentCode: string;
}

/**
 * A notice batch's revocations ($2 serials, $3 reasons, $4 sources, $5 each row's ctid as text or NULL), in one statement:
 * those with a ctid by it (a Tid Scan: one heap page a row), the rest by serial (the primary key). Each row is still
 * matched on its serial and only while unrevoked, so a ctid that no longer holds the certificate matches nothing.
 * The rows with a ctid are those the context read row-locked (FOR NO KEY UPDATE) in this transaction: no other
 * writer can have moved them since. By serial alone, the statement spent ≈ 43 % of its CPU descending the primary
 * key (perf, 1M residents: _bt_first and its buffer lookups), 9.0 ms of the server's CPU a 1,000-notice batch
 * against 5.8 by ctid (EXPLAIN ANALYZE over 100 captured batches, 3 rounds). The two parts never name the same
 * row: a serial is in one or the other, once (the caller keeps each serial's first mention).
 */
const REVOKE_BY_TID = `WITH by_tid AS (${revokingUpdate(TID_ROWS, "u.tid IS NOT NULL AND c.ctid = u.tid")}),
  by_serial AS (${revokingUpdate(TID_ROWS, "u.tid IS NULL")})
  SELECT * FROM by_tid UNION ALL SELECT * FROM by_serial`;

/** The fallback's revocations ($2 serials, $3 reasons, $4 sources, $5 each one's place in the batch), by serial. */
const REVOKE_BY_SERIAL = revokingUpdate("unnest($2::text[], $3::int[], $4::text[], $5::int8[]) AS u(serial, reason, source, n)");
interface RevokedRow {
  n: bigint;
  serial: string;
  ca_id: string;
  municipality_code: string;
  not_after: bigint;
  revoked_at: bigint;
  reason: number;
}

/**
 * Appends the revoked rows' CRL entries to the revocation log in the caller's transaction, one block per CA in
 * the order the call named them (as SQLite's log gets them), each with the values the row got.
 */
async function appendRevoked(c: ClientBase, rows: readonly RevokedRow[]): Promise<void> {
  await appendBlocks(c, revocationBlocksOf(rows));
}

/** The revocation log blocks of revoked rows: one per CA in the order the call named them (`n`). */
function revocationBlocksOf(rows: readonly RevokedRow[]): RevocationBlock[] {
  const blocks = new RevocationBlocks();
  for (const r of [...rows].sort((a, b) => (a.n < b.n ? -1 : a.n > b.n ? 1 : 0))) {
    blocks.add(r.ca_id, r.serial, Number(r.revoked_at), r.reason, Number(r.not_after), r.municipality_code);
  }
  return blocks.take();
}

/** A revocation log block as crlEntries reads it: its metadata only when it holds an expired certificate. */
export interface LogBlock {
  readonly id: bigint;
  readonly entries: number;
  readonly minNotAfter: number;
  readonly der: Buffer;
  readonly meta: Buffer | null;
}

/**
 * The total of what crlEntries lists of a CA, in its transaction's snapshot (the same rows the pages read):
 * octet_length of a stored bytea comes from its TOAST pointer, without reading the value; blocks holding a
 * certificate expired before the cutoff are read and counted as they will be listed.
 */
async function logTotal(c: ClientBase, caId: string, cutoff: number): Promise<EntriesTotal> {
  const whole = await c.query<{ bytes: string; count: string }>(
    "SELECT coalesce(sum(octet_length(der)), 0)::text AS bytes, coalesce(sum(entries), 0)::text AS count FROM revocation_log WHERE ca_id = $1 AND min_not_after >= $2",
    [caId, cutoff],
  );
  let totalBytes = Number(whole.rows[0]!.bytes);
  let totalCount = Number(whole.rows[0]!.count);
  for (let after = 0n; ; ) {
    const rows = await readLogPage(c, caId, cutoff, after, 16, { partialOnly: true });
    for (const r of rows) {
      const kept = blockEntries(r.der, r.entries, r.minNotAfter, r.meta, cutoff);
      if (kept) (totalBytes += kept.der.length), (totalCount += kept.count);
    }
    if (rows.length < 16) return { totalBytes, totalCount };
    after = rows[rows.length - 1]!.id;
  }
}

/**
 * logTotal from the heads knownBlockEntries read, in the same snapshot: their sizes and entry counts are the
 * octet_length(der) and entries logTotal sums, so only the blocks holding a certificate expired before the cutoff
 * are read (in pages of 16, as logTotal reads them) — none, usually, where logTotal took two round trips (its sums,
 * and a page that found no such block) on every `crl generate`.
 */
async function headsTotal(c: ClientBase, caId: string, cutoff: number, heads: readonly LogBlockHead[]): Promise<EntriesTotal> {
  let totalBytes = 0;
  let totalCount = 0;
  const partial: bigint[] = [];
  for (const h of heads) {
    if (h.minNotAfter >= cutoff) (totalBytes += h.length), (totalCount += h.entries);
    else partial.push(h.id);
  }
  for (let i = 0; i < partial.length; i += 16) {
    const ids = partial.slice(i, i + 16);
    const rows = await readLogBlocks(c, caId, cutoff, ids);
    if (rows.length !== ids.length) throw new JpkiError("ERR_STORE", `reading the revocation log: blocks of CA ${caId} are gone from the snapshot that listed them`);
    for (const r of rows) {
      const kept = blockEntries(r.der, r.entries, r.minNotAfter, r.meta, cutoff);
      if (kept) (totalBytes += kept.der.length), (totalCount += kept.count);
    }
  }
  return { totalBytes, totalCount };
}

/** A SQL string literal (standard_conforming_strings, PostgreSQL's default since 9.1): COPY takes no parameters. */
function sqlLiteral(v: string): string {
  return v.includes("\\") ? `E'${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'` : `'${v.replace(/'/g, "''")}'`;
}

/**
 * One page of a CA's revocation log (blocks after id `after`, at most `limit`), read by a binary COPY: the rows
 * come as CopyData messages, whose bytes node-postgres hands over untouched (unlike binary DataRow fields).
 */
async function readLogPage(c: ClientBase, caId: string, cutoff: number, after: bigint, limit: number, opts: { meta?: boolean; partialOnly?: boolean } = {}): Promise<LogBlock[]> {
  const meta = opts.meta ? "meta" : `CASE WHEN min_not_after < ${Math.trunc(cutoff)} THEN meta END`;
  const partial = opts.partialOnly ? ` AND min_not_after < ${Math.trunc(cutoff)}` : "";
  const sql = `COPY (SELECT id, entries, min_not_after, der, ${meta} FROM revocation_log
    WHERE ca_id = ${sqlLiteral(caId)} AND id > ${after}${partial} ORDER BY id LIMIT ${Math.trunc(limit)}) TO STDOUT (FORMAT binary)`;
  const out = new CopyOut(sql);
  c.query(out);
  return parseLogCopy(await out.done);
}

/**
 * The rows of a binary COPY of `columns` columns, from its CopyData chunks, each handed to `row` as its fields (null
 * for SQL NULL). Fields are sliced from the chunk holding them; one that straddles chunks (not what PostgreSQL
 * sends, but the protocol allows it) is joined from the pieces.
 */
function binaryCopyRows(chunks: readonly Buffer[], columns: number, row: (fields: ReadonlyArray<Buffer | null>) => void): void {
  const bad = (why: string) => new JpkiError("ERR_STORE", `reading the revocation log: unexpected COPY data (${why})`);
  let k = 0;
  let at = 0;
  const take = (n: number): Buffer => {
    while (k < chunks.length && at === chunks[k]!.length) (k++, (at = 0));
    const cur = chunks[k];
    if (!cur) throw bad("it ends early");
    if (at + n <= cur.length) {
      const v = cur.subarray(at, at + n);
      at += n;
      return v;
    }
    const parts: Buffer[] = [];
    for (let left = n; left > 0; ) {
      while (k < chunks.length && at === chunks[k]!.length) (k++, (at = 0));
      const c = chunks[k];
      if (!c) throw bad("it ends early");
      const m = Math.min(left, c.length - at);
      parts.push(c.subarray(at, at + m));
      at += m;
      left -= m;
    }
    return Buffer.concat(parts, n);
  };
  if (!take(11).equals(COPY_SIGNATURE)) throw bad("no binary COPY signature");
  take(4); // flags
  take(take(4).readUInt32BE(0)); // header extension
  const fields: Array<Buffer | null> = new Array(columns);
  for (;;) {
    const n = take(2).readInt16BE(0);
    if (n === -1) return;
    if (n !== columns) throw bad(`${n} columns`);
    for (let i = 0; i < columns; i++) {
      const len = take(4).readInt32BE(0);
      fields[i] = len < 0 ? null : take(len);
    }
    row(fields);
  }
}

/** The blocks of a binary COPY of (id int8, entries int4, min_not_after int8, der bytea, meta bytea or null). */
export function parseLogCopy(chunks: readonly Buffer[]): LogBlock[] {
  const out: LogBlock[] = [];
  binaryCopyRows(chunks, 5, ([id, entries, minNotAfter, der, meta]) => {
    if (!id || !entries || !minNotAfter || !der) throw new JpkiError("ERR_STORE", "reading the revocation log: unexpected COPY data (a null column)");
    out.push({ id: id.readBigInt64BE(0), entries: entries.readInt32BE(0), minNotAfter: Number(minNotAfter.readBigInt64BE(0)), der, meta: meta ?? null });
  });
  return out;
}

/** A revocation log block without its DER: what a CRL built from known blocks plans with (crlEntries' `known`). */
export interface LogBlockHead {
  readonly id: bigint;
  readonly entries: number;
  readonly minNotAfter: number;
  /** octet_length(der) */
  readonly length: number;
  /** SHA-256 of der, as stored when the block was appended or computed by the server (the DER does not cross the socket) */
  readonly digest: Buffer;
}

/** The heads of a binary COPY of (id int8, entries int4, min_not_after int8, length int4, digest bytea). */
export function parseHeadCopy(chunks: readonly Buffer[]): LogBlockHead[] {
  const out: LogBlockHead[] = [];
  binaryCopyRows(chunks, 5, ([id, entries, minNotAfter, length, digest]) => {
    if (!id || !entries || !minNotAfter || !length || !digest || digest.length !== 32) throw new JpkiError("ERR_STORE", "reading the revocation log: unexpected COPY data (a block head)");
    out.push({ id: id.readBigInt64BE(0), entries: entries.readInt32BE(0), minNotAfter: Number(minNotAfter.readBigInt64BE(0)), length: length.readInt32BE(0), digest: Buffer.from(digest) });
  });
  return out;
}

/** Every block of a CA's revocation log, in id order, without its DER (the heads of the known-blocks plan). */
async function readLogHeads(c: ClientBase, caId: string): Promise<LogBlockHead[]> {
  const out = new CopyOut(`COPY (SELECT id, entries, min_not_after, octet_length(der), coalesce(digest, sha256(der)) FROM revocation_log
    WHERE ca_id = ${sqlLiteral(caId)} ORDER BY id) TO STDOUT (FORMAT binary)`);
  c.query(out);
  return parseHeadCopy(await out.done);
}

/** The blocks `ids` of a CA's revocation log, in id order, with their metadata where one expired before `cutoff`. */
async function readLogBlocks(c: ClientBase, caId: string, cutoff: number, ids: readonly bigint[]): Promise<LogBlock[]> {
  const out = new CopyOut(`COPY (SELECT id, entries, min_not_after, der, CASE WHEN min_not_after < ${Math.trunc(cutoff)} THEN meta END FROM revocation_log
    WHERE ca_id = ${sqlLiteral(caId)} AND id = ANY('{${ids.join(",")}}'::int8[]) ORDER BY id) TO STDOUT (FORMAT binary)`);
  c.query(out);
  return parseLogCopy(await out.done);
}

/**
 * crlEntries given the blocks a publisher holds (store/types.ts KnownBlocks; crl/reuse.ts), in the caller's read-only
 * snapshot: the heads of every block first (ids, sizes, SHA-256s: a few bytes a block, the server hashing what it
 * keeps), then, in id order, each whole block the publisher holds and whose bytes hash as the server's do, and the
 * others read from the server in pages (the next one asked for while this one is handed out). A block holding a
 * certificate expired before the cut-off is always read (filtered entry by entry, as without `known`). Whole blocks
 * go out tagged with their id and digest, so the publisher can note where each lies in the CRL it writes.
 */
async function* knownBlockEntries(c: ClientBase, caId: string, cutoff: number, known: KnownBlocks, withTotal: boolean, fail: (e: unknown) => unknown): AsyncIterable<EncodedEntries | EntriesTotal> {
  const guard = <T>(p: Promise<T>): Promise<T> => {
    const q = p.catch((e: unknown) => Promise.reject(fail(e)));
    q.catch(() => undefined); // awaited later; until then a failure must not count as unhandled
    return q;
  };
  const heads = await guard(readLogHeads(c, caId));
  const held = heads.map((h) => h.minNotAfter >= cutoff && known.has(String(h.id), h.length));
  if (withTotal) {
    // Whole blocks count as stored; those holding an expired certificate as they will be listed (logTotal's rule).
    const t = await guard(headsTotal(c, caId, cutoff, heads));
    yield t;
  }
  // The blocks to read, in pages of about LOG_PAGE_ENTRIES entries.
  const pages: bigint[][] = [];
  let page: bigint[] = [];
  let pageEntries = 0;
  heads.forEach((h, i) => {
    if (held[i]) return;
    page.push(h.id);
    pageEntries += h.entries;
    if (pageEntries >= LOG_PAGE_ENTRIES || page.length >= LOG_PAGE_BLOCKS) (pages.push(page), (page = []), (pageEntries = 0));
  });
  if (page.length) pages.push(page);
  let p = 0;
  let next: Promise<LogBlock[]> | undefined = pages.length ? guard(readLogBlocks(c, caId, cutoff, pages[0]!)) : undefined;
  let current: LogBlock[] = [];
  let at = 0;
  let handedOut = 0;
  try {
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      const block = { id: String(h.id), digest: h.digest };
      if (held[i]) {
        const der = known.take(block.id, h.length, h.digest);
        if (der) {
          yield { der, count: h.entries, block };
          // The holder reads the previous CRL into fresh buffers too (crl/reuse.ts): collected as the pages are.
          handedOut += der.length;
          if (withTotal && handedOut >= STREAM_COLLECT_BYTES) (collectYoungGeneration(), (handedOut = 0));
          continue;
        }
        // Held but not as the server has it (the file changed since it was noted): read this one alone.
        const [r] = await guard(readLogBlocks(c, caId, cutoff, [h.id]));
        if (!r || r.id !== h.id) throw new JpkiError("ERR_STORE", `reading the revocation log: block ${h.id} of CA ${caId} is gone from the snapshot that listed it`);
        yield { der: r.der, count: r.entries, block };
        continue;
      }
      if (at === current.length) {
        if (!next) throw new JpkiError("ERR_STORE", `reading the revocation log: block ${h.id} of CA ${caId} was listed and not read`);
        current = await next;
        at = 0;
        p++;
        next = p < pages.length ? guard(readLogBlocks(c, caId, cutoff, pages[p]!)) : undefined;
      }
      const r = current[at++]!;
      if (r?.id !== h.id) throw new JpkiError("ERR_STORE", `reading the revocation log: block ${h.id} of CA ${caId} came back as ${r?.id}`);
      handedOut += r.der.length;
      if (h.minNotAfter >= cutoff) yield { der: r.der, count: r.entries, block };
      else {
        const kept = blockEntries(r.der, r.entries, r.minNotAfter, r.meta, cutoff);
        if (kept) yield kept;
      }
      // As crlEntries: once a few megabytes went to a streaming consumer, later pages reuse their memory.
      if (withTotal && handedOut >= STREAM_COLLECT_BYTES) (collectYoungGeneration(), (handedOut = 0));
    }
  } finally {
    // A page asked for and not taken (the consumer stopped early) is awaited before the caller's rollback.
    if (next) await next.catch(() => undefined);
  }
}

/** Bumps the revision of each partition (CA, municipality) these revoked certificates belong to. */
/** Store.markCrlsDue's writes (every scope of a CA due, no delta base left), inside the caller's transaction. */
async function markDue(c: ClientBase, caId: string): Promise<void> {
  await c.query("INSERT INTO crl_state (ca_id, revision, published_revision) VALUES ($1, 1, 0) ON CONFLICT (ca_id) DO UPDATE SET revision = crl_state.revision + 1", [caId]);
  await c.query("UPDATE crl_scopes SET revision = revision + 1 WHERE ca_id = $1", [caId]);
  // The ARL has no row until published through one; its file may be in place all the same.
  await c.query("INSERT INTO crl_scopes (ca_id, scope, revision) VALUES ($1, 'arl', 1) ON CONFLICT (ca_id, scope) DO NOTHING", [caId]);
  // No published full CRL stays a delta base: the next full CRL is due at once, not after crlBaseIntervalHours
  // of deltas on one that verifiers may have seen superseded (sqlite.ts markCrlsDue).
  await c.query("UPDATE crls SET delta_snapshot = NULL WHERE ca_id = $1 AND scope = '' AND delta_snapshot IS NOT NULL", [caId]);
}

async function bumpScopes(c: PoolClient, rows: ReadonlyArray<{ ca_id: string; municipality_code: string }>): Promise<void> {
  if (rows.length) await c.query(SQL.bumpScopes, [textArray(rows.map((r) => r.ca_id)), textArray(rows.map((r) => r.municipality_code))]);
}

/**
 * Entries a page of the revocation log aims at (≈ 2.9 MB), and the most blocks a page may have (crlEntries).
 * Measured at 1,000,000 entries: 16,384 a page took 1.3× as long (more statements, less overlap).
 */
const LOG_PAGE_ENTRIES = 65_536;
const LOG_PAGE_BLOCKS = 4096;

export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly #pool: Pool;
  /** the pool's connections checked out now (pg-pool's acquire/release): those close() cuts once they outlast its wait (CLOSE_WAIT_MS) */
  readonly #checkedOut = new Set<PoolClient>();
  /** connections checked out for watched calls declared late, oldest first, with what they were for: cut when the pool is full (#tie) */
  readonly #lateHeld = new Map<PoolClient, string>();
  readonly #maxLocks: number;
  #closed = false;
  /**
   * Issuance reads a resident before signing, outside any transaction (the commit reads it again under its
   * lock): concurrent reads share one query.
   */
  readonly #residentLookups = new Coalescer<ResidentForIssuance>(async (codes) => {
    const rows = await this.#query<ResidentRowDb & { ca_sequence: bigint }>("reading residents", { name: "jpki_resident_for_issuance", text: SQL.residentForIssuance }, [textArray(codes)]);
    return new Map(rows.map((r) => [r.resident_code, { record: toResident(r), registrySequence: Number(r.notice_sequence), caSequence: Number(r.ca_sequence) }]));
  });

  /**
   * The validation API reads each answered certificate's owner (POST /v1/validate, bench api): the answers of
   * one event-loop turn share one query, not a round trip each (≈ 280 µs of the serving thread per answer).
   */
  readonly #ownerLookups = new Coalescer<CertificateOwner & { serial: string }>(async (serials) => {
    const rows = await this.#query<{ serial: string; ca_id: string; resident_code: string; der: Buffer }>(
      "reading certificates' owners",
      { name: "jpki_certificate_owners", text: "SELECT serial, ca_id, resident_code, der FROM certificates WHERE serial = ANY($1::text[])" },
      [textArray(serials)],
    );
    return new Map(rows.map((r) => [r.serial, { serial: r.serial, caId: r.ca_id, residentCode: r.resident_code, der: r.der }]));
  });

  /** A connection outside the pool, for a session-level lock (withCaKeysLock), named `applicationName` in pg_stat_activity. */
  readonly #sessionClient: (applicationName: string) => Client;

  readonly #presenceRetryMs: number;

  readonly #onPresenceEnded: ((reopening: boolean) => void) | undefined;

  readonly #closeWaitMs: number;

  private constructor(pool: Pool, maxLocks: number, sessionClient: (applicationName: string) => Client, presenceRetryMs: number, closeWaitMs: number, onPresenceEnded?: (reopening: boolean) => void) {
    this.#pool = pool;
    pool.on("acquire", (c) => this.#checkedOut.add(c));
    pool.on("release", (_e, c) => {
      this.#checkedOut.delete(c);
      this.#lateHeld.delete(c);
      TIES.get(c)?.();
      TIES.delete(c);
    });
    this.#maxLocks = maxLocks;
    this.#sessionClient = sessionClient;
    this.#presenceRetryMs = presenceRetryMs;
    this.#onPresenceEnded = onPresenceEnded;
    this.#closeWaitMs = closeWaitMs;
  }

  /**
   * Connects and migrates. A database with tables that are not ours, or a jpki schema newer than this
   * jpki, is refused with ERR_WORKSPACE_CORRUPT rather than modified; an empty one only with `create`.
   */
  static async open(connectionString: string, opts: PostgresStoreOptions = {}): Promise<PostgresStore> {
    // A stop asked for already: not even a connection is made.
    opts.signal?.throwIfAborted();
    // Loaded here, not at import: pg probes its runtime when loaded, and only a PostgreSQL store needs it.
    const { Pool, Client, types } = loadPg();
    // The timeout goes to each Client, not to the Pool: the pool would also apply it to waiting for a free
    // connection, failing a busy store's queries that only queue behind a long CRL stream.
    const connectionTimeoutMillis = opts.connectTimeoutMs ?? connectTimeoutOf(connectionString);
    // The clients made while the open connects, for a stop to end their connecting (they are the pool's).
    let connecting: Client[] | undefined = [];
    class TimedClient extends Client {
      constructor(config?: ConstructorParameters<typeof Client>[0]) {
        super({ ...(typeof config === "object" ? config : {}), connectionTimeoutMillis });
        readCommittedByDefault(this);
        connecting?.push(this);
        opts.onConnecting?.();
      }
    }
    const stop = new OpenStop(opts.signal);
    const pool = new Pool({
      Client: TimedClient,
      connectionString,
      max: opts.poolSize ?? 10,
      lock_timeout: opts.lockTimeoutMs ?? 20_000,
      application_name: "jpki",
      types: int8AsBigint(types),
      // TCP keepalive from 10 s of silence: a statement in flight when the server's host vanishes (a power cut, a
      // partition; no FIN, no RST) otherwise waits for ever. The kernel's probes then end it (≈ 10 min with Linux's
      // defaults, tcp_keepalive_intvl × tcp_keepalive_probes) as an ERR_STORE_UNREACHABLE. Unix sockets ignore it.
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      // An idle connection does not hold the process: close() sends each its Terminate message, written at once, and a
      // command then exits without waiting for the server to end the backend and close the socket (≈ 14 ms of an
      // empty CA's `crl generate`, idle). A connection in use is held as before, and so is the process.
      allowExitOnIdle: true,
    });
    // An idle connection the server drops emits 'error' on the pool; the next query fails and reports it.
    pool.on("error", () => undefined);
    // A connection lost while checked out (its backend terminated, a failover) emits 'error' on the client
    // itself, and pg-pool removes its own listener while the client is out: with none, Node throws it as an
    // uncaught exception and the whole process dies with a stack trace, even between two statements of a
    // transaction that would have failed cleanly. The statement in flight, or the next one, fails with the
    // error and reports it (storeError: ERR_STORE_UNREACHABLE); the transaction's ROLLBACK then fails and the
    // client is released as broken.
    // The error is kept on the client: a session the server ended while it idled in our hands (FATAL 25P03 of
    // idle_in_transaction_session_timeout, 57P01 of a shutdown) fails its next statement with node-postgres's
    // "not queryable", and the report says why from the server's own error (endedBy).
    pool.on("connect", (client) => client.on("error", (e: unknown) => isServerError(e) && SERVER_ENDED.set(client, e)));
    const opened = () => {
      // keepAlive: a lock connection idles while its holder works on pooled ones; TCP keepalive finds a server gone meanwhile
      const sessionClient = (applicationName: string) => new TimedClient({ connectionString, application_name: applicationName, types: int8AsBigint(types), keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS });
      const store = new PostgresStore(pool, opts.maxResidentLocks ?? 64, sessionClient, opts.presenceRetryMs ?? 5000, opts.closeWaitMs ?? CLOSE_WAIT_MS, opts.onPresenceEnded);
      // tests span several pages of the disclosure log's catch-up with few records (UpgradeOptions.pageRows)
      if (opts.upgrade?.pageRows !== undefined) store.#indexPageIds = pageRowsOf(opts.upgrade);
      return store;
    };
    try {
      const c = await stop.during(
        () => connecting?.forEach(dropConnection),
        () => pool.connect(),
      );
      connecting = undefined;
      // Held for the session too while a migration fills a column in pages (runPgFill), each its own transaction.
      let sessionLocked = false;
      let broken: Error | undefined;
      try {
        // A stop ends a wait on the server (the server cancels it): the lock's, or a read's — nothing is written
        // before the lock is held, and the first message only reads.
        const endWait = () => {
          stop.cancelling = sendCancelRequest(c);
          dropConnection(c);
        };
        // The usual case, a store at this version, in one round trip; any other goes through the full open below.
        if (await stop.during(endWait, () => opensAsIs(c, opts))) return opened();
        // Two processes opening a new database at once: one migrates, the other then sees the result. One that
        // opens it while another upgrades waits here (lockTimeoutMs), and is told so if that is not enough.
        await stop.during(
          endWait,
          async () => {
            // READ COMMITTED named (as READ_COMMITTED_OPTION makes it anyway): meta is read after the lock's wait
            await c.query("BEGIN ISOLATION LEVEL READ COMMITTED");
            try {
              await c.query("SELECT pg_advisory_xact_lock($1, 0)", [MIGRATION_LOCK]);
            } catch (e) {
              if ((e as { code?: string }).code === PG.lockNotAvailable) throw upgradeInProgress(undefined, PG_SCHEMA_VERSION, safeCause(e));
              throw e;
            }
          },
        );
        // From here the open runs to its end, stopped or not: the migrations below commit together (a process
        // killed meanwhile leaves none of them), a fill's pages one by one with the mark it resumes from; a stop
        // ends a fill between two of its pages (runPgFill), and the next open goes on from the mark.
        const hasMeta = (await c.query<{ t: boolean }>("SELECT to_regclass('meta') IS NOT NULL AS t")).rows[0]!.t;
        let version = 0;
        if (hasMeta) {
          // Another application's table named meta: ours has text columns key and value (reading it as ours
          // would fail as a statement, ERR_STORE, instead of saying whose database this is).
          const ours = (
            await c.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'meta'::regclass AND attname IN ('key', 'value') AND atttypid = 'text'::regtype AND NOT attisdropped",
            )
          ).rows[0]!.n;
          if (ours !== 2) throw new JpkiError("ERR_WORKSPACE_CORRUPT", "the PostgreSQL database is not a jpki store: point the store elsewhere");
          const meta = new Map((await c.query<{ key: string; value: string }>("SELECT key, value FROM meta")).rows.map((r) => [r.key, r.value]));
          if (meta.get("application") !== "jpki") throw new JpkiError("ERR_WORKSPACE_CORRUPT", "the PostgreSQL database is not a jpki store: point the store elsewhere");
          version = Number(meta.get("schema_version") ?? 0);
          if (meta.has(UNVERIFIED_COPY) && !opts.loadTarget) throw unverifiedCopy(meta.get(UNVERIFIED_COPY)!);
          if (meta.has(RESTORE_PENDING) && !opts.restoring) throw restoreIncomplete(meta.get(RESTORE_PENDING)!);
        } else {
          const n = (await c.query<{ n: bigint }>("SELECT count(*) AS n FROM pg_class WHERE relnamespace = current_schema()::regnamespace")).rows[0]!.n;
          if (n > 0n) throw new JpkiError("ERR_WORKSPACE_CORRUPT", "the PostgreSQL schema has tables but is not a jpki store: point the store elsewhere");
          if (!opts.create) {
            throw new JpkiError("ERR_WORKSPACE_CORRUPT", "the PostgreSQL database is empty: run 'jpki ca init' to create the workspace", { details: { reason: "empty-database" } });
          }
        }
        if (version > PG_SCHEMA_VERSION) {
          throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the PostgreSQL store has schema version ${version}, newer than this jpki (${PG_SCHEMA_VERSION}): upgrade jpki`);
        }
        for (let v = version; v < PG_SCHEMA_VERSION; v++) {
          const m = PG_MIGRATIONS[v]!;
          if (typeof m === "string") await c.query(m);
          else if ("fill" in m) {
            if (!sessionLocked) {
              // Taken by this session, which holds it for its transaction already: granted at once, and kept over the
              // commits of the pages; PostgreSQL drops it with the session if this process dies.
              await c.query("SELECT pg_advisory_lock($1, 0)", [MIGRATION_LOCK]);
              sessionLocked = true;
            }
            await runPgFill(c, v, m.fill, opts.upgrade ?? {}, opts.signal);
          } else await m(c);
          await c.query(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [String(v + 1)],
          );
        }
        checkDisclosureSequenceCache((await c.query<{ disclosure_sequence_cache: bigint }>(DISCLOSURE_SEQUENCE_CACHE)).rows[0]?.disclosure_sequence_cache);
        await c.query("COMMIT");
      } catch (e) {
        await c.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        if (sessionLocked) await c.query("SELECT pg_advisory_unlock($1, 0)", [MIGRATION_LOCK]).catch((e: Error) => (broken = e));
        // a connection whose unlock failed is closed, which drops the lock
        c.release(broken);
      }
      return opened();
    } catch (e) {
      connecting?.forEach(dropConnection);
      await pool.end().catch(() => undefined);
      await stop.cancelling;
      if (stop.ended || (opts.signal?.aborted && e === stop.reason)) throw stop.reason;
      throw storeError(e, "opening the store");
    } finally {
      stop.done();
    }
  }

  /** `text` may be a named statement ({ name, text }): prepared once per connection, then only bound and run. */
  async #query<R extends QueryResultRow>(what: string, text: string | { name: string; text: string }, values?: unknown[]): Promise<R[]> {
    // Checked out here rather than by pool.query: a watched call's connection is tied to it (#connect).
    const c = await this.#connect(what);
    let failed: Error | undefined;
    try {
      return (await c.query<R>(typeof text === "string" ? { text, ...(values ? { values } : {}) } : { ...text, ...(values ? { values } : {}) })).rows;
    } catch (e) {
      failed = e instanceof Error ? e : new Error(String(e));
      // One statement, its own transaction: sent, then its connection lost, it may have committed.
      throw lostAfterSending(e, storeError(endedBy(c, e), what));
    } finally {
      c.release(failed); // as pool.query did: a connection a statement failed on is not reused
    }
  }

  /** One READ COMMITTED transaction on one connection; a deadlock victim runs again from the start. */
  async #tx<T>(what: string, body: (c: PoolClient) => Promise<T>, opts: { retries?: number; begin?: string } = {}): Promise<T> {
    const retries = opts.retries ?? 0;
    const call = currentCall(); // read as the transaction begins: a retry is for the same call
    for (let attempt = 0; ; attempt++) {
      const c = await this.#connect(what, call);
      let broken = false;
      let committing = false;
      try {
        await c.query(opts.begin ?? "BEGIN ISOLATION LEVEL READ COMMITTED");
        const r = await body(c);
        committing = true;
        await c.query("COMMIT");
        return r;
      } catch (e) {
        await c.query("ROLLBACK").catch(() => (broken = true));
        if (e instanceof LockRestart) throw e;
        const code = pgCode(e);
        if (attempt < retries && (code === PG.deadlock || code === PG.serialization)) continue;
        // A connection lost before COMMIT was sent ends the transaction uncommitted; lost after, it may have committed.
        const failed = storeError(endedBy(c, e), what);
        throw committing ? lostAfterSending(e, failed) : failed;
      } finally {
        c.release(broken);
      }
    }
  }

  /** A transaction over resident facts: the codes locked first, more as it finds them (see the header). */
  async #residentTx<T>(what: string, codes: Iterable<string>, body: (c: PoolClient, locks: ResidentLocks) => Promise<T>): Promise<T> {
    const want = new Set(codes);
    let exclusive = false;
    for (;;) {
      try {
        return await this.#tx(
          what,
          async (c) => {
            const locks = new ResidentLocks(c, this.#maxLocks);
            await locks.acquire(want, exclusive);
            return body(c, locks);
          },
          { retries: DEADLOCK_RETRIES },
        );
      } catch (e) {
        if (!(e instanceof LockRestart)) throw e;
        for (const code of e.codes) want.add(code);
        exclusive ||= e.exclusive;
      }
    }
  }

  // ---- The audit log (store/audit-log.ts) ----

  #audit: AuditContext = { actor: undefined, now: () => new Date() };

  setAuditContext(ctx: { readonly actor?: string; readonly now?: () => Date }): void {
    this.#audit = { actor: ctx.actor ?? this.#audit.actor, now: ctx.now ?? this.#audit.now };
  }

  /**
   * Appends records inside the caller's transaction, as its last statements: the head row is locked FOR UPDATE
   * (every other appender waits here until this transaction ends), the records chained on it, the head moved.
   * Two round trips per transaction, whatever the number of records.
   */
  async #appendAudits(c: ClientBase, entries: readonly (AuditEntry | undefined)[]): Promise<void> {
    const list = entries.filter((e): e is AuditEntry => e !== undefined);
    if (!list.length) return;
    await c.query({ name: "jpki_audit_append", text: `SELECT jpki_audit_append(${AUDIT_APPEND_ARGS})`, values: this.#auditColumns(list) });
  }

  /** The six arrays jpki_audit_append takes (AUDIT_APPEND_ARGS, from $1): the records as sealAudit would make them, and their hash tails. */
  #auditColumns(list: readonly AuditEntry[]): unknown[] {
    const actor = (this.#audit.actor ??= osActor());
    const at = this.#audit.now();
    const recs = list.map((e) => auditFields(e, at, actor));
    // Binary arrays (pg-binary.ts): a group's detail is tens of kilobytes of JSON, every quote of which a text
    // array would escape (twice: the detail and its hash tail).
    return [
      int8Array(recs.map((r) => r.at.getTime())),
      textArray(recs.map((r) => r.actor)),
      textArray(recs.map((r) => r.action)),
      textArray(recs.map((r) => r.subject)),
      textArray(recs.map((r) => r.detail)),
      textArray(recs.map(auditHashTail)),
    ];
  }

  async appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    await this.#tx("appending to the audit log", (c) => this.#appendAudits(c, [entry]));
    return (await this.auditHead())!;
  }

  async auditHead(): Promise<AuditRecord | undefined> {
    const [r] = await this.#query<AuditRowDb>("reading the audit log", "SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1");
    return r && toAudit(r);
  }

  async *auditRecords(q: AuditQuery = {}): AsyncIterable<AuditRecord> {
    const where = ["seq > $1"];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length + 1}`);
    if (q.since) where.push(`at >= ${arg(q.since.getTime())}`);
    if (q.action !== undefined) where.push(`action = ${arg(q.action)}`);
    if (q.actor !== undefined) where.push(`actor = ${arg(q.actor)}`);
    if (q.subject !== undefined) where.push(`subject = ${arg(q.subject)}`);
    const text = `SELECT * FROM audit_log WHERE ${where.join(" AND ")} ORDER BY seq LIMIT $${args.length + 2}`;
    let left = q.limit ?? Infinity;
    // Keyset pages: no connection is held while the consumer awaits.
    for (let after = q.afterSeq ?? 0; left > 0; ) {
      const rows = await this.#query<AuditRowDb>("reading the audit log", text, [after, ...args, Math.min(AUDIT_PAGE, left)]);
      for (const r of rows) yield toAudit(r);
      if (rows.length < AUDIT_PAGE) return;
      left -= rows.length;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  async putAuditCheckpoint(cp: AuditCheckpoint): Promise<void> {
    // As in SQLite: a head another process checkpointed first is checkpointed, once. One statement, its own
    // transaction (READ COMMITTED, READ_COMMITTED_OPTION): the checkpoint inserted, and its audit record appended
    // only when it was (the function runs once per row the insert returns), after the insert as before — four
    // round trips less (BEGIN, the insert, the append, COMMIT) on every `crl generate`.
    await this.#query("recording an audit checkpoint", {
      name: "jpki_audit_checkpoint_put",
      text: `WITH put AS (
               INSERT INTO audit_checkpoints (seq, hash, at, ca_id, cert_der, signature) VALUES ($7, $8, $9, $10, $11, $12) ON CONFLICT (seq) DO NOTHING
               RETURNING 1)
             SELECT jpki_audit_append(${AUDIT_APPEND_ARGS}) FROM put`,
    }, [...this.#auditColumns([checkpointAudit(cp)]), cp.seq, cp.hash, cp.at.getTime(), cp.caId, cp.certificateDer, cp.signature]);
  }

  async auditCheckpoints(): Promise<AuditCheckpoint[]> {
    return (await this.#query<AuditCheckpointRowDb>("reading audit checkpoints", "SELECT * FROM audit_checkpoints ORDER BY seq")).map(toAuditCheckpoint);
  }

  /** See Store.holdPresence: the connection that shows this process in pg_stat_activity while it is open. */
  #presence: Client | undefined;

  /** The name holdPresence shows, once asked for. */
  #presenceName: string | undefined;
  #presenceRetry: NodeJS.Timeout | undefined;

  async holdPresence(what: string): Promise<void> {
    if (this.#presenceName !== undefined || this.#closed) return;
    this.#presenceName = `jpki ${what} ${hostname()} pid ${process.pid}`.slice(0, 63);
    try {
      await this.#openPresence();
    } catch (e) {
      this.#presenceName = undefined;
      throw storeError(e, "connecting to the store");
    }
  }

  /**
   * Opens the presence connection; when the server ends it (a restart, a terminated backend), opens it again every
   * presenceRetryMs until it is back: a `jpki serve` that outlived a PostgreSQL restart was otherwise invisible to
   * `jpki restore --force` from then on (found by an operations walk-through).
   */
  async #openPresence(): Promise<void> {
    const c = this.#sessionClient(this.#presenceName!);
    // lost with the server: 'error' on an idle client would otherwise end the process
    c.on("error", () => undefined);
    try {
      await c.connect();
      // idle_session_timeout (PostgreSQL 14+), if an operator set one, would end it while the process idles.
      await c.query("SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000");
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
    if (this.#closed) {
      // closed while it connected: ended here, and not to be opened again (as an end after the close says)
      await c.end().catch(() => undefined);
      this.#onPresenceEnded?.(false);
      return;
    }
    this.#presence = c;
    c.on("end", () => {
      if (this.#presence === c) this.#presence = undefined;
      this.#retryPresence();
      this.#onPresenceEnded?.(this.#presenceRetry !== undefined);
    });
  }

  #retryPresence(): void {
    if (this.#closed || this.#presenceRetry) return;
    this.#presenceRetry = setTimeout(() => {
      this.#presenceRetry = undefined;
      if (this.#closed || this.#presence) return;
      this.#openPresence().catch(() => this.#retryPresence());
    }, this.#presenceRetryMs);
    // Never what keeps a process alive: serve and watch have their own reasons to run.
    this.#presenceRetry.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // An indexer running stops between its waits or its pages, or ends its page (a few ms; a catch-up's page under a
    // second), before the pool ends under it; one held longer (its page waiting on a lock: a dump's) is left to the
    // bound below, as any connection still out.
    if (this.#indexing) await Promise.race([this.#indexing, new Promise((r) => setTimeout(r, this.#closeWaitMs).unref())]);
    clearTimeout(this.#presenceRetry);
    this.#presenceRetry = undefined;
    const presence = this.#presence;
    this.#presence = undefined;
    await presence?.end().catch(() => undefined);
    // pool.end() waits for every connection checked out to come back: one whose statement the server never answers
    // (a lock held elsewhere, a host that stopped answering) held the close — and `jpki serve`'s stop — for good.
    // Past the bound the connections still out are cut (node-postgres ends one with a statement in flight by
    // destroying its socket: the statement fails, the connection leaves the pool). What their statements were for
    // was given up by their callers already (the API's watchdog, server/app.ts); the server may still complete a
    // statement it received, as it would for a client that crashed.
    const ended = this.#pool.end();
    const wait = (ms: number) => new Promise<"waited">((r) => setTimeout(() => r("waited"), ms).unref());
    try {
      if ((await Promise.race([ended, wait(this.#closeWaitMs)])) !== "waited") return;
      for (const c of this.#checkedOut) c.end().catch(() => undefined);
      await Promise.race([ended, wait(this.#closeWaitMs)]);
    } catch (e) {
      throw storeError(e, "closing");
    }
  }

  async putCa(ca: CaRecord): Promise<void> {
    try {
      await this.#tx("saving a CA", async (c) => {
        await this.#assertCaKeysLockHeld(c);
        await assertNotRetired(c, ca.id);
        await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at, key_ref) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", [
          ca.id,
          ca.prefectureCode,
          ca.purpose,
          ca.certificateDer,
          ca.encryptedKeyPem,
          ca.keyId,
          ca.createdAt.getTime(),
          ca.keyRef ?? null,
        ]);
        await this.#appendAudits(c, [caCreatedAudit(ca)]);
      });
    } catch (e) {
      const cause = e instanceof JpkiError && e.code === "ERR_STORE" ? e.cause : e;
      if (pgCode(cause) === PG.uniqueViolation) throw new JpkiError("ERR_CA_EXISTS", `CA ${ca.id} already exists in this workspace`, { cause });
      throw storeError(e, "saving a CA");
    }
  }

  async getCa(id: string): Promise<CaRecord | undefined> {
    const [r] = await this.#query("reading a CA", "SELECT * FROM cas WHERE id = $1", [id]);
    return r ? toCa(r) : undefined;
  }

  async listCas(): Promise<CaRecord[]> {
    return (await this.#query("listing CAs", SQL.listCas)).map(toCa);
  }

  putCaRollover(ca: CaRecord, link: CaLinkRecord): Promise<void> {
    return this.putCaRollovers([{ ca, link }]);
  }

  putCaRollovers(rollovers: ReadonlyArray<{ readonly ca: CaRecord; readonly link: CaLinkRecord }>): Promise<void> {
    return this.#tx("saving a CA key rollover", async (c) => {
      await this.#assertCaKeysLockHeld(c);
      // Revisions and ARL scopes to bump, after the loop in key order (publishCrl's and revoking transactions' lock
      // order: crl_state rows, then crl_scopes rows), whatever order the purposes come in.
      const due = new Set<string>();
      const arlDue = new Set<string>();
      for (const { ca, link } of rollovers) {
        // The old generation's row locked first: two rollovers of one CA queue here, and the second finds the first's link.
        const old = await c.query("SELECT 1 FROM cas WHERE id = $1 FOR UPDATE", [link.oldCaId]);
        if (!old.rowCount) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${link.oldCaId} in this workspace: nothing to roll over`);
        const taken = await c.query<{ new_ca_id: string }>("SELECT new_ca_id FROM ca_links WHERE old_ca_id = $1", [link.oldCaId]);
        const exists = await c.query("SELECT 1 FROM cas WHERE id = $1", [ca.id]);
        if (taken.rowCount || exists.rowCount) {
          throw new JpkiError("ERR_ROLLOVER_CONFLICT", `CA ${link.oldCaId} was rolled over to ${taken.rows[0]?.new_ca_id ?? ca.id} by another run: nothing was saved; 'jpki ca list' shows the generations`);
        }
        await assertNotRetired(c, ca.id);
        try {
          await c.query("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at, key_ref) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", [
            ca.id, ca.prefectureCode, ca.purpose, ca.certificateDer, ca.encryptedKeyPem, ca.keyId, ca.createdAt.getTime(), ca.keyRef ?? null,
          ]);
          await c.query("INSERT INTO ca_links (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at) VALUES ($1, $2, $3, $4, $5)", [
            link.newCaId, link.oldCaId, link.oldWithNew ?? null, link.newWithOld ?? null, link.createdAt.getTime(),
          ]);
        } catch (e) {
          if (pgCode(e) === PG.uniqueViolation) throw new JpkiError("ERR_ROLLOVER_CONFLICT", `CA ${link.oldCaId} was rolled over by another run: nothing was saved`, { cause: safeCause(e) });
          throw e;
        }
        // Rolled over for a compromised key: the predecessor's CRLs due (sqlite.ts says why).
        const pred = link.oldWithNew ? undefined : (await c.query<{ old_ca_id: string }>("SELECT old_ca_id FROM ca_links WHERE new_ca_id = $1 AND old_with_new IS NOT NULL", [link.oldCaId])).rows[0]?.old_ca_id;
        if (pred) due.add(pred), arlDue.add(pred);
        // And the old generation's own revision, so that a running serve's OCSP responder sees the compromise within
        // a poll (sqlite.ts says why).
        // Its ARL too: it lists the generation's own certificate from now on (crl/arl.ts arlEntries).
        if (!link.oldWithNew) due.add(link.oldCaId), arlDue.add(link.oldCaId);
        await this.#appendAudits(c, [caRolloverAudit(ca, link)]);
      }
      if (due.size) await c.query(SQL.bumpRevisions, [sortedUnique([...due])]);
      if (arlDue.size) {
        const ids = sortedUnique([...arlDue]);
        await c.query(SQL.bumpScopes, [textArray(ids), textArray(ids.map(() => ARL_SCOPE))]);
      }
    });
  }

  retireCaIds(records: readonly RetiredCaIdRecord[]): Promise<void> {
    return this.#tx("retiring CA ids", async (c) => {
      for (const r of records) {
        // The cas row locked (when there is one): a CA created meanwhile under this id is seen, not overlooked.
        if ((await c.query("SELECT 1 FROM cas WHERE id = $1 FOR UPDATE", [r.id])).rowCount) {
          throw new JpkiError("ERR_CA_EXISTS", `CA ${r.id} is in this store: its id cannot be retired`, { details: { caId: r.id } });
        }
        const put = await c.query("INSERT INTO retired_ca_ids (id, retired_at, reason) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING", [r.id, r.retiredAt.getTime(), r.reason]);
        if (put.rowCount) await this.#appendAudits(c, [caIdRetiredAudit(r)]);
      }
    });
  }

  async listRetiredCaIds(): Promise<RetiredCaIdRecord[]> {
    return (await this.#query("listing retired CA ids", "SELECT id, retired_at, reason FROM retired_ca_ids ORDER BY id")).map(toRetiredCaId);
  }

  async listCaLinks(): Promise<CaLinkRecord[]> {
    return (await this.#query("listing CA key rollovers", "SELECT * FROM ca_links ORDER BY new_ca_id")).map(toCaLink);
  }

  declareCaCompromised(caId: string, at: Date): Promise<CaCompromiseRecord> {
    return this.#tx("recording a CA key compromise", async (c): Promise<CaCompromiseRecord> => {
      if (!(await c.query("SELECT 1 FROM cas WHERE id = $1", [caId])).rowCount) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this workspace`, { details: { caId } });
      // The rollover's row locked: two declarations at once record one compromise, and one audit record.
      const row = (await c.query("SELECT * FROM ca_links WHERE old_ca_id = $1 FOR UPDATE", [caId])).rows[0] as Record<string, unknown> | undefined;
      if (!row) throw new JpkiError("ERR_CA_ACTIVE", activeCompromiseMessage(caId), { details: { caId } });
      const link = toCaLink(row);
      if (!link.oldWithNew || link.compromisedAt) return { caId, successorCaId: link.newCaId, at: link.compromisedAt ?? link.createdAt, already: true };
      await c.query("UPDATE ca_links SET compromised_at = $1 WHERE old_ca_id = $2", [at.getTime(), caId]);
      // Both ARLs and both full CRLs due (sqlite.ts says why), in key order and in publishCrl's lock order: the CAs'
      // crl_state rows, then their crl_scopes rows.
      // The predecessor's too, if an ordinary rollover made this generation: its OldWithNew certifies the stolen key.
      const pred = (await c.query<{ old_ca_id: string }>("SELECT old_ca_id FROM ca_links WHERE new_ca_id = $1 AND old_with_new IS NOT NULL", [caId])).rows[0]?.old_ca_id;
      const due = [caId, link.newCaId, ...(pred ? [pred] : [])].sort();
      await c.query(SQL.bumpRevisions, [due]);
      await c.query(SQL.bumpScopes, [textArray(due), textArray(due.map(() => ARL_SCOPE))]);
      await this.#appendAudits(c, [caCompromisedAudit(link)]);
      return { caId, successorCaId: link.newCaId, at, already: false };
    });
  }

  async sharedCertifiedKeys(o: { readonly now: Date }): Promise<SharedCertifiedKey[]> {
    const what = "checking for keys certified to more than one resident";
    const found: SharedCertifiedKey[] = [];
    // The keys held by more than one certificate, a page at a time in key order (the column's index: an index-only
    // scan where the visibility map allows), then those keys' live certificates. Above the empty marker: no key.
    for (let after: Buffer = NO_CERTIFIED_KEY; ; ) {
      const page = (
        await this.#query<{ k: Buffer }>(what, "SELECT certified_key AS k FROM certificates WHERE certified_key > $1 GROUP BY certified_key HAVING count(*) > 1 ORDER BY certified_key LIMIT $2", [after, SHARED_KEYS_PAGE])
      ).map((r) => r.k);
      if (page.length) {
        const rows = await this.#query<{ k: Buffer; serial: string; caId: string; type: CertificateType; residentCode: string; notAfter: string; der: Buffer }>(
          what,
          `SELECT certified_key AS k, serial, ca_id AS "caId", type, resident_code AS "residentCode", not_after AS "notAfter", der FROM certificates
           WHERE certified_key = ANY($1::bytea[]) AND revoked_at IS NULL AND not_after > $2 ORDER BY certified_key, serial`,
          [byteaArray(page), o.now.getTime()],
        );
        found.push(...sharedKeysAmong(rows.map((r) => ({ certifiedKey: r.k, serial: r.serial, caId: r.caId, type: r.type, residentCode: r.residentCode, notAfter: new Date(Number(r.notAfter)), der: r.der }))));
      }
      if (page.length < SHARED_KEYS_PAGE) break;
      after = page[page.length - 1]!;
    }
    if (!found.length) return found;
    // one person under codes the registry joined by a resident-code change is no finding (rows.ts peopleApart)
    const read = async (codes: string[]) =>
      new Map(
        (await this.#query<{ f: string; t: string }>("reading resident-code changes", "SELECT resident_code AS f, successor_code AS t FROM residents WHERE resident_code = ANY($1::text[]) AND successor_code IS NOT NULL", [textArray(codes)])).map(
          (r): [string, string] => [r.f, r.t],
        ),
      );
    return peopleApart(found, await successorsOf(found.flatMap((k) => k.certificates.map((c) => c.residentCode)), read));
  }

  async lastCertificateExpiry(caId: string): Promise<Date | undefined> {
    // No index by (ca_id, not_after): it would cost every issuance, while this runs once per CRL run and only for retired generations.
    const [r] = await this.#query<{ m: string | null }>("reading a CA's last certificate expiry", "SELECT max(not_after) AS m FROM certificates WHERE ca_id = $1", [caId]);
    return r?.m === null || r?.m === undefined ? undefined : new Date(Number(r.m));
  }

  /** The backend pid of the connection holding the CA-keys lock while this process's withCaKeysLock runs. */
  #caKeysHolder: number | undefined;

  /**
   * Inside a transaction that writes CA keys: refuses (ERR_WORKSPACE_LOCKED, rolled back) when this process took the
   * CA-keys lock and has lost it since. The lock lives on a connection of its own; when that connection ends (a
   * network break, an operator's pg_terminate_backend on what looked like a vanished host's lock, a failover) the
   * lock goes with it and another host may take it, while `fn` goes on with its writes on pooled connections.
   * Checked in the transaction that writes, on the server's own lock table, so no such write commits once the
   * lock is gone. Outside withCaKeysLock nothing is checked.
   */
  async #assertCaKeysLockHeld(c: ClientBase): Promise<void> {
    const pid = this.#caKeysHolder;
    if (pid === undefined) return;
    const held = await c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objid = 0 AND objsubid = 2 AND granted AND pid = $2", [CA_KEYS_LOCK, pid]);
    if (!held.rowCount) {
      throw new JpkiError(
        "ERR_WORKSPACE_LOCKED",
        "the CA-keys lock of this PostgreSQL store was lost while this command worked (its connection to the database ended): nothing more was written; check 'jpki ca list', then run the command again",
      );
    }
  }

  /**
   * See Store.withCaKeysLock. Session-level (pg_try_advisory_lock), not transaction-level: `fn`'s writes are
   * transactions of their own on pooled connections, so no one transaction spans the operation; the lock lives on
   * a dedicated connection that does nothing else and is closed at the end. PostgreSQL drops a session's advisory
   * locks with its connection, so a holder that is killed (or whose connection is terminated) frees it at once; a
   * holder host that vanishes without closing its socket holds it until the server's TCP keepalive ends the
   * connection (or an operator runs pg_terminate_backend on the pid pg_locks shows).
   */
  async withCaKeysLock<T>(fn: () => Promise<T>): Promise<T> {
    const what = "taking the CA-keys lock";
    // Named after this process in pg_stat_activity, so the process kept out can say which one holds it.
    const c = this.#sessionClient(`jpki ca-keys ${hostname()} pid ${process.pid}`.slice(0, 63));
    // A connection lost while `fn` runs emits 'error' on the idle client: without a listener Node would end the
    // process with it. The lock is gone with the connection; `fn`'s own transactions go on and report their errors.
    c.on("error", () => undefined);
    try {
      try {
        await c.connect();
        // idle_session_timeout (PostgreSQL 14+), if an operator set one, would end this idle connection, and the
        // lock with it, while `fn` works on other connections.
        await c.query("SELECT set_config('idle_session_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 140000");
      } catch (e) {
        throw storeError(e, what);
      }
      // Refused only with a holder seen after our try-lock failed: one that let go in between (the try and the read
      // are one statement, but not one instant) is not named, the lock is tried again.
      let taken: { got: boolean; pid: number; holder: number | null; name: string | null };
      for (let attempt = 1; ; attempt++) {
        try {
          taken = (await c.query<typeof taken>(CA_KEYS_TRY, [CA_KEYS_LOCK, CA_KEYS_LOCK])).rows[0]!;
        } catch (e) {
          throw storeError(e, what);
        }
        if (taken.got || taken.holder !== null || attempt === CA_KEYS_TRIES) break;
      }
      const { got, pid, holder, name } = taken;
      if (!got) {
        const who = name ? ` (${name})` : holder != null ? ` (PostgreSQL backend pid ${holder})` : "";
        throw new JpkiError(
          "ERR_WORKSPACE_LOCKED",
          `another jpki process${who} is working on the CA keys of this PostgreSQL store (ca init, rewrap, rollover or bridge, on this host or another sharing the database): nothing was done; retry when it finishes`,
        );
      }
      this.#caKeysHolder = pid;
      try {
        return await fn();
      } finally {
        this.#caKeysHolder = undefined;
        // Released on this session before it closes, so the next holder never finds it still held by a closing backend.
        await c.query("SELECT pg_advisory_unlock($1, 0)", [CA_KEYS_LOCK]).catch(() => undefined);
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  replaceCaKeys(keys: ReadonlyArray<{ id: string; encryptedKeyPem: string }>, o: { readonly ocspSigners?: readonly OcspSignerKey[]; readonly verifierCa?: VerifierCaKey } = {}): Promise<void> {
    const ocspSigners = o.ocspSigners ?? [];
    const verifierCa = o.verifierCa?.encryptedKeyPem !== undefined;
    return this.#tx("re-encrypting CA keys", async (c) => {
      await this.#assertCaKeysLockHeld(c);
      for (const k of keys) {
        const r = await c.query("UPDATE cas SET key_pem = $1 WHERE id = $2", [k.encryptedKeyPem, k.id]);
        if (r.rowCount !== 1) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${k.id} in this workspace: no key was replaced`);
      }
      for (const k of ocspSigners) {
        const r = await c.query("UPDATE ocsp_responders SET key_pem = $1 WHERE ca_id = $2 AND serial = $3", [k.encryptedKeyPem, k.caId, k.serial]);
        if (r.rowCount !== 1) throw ocspSignerRenewed(k.caId);
      }
      if (o.ocspSigners) {
        const listed = new Set(ocspSigners.map((k) => k.caId));
        const added = (await c.query<{ ca_id: string }>("SELECT ca_id FROM ocsp_responders ORDER BY ca_id")).rows.find((r) => !listed.has(r.ca_id));
        if (added) throw ocspSignerAdded(added.ca_id);
      }
      if (o.verifierCa) {
        const now = (await c.query<{ key_pem: string }>("SELECT key_pem FROM verifier_ca WHERE id = 1 FOR UPDATE")).rows[0]?.key_pem;
        if (now !== o.verifierCa.before) throw verifierCaChanged();
        if (o.verifierCa.encryptedKeyPem !== undefined) await c.query("UPDATE verifier_ca SET key_pem = $1 WHERE id = 1", [o.verifierCa.encryptedKeyPem]);
      }
      if (keys.length || ocspSigners.length || verifierCa) await this.#appendAudits(c, [rewrapAudit(keys, ocspSigners, verifierCa)]);
    });
  }

  upsertResidents(residents: readonly ResidentRecord[]): Promise<{ inserted: number; updated: number }> {
    // One row per code (the last wins, as when applied one after another); repeats count as replaced.
    const last = new Map(residents.map((r) => [r.residentCode, r]));
    return this.#residentTx("saving residents", last.keys(), async (c) => {
      const rows = [...last.values()];
      const r = await c.query<{ inserted: boolean }>(
        `${SQL.upsertResidents}
         ON CONFLICT (resident_code) DO UPDATE SET municipality_code = excluded.municipality_code, name = excluded.name,
           address = excluded.address, birth_date = excluded.birth_date, gender = excluded.gender, status = excluded.status,
           successor_code = excluded.successor_code
         RETURNING (xmax = 0) AS inserted`,
        [
          rows.map((x) => x.residentCode),
          rows.map((x) => x.municipalityCode),
          rows.map((x) => x.fourItems.name),
          rows.map((x) => x.fourItems.address),
          rows.map((x) => x.fourItems.birthDate),
          rows.map((x) => x.fourItems.gender),
          rows.map((x) => x.status),
          rows.map(() => 0),
          rows.map((x) => x.successorCode ?? null),
        ],
      );
      const inserted = r.rows.filter((x) => x.inserted).length;
      if (residents.length) await this.#appendAudits(c, [registryLoadAudit(inserted, residents.length - inserted)]);
      return { inserted, updated: residents.length - inserted };
    });
  }

  async getResident(residentCode: string): Promise<ResidentRecord | undefined> {
    const [r] = await this.#query<ResidentRowDb>("reading a resident", "SELECT * FROM residents WHERE resident_code = $1", [residentCode]);
    return r ? toResident(r) : undefined;
  }

  getResidentForIssuance(residentCode: string): Promise<ResidentForIssuance | undefined> {
    return this.#residentLookups.get(residentCode);
  }

  applyToRegistry<T>(decide: RegistryDecide<T>): Promise<T> {
    // `decide` reads synchronously and names its codes only as it reads them: it runs against the records
    // loaded so far, and while it asks for others, those are locked and loaded and it runs again (it is pure).
    return this.#residentTx("updating residents", [], async (c, locks) => {
      const loaded = new Map<string, (ResidentRecord & { readonly noticeSequence: number }) | undefined>();
      // a code's registered issuance information is loaded (and locked) with its record
      const issuances = new Map<string, RegisteredIssuance[]>();
      for (;;) {
        const misses = new Set<string>();
        const read = (code: string) => {
          if (loaded.has(code)) return loaded.get(code);
          misses.add(code);
          return undefined;
        };
        const registered = (code: string): readonly RegisteredIssuance[] => {
          if (loaded.has(code)) return issuances.get(code) ?? [];
          misses.add(code);
          return [];
        };
        let d: ReturnType<typeof decide> | undefined;
        try {
          d = decide(read, registered);
        } catch (e) {
          // a decision from records not yet loaded may fail any way it likes: only a complete one counts
          if (!misses.size) throw e;
        }
        if (misses.size || !d) {
          await locks.extend(misses);
          for (const code of misses) loaded.set(code, undefined);
          const rows = await c.query<ResidentRowDb>("SELECT * FROM residents WHERE resident_code = ANY($1::text[])", [[...misses]]);
          for (const r of rows.rows) loaded.set(r.resident_code, { ...toResident(r), noticeSequence: Number(r.notice_sequence) });
          const reg = await c.query<RegisteredRowDb>(`SELECT * FROM registry_issuances WHERE resident_code = ANY($1::text[]) AND ${REGISTERED_UNREVOKED} ORDER BY serial`, [[...misses]]);
          for (const r of reg.rows) issuances.set(r.resident_code, [...(issuances.get(r.resident_code) ?? []), toRegistered(r)]);
          continue;
        }
        await locks.extend([...d.remove, ...d.put.map((r) => r.residentCode)]);
        if (d.remove.length) await c.query("DELETE FROM residents WHERE resident_code = ANY($1::text[])", [[...d.remove]]);
        if (d.relink?.length) {
          // The new codes are ones nobody held (the registry refuses a change to a code in use): no consent is under them.
          await c.query("UPDATE consents SET resident_code = u.t FROM unnest($1::text[], $2::text[]) AS u(f, t) WHERE consents.resident_code = u.f", [
            d.relink.map((l) => l.from),
            d.relink.map((l) => l.to),
          ]);
          // 住民票コード変更: the certificates are kept, their registered issuance information re-linked.
          await c.query("UPDATE registry_issuances SET resident_code = u.t FROM unnest($1::text[], $2::text[]) AS u(f, t) WHERE registry_issuances.resident_code = u.f", [
            d.relink.map((l) => l.from),
            d.relink.map((l) => l.to),
          ]);
        }
        const put = [...new Map(d.put.map((r) => [r.residentCode, r])).values()];
        if (put.length) {
          await c.query(
            `${SQL.upsertResidents}
             ON CONFLICT (resident_code) DO UPDATE SET municipality_code = excluded.municipality_code, name = excluded.name,
               address = excluded.address, birth_date = excluded.birth_date, gender = excluded.gender, status = excluded.status,
               notice_sequence = excluded.notice_sequence, successor_code = excluded.successor_code`,
            [
              put.map((x) => x.residentCode),
              put.map((x) => x.municipalityCode),
              put.map((x) => x.fourItems.name),
              put.map((x) => x.fourItems.address),
              put.map((x) => x.fourItems.birthDate),
              put.map((x) => x.fourItems.gender),
              put.map((x) => x.status),
              put.map((x) => x.noticeSequence),
              put.map((x) => x.successorCode ?? null),
            ],
          );
        }
        const q = d.enqueue ?? [];
        if (q.length) {
          // The notices go into the outbox in this transaction: a crash after COMMIT leaves them to deliver.
          // unnest WITH ORDINALITY keeps the given order in the ids.
          await c.query(
            `INSERT INTO registry_outbox (notice_id, resident_code, sequence, body, created_at)
             SELECT n, r, s, b, t FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) WITH ORDINALITY AS u(n, r, s, b, t, o) ORDER BY o`,
            [q.map((x) => x.noticeId), q.map((x) => x.residentCode), q.map((x) => x.sequence), q.map((x) => x.body), q.map((x) => x.createdAt.getTime())],
          );
        }
        if (d.put.length || d.remove.length || q.length) await this.#appendAudits(c, [d.audit ?? registryAudit(d)]);
        return d.result;
      }
    });
  }

  async pendingOutbox(limit: number): Promise<OutboxNotice[]> {
    const rows = await this.#query<{ notice_id: string; resident_code: string; sequence: string; body: string; created_at: string }>(
      "reading the registry's outbox",
      "SELECT notice_id, resident_code, sequence, body, created_at FROM registry_outbox ORDER BY id LIMIT $1",
      [limit],
    );
    return rows.map((r) => ({ noticeId: r.notice_id, residentCode: r.resident_code, sequence: Number(r.sequence), body: r.body, createdAt: new Date(Number(r.created_at)) }));
  }

  ackOutbox(noticeIds: readonly string[]): Promise<number> {
    if (!noticeIds.length) return Promise.resolve(0);
    return this.#tx("acknowledging delivered notices", async (c) => (await c.query("DELETE FROM registry_outbox WHERE notice_id = ANY($1::text[])", [[...noticeIds]])).rowCount ?? 0);
  }

  async registeredIssuances(residentCode: string): Promise<RegisteredIssuance[]> {
    const rows = await this.#query<RegisteredRowDb>("reading registered issuance information", `SELECT * FROM registry_issuances WHERE resident_code = $1 AND ${REGISTERED_UNREVOKED} ORDER BY serial`, [residentCode]);
    return rows.map(toRegistered);
  }

  async sweepRegisteredIssuances(expiredBefore: Date, opts?: SweepOptions): Promise<number> {
    const batch = sweepBatchSize(opts);
    const cutoff = expiredBefore.getTime();
    let removed = 0;
    // A batch per transaction, in key order: one DELETE over the whole table held the row lock of every expired
    // row until it had scanned the rest, and a revocation or a resident-code relink of one of them waited for
    // it, then failed past lock_timeout.
    for (let after = ""; ; ) {
      const step = await this.#tx("sweeping expired issuance information", async (c) => {
        const end = (await c.query<{ serial: string }>("SELECT serial FROM registry_issuances WHERE serial > $1 ORDER BY serial OFFSET $2 LIMIT 1", [after, batch - 1])).rows[0]?.serial;
        // Rows of revoked certificates left by notice batches go first, uncounted: the reads no longer return them.
        await c.query(`DELETE FROM registry_issuances WHERE serial > $1 ${end === undefined ? "" : "AND serial <= $2"} AND NOT ${REGISTERED_UNREVOKED}`, end === undefined ? [after] : [after, end]);
        const r =
          end === undefined
            ? await c.query("DELETE FROM registry_issuances WHERE serial > $1 AND not_after < $2", [after, cutoff])
            : await c.query("DELETE FROM registry_issuances WHERE serial > $1 AND serial <= $3 AND not_after < $2", [after, cutoff, end]);
        const n = r.rowCount ?? 0;
        // In the audit log with the rows it deleted, in their transaction (a batch that found none: nothing).
        if (n) await this.#appendAudits(c, [registrySweepAudit(expiredBefore, n)]);
        return { n, end };
      });
      removed += step.n;
      if (step.end === undefined || opts?.signal?.aborted) return removed;
      after = step.end;
    }
  }

  async residentNoticeSequence(residentCode: string): Promise<number> {
    const [r] = await this.#query<{ s: bigint }>("reading a resident's notice sequence", "SELECT notice_sequence AS s FROM residents WHERE resident_code = $1", [residentCode]);
    return r ? Number(r.s) : 0;
  }

  async countResidents(): Promise<number> {
    const [r] = await this.#query<{ n: bigint }>("counting residents", "SELECT count(*) AS n FROM residents");
    return Number(r!.n);
  }

  commitIssuances(records: readonly IssuanceRecord[]): Promise<IssuanceCommitResult[]> {
    const keys = new Map(records.map((r) => [r, certifiedKeyOf(r.der)]));
    return this.#residentTx("committing issued certificates", records.map((r) => r.residentCode), async (c, locks) => {
      const keyList = [...new Set([...keys.values()].filter((k): k is Buffer => k !== null).map((k) => k.toString("hex")))].map((h) => Buffer.from(h, "hex"));
      await locks.lockKeys(keyList);
      // What each certificate certifies was read before signing; re-read it here, under the residents'
      // locks, in the transaction that commits, so a notice or a registry change in between can never leave
      // a stale certificate. Read set-based, then decided in order in memory, as one-by-one commits would.
      const codes = sortedUnique(records.map((r) => r.residentCode));
      const appIds = sortedUnique(records.flatMap((r) => (r.applicationId ? [r.applicationId] : [])));
      const residents = new Map(
        (await c.query<ResidentRowDb & { ca_sequence: bigint }>({ name: "jpki_resident_for_issuance", text: SQL.residentForIssuance, values: [textArray(codes)] })).rows.map((r) => [r.resident_code, r]),
      );
      const rows = new Map<string, CertificateRow>();
      const byApplication = new Map<string, string>();
      const active = new Map<string, string[]>();
      const key = (code: string, type: string) => `${type}\u0000${code}`;
      if (appIds.length) {
        for (const r of (await c.query<CertRowDb>("SELECT * FROM certificates WHERE application_id = ANY($1::text[])", [appIds])).rows) {
          rows.set(r.serial, toCertRow(r));
          byApplication.set(r.application_id!, r.serial);
        }
      }
      const activeRows = await c.query<CertRowDb>(
        // locked: a manual revocation in between either came first (the row is not active) or waits for this commit
        "SELECT * FROM certificates WHERE resident_code = ANY($1::text[]) AND revoked_at IS NULL ORDER BY issued_at, serial FOR NO KEY UPDATE",
        [textArray(codes)],
      );
      for (const r of activeRows.rows) {
        if (!rows.has(r.serial)) rows.set(r.serial, toCertRow(r));
        const k = key(r.resident_code, r.type);
        active.set(k, [...(active.get(k) ?? []), r.serial]);
      }
      // The certificates of each key certified here (revoked or not), and those this group certifies as it goes.
      type Holder = { serial: string; residentCode: string; type: CertificateType; der: Buffer; reason: number | null };
      const holders = new Map<string, Holder[]>();
      if (keyList.length) {
        // Named (prepared once a connection): unnamed, each group's statement was planned for its 500 keys, the
        // planner estimating each one (≈ 0.2 ms a group measured with EXPLAIN; a generic plan ≈ 0.05). Columns
        // listed, not *: a prepared statement's result may not change shape under it.
        const held = await c.query<Holder & { certified_key: Buffer }>({
          name: "jpki_key_holders",
          text: 'SELECT serial, resident_code AS "residentCode", type, der, reason, certified_key FROM certificates WHERE certified_key = ANY($1::bytea[]) ORDER BY serial',
          values: [byteaArray(keyList)],
        });
        for (const h of held.rows) holders.set(h.certified_key.toString("hex"), [...(holders.get(h.certified_key.toString("hex")) ?? []), h]);
      }
      // The registry's resident-code changes from the holders' codes (rows.ts codeChangedTo): a holder filed under a
      // code the person has left, the CA side not having ingested the change yet, is the same person.
      const successors = new Map<string, string>();
      const inGroup = new Set(codes);
      let ask = [...new Set([...holders.values()].flat().map((h) => h.residentCode))].filter((code) => !inGroup.has(code));
      for (let round = 0; ask.length && round < 8; round++) {
        const found = await c.query<{ resident_code: string; successor_code: string }>(
          "SELECT resident_code, successor_code FROM residents WHERE resident_code = ANY($1::text[]) AND successor_code IS NOT NULL",
          [textArray(ask)],
        );
        for (const r of found.rows) successors.set(r.resident_code, r.successor_code);
        ask = found.rows.map((r) => r.successor_code).filter((code) => !successors.has(code) && !inGroup.has(code));
      }
      const inserts: IssuanceRecord[] = [];
      const revocations: Array<{ serial: string; at: number; source: string }> = [];
      const dirty = new Set<string>();
      const results = records.map((rec): IssuanceCommitResult => {
        const existing = rec.applicationId ? byApplication.get(rec.applicationId) : undefined;
        if (existing) return { status: "duplicate-application", existing: rows.get(existing)! };
        const now = residents.get(rec.residentCode);
        if (!now || now.status !== "active") return { status: "stale", why: "resident-gone" };
        if (now.ca_sequence > now.notice_sequence) return { status: "stale", why: "registry-behind" };
        const r = toResident(now);
        if (
          (rec.registrySequence !== undefined && rec.registrySequence !== Number(now.notice_sequence)) ||
          r.municipalityCode !== rec.municipalityCode ||
          !sameItems(r.fourItems, rec.fourItems)
        ) {
          return { status: "stale", why: "registry-changed" };
        }
        const certifiedKey = keys.get(rec)?.toString("hex");
        const sameKey = certifiedKey === undefined ? [] : (holders.get(certifiedKey) ?? []);
        for (const h of sameKey) {
          const why = sameCertifiedKey(h.der, rec.der) ? keyInUse(rec, h, (code) => successors.get(code)) : undefined;
          if (why) return { status: "key-in-use", serial: h.serial, why };
        }
        const k = key(rec.residentCode, rec.type);
        const superseded = active.get(k) ?? [];
        const source = `superseded:${rec.serial}`;
        for (const serial of superseded) {
          const row = rows.get(serial)!;
          rows.set(serial, { ...row, revocation: { revokedAt: rec.issuedAt, reason: 4, source } });
          revocations.push({ serial, at: rec.issuedAt.getTime(), source });
          dirty.add(row.caId);
        }
        active.set(k, [rec.serial]);
        if (certifiedKey !== undefined) holders.set(certifiedKey, [...sameKey, { serial: rec.serial, residentCode: rec.residentCode, type: rec.type, der: rec.der, reason: null }]);
        rows.set(rec.serial, committedRow(rec));
        if (rec.applicationId) byApplication.set(rec.applicationId, rec.serial);
        inserts.push(rec);
        return { status: "committed", superseded };
      });
      if (inserts.length) {
        // Both as binary COPY rows (pg-binary.ts says why not INSERT … unnest of text arrays). 発行情報 is
        // registered with the registry side in this same transaction: nothing is issued without it.
        await copyIn(c, COPY_CERTIFICATES, certificateRows(inserts, keys));
        await copyIn(c, COPY_REGISTRY_ISSUANCES, registryIssuanceRows(inserts));
      }
      let revokedIn: RevokedRow[] = [];
      if (revocations.length) {
        const done = await c.query<RevokedRow>(
          `UPDATE certificates c SET revoked_at = u.at, reason = 4, revocation_source = u.source
           FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS u(serial, at, source, n)
           WHERE c.serial = u.serial AND c.revoked_at IS NULL RETURNING ${REVOKED_RETURNING}`,
          [revocations.map((x) => x.serial), revocations.map((x) => x.at), revocations.map((x) => x.source)],
        );
        revokedIn = done.rows;
        await appendRevoked(c, revokedIn);
        await unregister(c, revokedIn);
      }
      // Lock order, as publishCrl takes them: the CA's crl_state row, then its crl_scopes rows.
      if (dirty.size) await c.query(SQL.bumpRevisions, [sortedUnique(dirty)]);
      await bumpScopes(c, revokedIn);
      if (inserts.length) {
        // One pair per partition, not one per certificate: a group of 500 names a few dozen, and the server's DISTINCT
        // sorted all 500 (with the unnamed statement's parse and plan, ≈ 1.1 µs of server CPU a certificate, measured).
        const scopes = new Map<string, { caId: string; municipalityCode: string }>();
        for (const x of inserts) scopes.set(`${x.caId}\u0000${x.municipalityCode}`, x);
        const pairs = [...scopes.values()];
        await c.query({ name: "jpki_register_scopes", text: SQL.registerScopes, values: [textArray(pairs.map((x) => x.caId)), textArray(pairs.map((x) => x.municipalityCode))] });
      }
      await this.#appendAudits(c, [issuanceAudit(records, results)]);
      return results;
    });
  }

  async getCertificate(serial: string): Promise<CertificateRow | undefined> {
    const [r] = await this.#query<CertRowDb>("reading a certificate", "SELECT * FROM certificates WHERE serial = $1", [serial]);
    return r ? toCertRow(r) : undefined;
  }

  async getCertificateOwner(serial: string): Promise<CertificateOwner | undefined> {
    const r = await this.#ownerLookups.get(serial);
    return r ? { caId: r.caId, residentCode: r.residentCode, der: r.der } : undefined;
  }

  async getCertificateByApplication(applicationId: string): Promise<CertificateRow | undefined> {
    const [r] = await this.#query<CertRowDb>("reading a certificate by application", "SELECT * FROM certificates WHERE application_id = $1", [applicationId]);
    return r ? toCertRow(r) : undefined;
  }

  async findCertificates(q: CertificateQuery): Promise<CertificateRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (v: unknown) => (args.push(v), `$${args.length}`);
    if (q.caId) where.push(`ca_id = ${arg(q.caId)}`);
    if (q.residentCode) where.push(`resident_code = ${arg(q.residentCode)}`);
    if (q.type) where.push(`type = ${arg(q.type)}`);
    if (q.status === "valid") where.push("revoked_at IS NULL");
    if (q.status === "revoked") where.push("revoked_at IS NOT NULL");
    const sql = `SELECT * FROM certificates ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY issued_at, serial LIMIT ${arg(q.limit ?? 1000)}`;
    return (await this.#query<CertRowDb>("searching certificates", sql, args)).map(toCertRow);
  }

  revoke(input: RevokeInput): Promise<CertificateRow> {
    return this.#tx("revoking", async (c) => {
      const row = (await c.query<CertRowDb>("SELECT * FROM certificates WHERE serial = $1 FOR NO KEY UPDATE", [input.serial])).rows[0];
      if (!row) throw new JpkiError("ERR_CERT_UNKNOWN", `no certificate with serial ${input.serial} in this workspace: check the serial (hex)`);
      if (row.revoked_at !== null) {
        throw new JpkiError("ERR_CERT_ALREADY_REVOKED", `certificate ${input.serial} was already revoked on ${new Date(Number(row.revoked_at)).toISOString()}`);
      }
      await c.query("UPDATE certificates SET revoked_at = $1, reason = $2, revocation_source = $3 WHERE serial = $4", [
        input.revokedAt.getTime(),
        input.reason,
        input.source,
        input.serial,
      ]);
      const blocks = new RevocationBlocks();
      blocks.add(row.ca_id, row.serial, input.revokedAt.getTime(), input.reason, Number(row.not_after), row.municipality_code);
      await appendBlocks(c, blocks.take());
      await unregister(c, [row]);
      await c.query(SQL.bumpRevisions, [[row.ca_id]]);
      await bumpScopes(c, [row]);
      await this.#appendAudits(c, [revokeAudit(input, row.ca_id)]);
      return toCertRow({ ...row, revoked_at: BigInt(input.revokedAt.getTime()), reason: input.reason, revocation_source: input.source });
    });
  }

  carryRevocations(entries: readonly CarriedRevocation[]): Promise<void> {
    return this.#tx("carrying revocations over", async (c) => {
      const cas = [...new Set(entries.map((e) => e.caId))];
      const knownCas = new Set((await c.query<{ id: string }>("SELECT id FROM cas WHERE id = ANY($1::text[])", [textArray(cas)])).rows.map((r) => r.id));
      const unknown = cas.find((id) => !knownCas.has(id));
      if (unknown !== undefined) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${unknown} in this store: its CRL entries cannot be carried over`);
      const held = (await c.query<{ serial: string }>("SELECT serial FROM certificates WHERE serial = ANY($1::text[]) LIMIT 1", [textArray(entries.map((e) => e.serial))])).rows[0];
      if (held) throw new JpkiError("ERR_INTERNAL", `certificate ${held.serial} is in this store: revoke it rather than carry its CRL entry over`);
      const municipalities = new Map(entries.map((e) => [e, carriedMunicipality(e)]));
      // Carried before: its entry is in the log already (a second one would list the serial twice); the first
      // stands. (A restore keeps the two together: restorePendingStatement empties a table the dump did not hold.)
      const before = new Set((await c.query<{ serial: string }>("SELECT serial FROM carried_revocations WHERE serial = ANY($1::text[])", [textArray(entries.map((e) => e.serial))])).rows.map((r) => r.serial));
      const fresh = [...new Map(entries.filter((e) => !before.has(e.serial)).map((e) => [e.serial, e])).values()];
      const blocks = new RevocationBlocks();
      for (const e of fresh) blocks.add(e.caId, e.serial, e.revokedAt.getTime(), e.reason, e.notAfter.getTime(), municipalities.get(e)!);
      await appendBlocks(c, blocks.take());
      // What partitions, deltas and OCSP read here (the log is what full CRLs read).
      await c.query(
        `INSERT INTO carried_revocations (ca_id, serial, municipality_code, revoked_at, reason, not_after)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::bigint[])`,
        [textArray(fresh.map((e) => e.caId)), textArray(fresh.map((e) => e.serial)), textArray(fresh.map((e) => municipalities.get(e)!)), int8Array(fresh.map((e) => e.revokedAt.getTime())), int4Array(fresh.map((e) => e.reason)), int8Array(fresh.map((e) => e.notAfter.getTime()))],
      );
      const dirty = [...new Set(fresh.map((e) => e.caId))].sort();
      if (dirty.length) await c.query(SQL.bumpRevisions, [dirty]);
      await bumpScopes(c, fresh.map((e) => ({ ca_id: e.caId, municipality_code: municipalities.get(e)! })).filter((r) => r.municipality_code !== ""));
    });
  }

  /**
   * The CA's revocation log, block after block in id order, in one READ ONLY snapshot: every block a committed
   * transaction appended before it, whatever the order of their ids (a sequence's, not commit order). Keyset
   * pages, each asked for before the previous one is handed on, so the server works while the builder signs
   * and writes; a page's size follows the blocks' (a few large blocks from notice batches, or many of one entry
   * from manual revocations) to hold about LOG_PAGE_ENTRIES entries. A block's metadata is fetched only when it
   * holds a certificate expired before the cut-off.
   *
   * Each page is a binary COPY (readLogPage), so the DER travels as the bytes it is: as hex text (the default
   * result format) 44 MB became 88 MB to decode in JS, a third of a second at 1,000,000 entries, and
   * node-postgres's `binary: true` results decode every field as UTF-8 before the type parser sees it, which
   * corrupts binary values (brianc/node-postgres#3495).
   */
  crlEntries(caId: string, opts: { expiredBefore: Date; known?: KnownBlocks }): AsyncIterable<EncodedEntries>;
  crlEntries(caId: string, opts: { expiredBefore: Date; withTotal: true; known?: KnownBlocks }): AsyncIterable<EncodedEntries | EntriesTotal>;
  async *crlEntries(caId: string, opts: { expiredBefore: Date; withTotal?: boolean; known?: KnownBlocks }): AsyncIterable<EncodedEntries | EntriesTotal> {
    const what = "reading the revocation log";
    const cutoff = opts.expiredBefore.getTime();
    const c = await this.#connect(what);
    let broken = false;
    let done = false;
    const page = (after: bigint, limit: number): Promise<LogBlock[]> => {
      const p = readLogPage(c, caId, cutoff, after, limit).catch((e: unknown) => Promise.reject(storeError(e, what)));
      // Handled now, awaited later: a page failing while the consumer holds the previous one must not be an
      // unhandled rejection (which ends the process).
      p.catch(() => undefined);
      return p;
    };
    let next: Promise<LogBlock[]> | undefined;
    try {
      try {
        await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      } catch (e) {
        throw storeError(e, what);
      }
      if (opts.known) {
        yield* knownBlockEntries(c, caId, cutoff, opts.known, opts.withTotal ?? false, (e) => storeError(e, what));
        await c.query("COMMIT").catch((e: unknown) => Promise.reject(storeError(endedBy(c, e), what)));
        done = true;
        return;
      }
      if (opts.withTotal) yield await logTotal(c, caId, cutoff).catch((e: unknown) => Promise.reject(storeError(e, what)));
      let limit = 16;
      let handedOut = 0;
      next = page(0n, limit);
      while (next) {
        const rows: LogBlock[] = await next;
        next = undefined;
        if (rows.length === limit) {
          const entries = rows.reduce((n, r) => n + r.entries, 0);
          limit = Math.max(1, Math.min(LOG_PAGE_BLOCKS, Math.ceil((LOG_PAGE_ENTRIES * rows.length) / Math.max(1, entries))));
          next = page(rows[rows.length - 1]!.id, limit);
        }
        for (const r of rows) {
          const kept = blockEntries(r.der, r.entries, r.minNotAfter, r.meta, cutoff);
          handedOut += r.der.length;
          if (kept) yield kept;
        }
        // A consumer told the total wrote the page out as it came (crl/builder.ts streamCrl): once a few megabytes
        // went that way, the pages still to come reuse their memory (store/young-generation.ts).
        if (opts.withTotal && handedOut >= STREAM_COLLECT_BYTES) (collectYoungGeneration(), (handedOut = 0));
      }
      // The connection may have been lost while the consumer held the last page: still the store's error.
      await c.query("COMMIT").catch((e: unknown) => Promise.reject(storeError(endedBy(c, e), what)));
      done = true;
    } finally {
      // A page asked for and not taken (the consumer stopped early) is awaited before the rollback.
      if (next) await next.catch(() => undefined);
      if (!done) await c.query("ROLLBACK").catch(() => (broken = true));
      c.release(broken);
    }
  }

  async *deltaCrlEntries(caId: string, baseNumber: bigint, opts: { expiredBefore: Date }): AsyncIterable<EncodedEntries> {
    const [base] = await this.#query<{ snap: string | null }>(
      "reading a delta CRL's base",
      "SELECT delta_snapshot::text AS snap FROM crls WHERE ca_id = $1 AND number = $2 AND scope = ''",
      [caId, baseNumber],
    );
    if (!base?.snap) throw new JpkiError("ERR_INTERNAL", `CRL ${caId} #${baseNumber} is no base a delta CRL can be built on`);
    // The log's blocks appended by transactions the base's snapshot does not see; those below its xmin it sees all
    // (the index bounds the scan). Blocks of before migration 23 have no xid: every base since sees them.
    const cutoff = opts.expiredBefore.getTime();
    const rows = await this.#query<{ entries: number; min_not_after: bigint; der: Buffer; meta: Buffer }>(
      "listing revocations after a delta CRL's base",
      `SELECT entries, min_not_after, der, meta FROM revocation_log
       WHERE ca_id = $1 AND logged_xid >= pg_snapshot_xmin($2::pg_snapshot) AND NOT pg_visible_in_snapshot(logged_xid, $2::pg_snapshot)
       ORDER BY id`,
      [caId, base.snap],
    );
    for (const r of rows) {
      const kept = blockEntries(r.der, r.entries, Number(r.min_not_after), r.meta, cutoff);
      if (kept) yield kept;
    }
  }

  /**
   * A pooled connection, or the store's error for `what` (ERR_STORE_UNREACHABLE when the server is gone). Taken for
   * a call jpki serve's watchdog watches (store/watchdog.ts currentCall, read as this begins), it is tied to it (#tie).
   */
  async #connect(what: string, call = currentCall()): Promise<PoolClient> {
    this.#cutLate();
    let c: PoolClient;
    try {
      c = await this.#pool.connect();
    } catch (e) {
      throw storeError(e, what);
    }
    if (call) this.#tie(c, call, what);
    return c;
  }

  /**
   * Ties a connection checked out for a watched call to it (holdFor) until it is released: once the call is declared
   * late, the connection may be cut (#cutLate). On a host that vanished silently (no FIN, no RST) it hung until TCP
   * keepalive ended it, ~10 min; the watchdog's probes, one per bound, took the pool's every connection so, and once
   * the database was back they waited for one, went late, and recovery waited for keepalive after all. A call late
   * already when the connection comes free sends nothing on it (lateCallError("not-sent")): no one waits for it,
   * and a write's deadline (WriteDeadline) has passed.
   */
  #tie(c: PoolClient, call: WatchedCall, what: string): void {
    const untie = holdFor(call, () => this.#lateHeld.set(c, what));
    if (!untie) {
      c.release();
      throw lateCallError(what, "not-sent");
    }
    TIES.set(c, untie);
  }

  /**
   * When the pool has no connection to give (every one checked out, as many as it may open), cuts the one held
   * longest by a call declared late: its socket destroyed, so its statement fails now (lateCallError
   * "connection-closed": a write sent may still commit, and says so) and the pool opens a fresh connection in its
   * place. Cut only then, not as the call goes late: a statement that merely waits (a lock held elsewhere) still
   * completes, and its outcome still ends the stall, while the pool has room.
   */
  #cutLate(): void {
    if (!this.#lateHeld.size || this.#pool.idleCount > 0 || this.#pool.totalCount < (this.#pool.options.max ?? 10)) return;
    const [c, what] = this.#lateHeld.entries().next().value!;
    this.#lateHeld.delete(c);
    LET_GO.set(c, lateCallError(what, "connection-closed"));
    (c as unknown as Client).connection.stream.destroy();
  }

  /**
   * Locks the CA's crl_state row (creating it first): CRL numbering and publication of one CA queue here. A store
   * a restore has not finished with ({@link RESTORE_PENDING}) refuses, read in the same statement: a process that
   * opened the database before the restore must not number a CRL from the backup's sequence — only the restore,
   * moving it on (`restoring`).
   */
  async #lockCrlState(c: PoolClient, caId: string, opts: { restoring?: boolean } = {}): Promise<bigint> {
    const row = (await c.query<{ o_revision: bigint; o_restore: string | null }>({ name: "jpki_crl_state_lock", text: "SELECT * FROM jpki_crl_state_lock($1)", values: [caId] })).rows[0]!;
    if (row.o_restore !== null && !opts.restoring) throw restoreIncomplete(row.o_restore);
    return row.o_revision;
  }

  async reserveCrl(caId: string, thisUpdate: Date, nextUpdate: Date, scope: CrlScope = FULL_SCOPE): Promise<CrlReservation> {
    // Every scope of a CA numbers from one sequence, serialized by the CA's crl_state row (crl/scope.ts).
    if (scope === DELTA_SCOPE) throw new JpkiError("ERR_INTERNAL", "a delta CRL is reserved with reserveDeltaCrl");
    // One statement, its own transaction (migration 24 says what it does), READ COMMITTED (READ_COMMITTED_OPTION):
    // the highest number is read after the wait for the CA's crl_state row.
    const [r] = await this.#query<{ o_number: bigint | null; o_revision: bigint; o_restore: string | null }>(
      "reserving a CRL number",
      { name: "jpki_crl_reserve", text: "SELECT * FROM jpki_crl_reserve($1, $2, $3, $4)" },
      [caId, thisUpdate.getTime(), nextUpdate.getTime(), scope],
    );
    if (r!.o_restore !== null) throw restoreIncomplete(r!.o_restore);
    return { number: r!.o_number!, revision: Number(r!.o_revision) };
  }

  skipCrlNumbers(caId: string, next: bigint, at: Date): Promise<{ readonly before: bigint; readonly next: bigint }> {
    return this.#tx("moving CRL numbers on", async (c) => {
      if (!(await c.query("SELECT 1 FROM cas WHERE id = $1", [caId])).rowCount) {
        throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this store: its CRL numbers cannot be moved on`);
      }
      // The CA's crl_state row, as every reservation takes it: no number is handed out meanwhile. Allowed while
      // a restore is pending: moving the numbering on is what the restore does before it finishes.
      await this.#lockCrlState(c, caId, { restoring: true });
      const max = (await c.query<{ n: bigint | null }>("SELECT max(number) AS n FROM crls WHERE ca_id = $1", [caId])).rows[0]!.n;
      const before = BigInt(max ?? 0n) + 1n;
      if (before >= next) return { before, next: before };
      await c.query(
        "INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope) VALUES ($1, $2, $3, $3, 0, 'superseded', '')",
        [caId, next - 1n, at.getTime()],
      );
      return { before, next };
    });
  }

  markCrlsDue(caId: string): Promise<void> {
    return this.#tx("marking CRLs due", async (c) => {
      if (!(await c.query("SELECT 1 FROM cas WHERE id = $1", [caId])).rowCount) {
        throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this store: its CRLs cannot be marked due`);
      }
      await markDue(c, caId);
    });
  }

  reserveDeltaCrl(caId: string, thisUpdate: Date, nextUpdate: Date): Promise<DeltaCrlReservation | undefined> {
    return this.#tx("reserving a delta CRL number", async (c) => {
      const revision = await this.#lockCrlState(c, caId);
      const base = (
        await c.query<{ number: bigint; next_update: bigint; ready: boolean }>(
          "SELECT number, next_update, delta_snapshot IS NOT NULL AS ready FROM crls WHERE ca_id = $1 AND scope = '' AND state = 'published' ORDER BY number DESC LIMIT 1",
          [caId],
        )
      ).rows[0];
      if (!base || !base.ready || Number(base.next_update) <= thisUpdate.getTime()) return undefined;
      const max = (await c.query<{ n: bigint | null }>("SELECT max(number) AS n FROM crls WHERE ca_id = $1", [caId])).rows[0]!.n;
      const number = (max ?? 0n) + 1n;
      const next = new Date(Math.min(nextUpdate.getTime(), Number(base.next_update)));
      await c.query(
        "INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope, base_number) VALUES ($1, $2, $3, $4, $5, 'reserved', $6, $7)",
        [caId, number, thisUpdate.getTime(), next.getTime(), revision, DELTA_SCOPE, base.number],
      );
      return { number, revision: Number(revision), baseNumber: base.number, nextUpdate: next };
    });
  }

  deltaCrlStatus(): Promise<DeltaCrlStatus[]> {
    return this.#tx(
      "reading delta CRL status",
      async (c) => {
        type Row = CrlRowDb & { ready: boolean; revision: bigint };
        const latest = async (scope: CrlScope) =>
          new Map(
            (
              await c.query<Row>(
                `SELECT c.*, c.delta_snapshot IS NOT NULL AS ready FROM crls c
                   JOIN (SELECT ca_id, max(number) AS n FROM crls WHERE state = 'published' AND scope = $1 GROUP BY ca_id) m ON m.ca_id = c.ca_id AND m.n = c.number`,
                [scope],
              )
            ).rows.map((r) => [r.ca_id, r]),
          );
        const bases = await latest(FULL_SCOPE);
        const deltas = await latest(DELTA_SCOPE);
        const revisions = new Map((await c.query<{ ca_id: string; revision: bigint }>("SELECT ca_id, revision FROM crl_state")).rows.map((r) => [r.ca_id, r.revision]));
        return (await c.query<{ id: string }>(SQL.listCas)).rows.map(({ id }) => {
          const b = bases.get(id);
          const d = deltas.get(id);
          return {
            caId: id,
            base: b && toCrlRecord(b),
            deltaReady: b?.ready === true,
            delta: d && toCrlRecord(d),
            pending: !d || (revisions.get(id) ?? 0n) > BigInt(d.revision),
          };
        });
      },
      { begin: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" },
    );
  }

  publishCrl(rec: PublishedCrlRecord, install: () => void): Promise<boolean> {
    return this.#tx("recording a published CRL", (c) => this.#publishOne(c, rec, install));
  }

  publishCrls(crls: ReadonlyArray<{ readonly rec: PublishedCrlRecord; readonly install: () => void }>, settle: () => void): Promise<Array<boolean | { readonly error: unknown }>> {
    return this.#tx("recording published CRLs", async (c) => {
      const out: Array<boolean | { readonly error: unknown }> = [];
      // An install that throws comes before its CRL's record is written (#publishOne): the others go on.
      for (const { rec, install } of crls) {
        try {
          out.push(await this.#publishOne(c, rec, guardedInstall(install)));
        } catch (e) {
          if (!(e instanceof CrlInstallFailed)) throw e;
          out.push({ error: e.error });
        }
      }
      settle();
      return out;
    });
  }

  /** One CRL's publication, in the caller's transaction (publishCrl, publishCrls). */
  async #publishOne(c: PoolClient, rec: PublishedCrlRecord, install: () => void): Promise<boolean> {
    const scope = rec.scope ?? FULL_SCOPE;
    // The CA's crl_state row locked, the reservation checked, and one superseded meanwhile marked so (migration 24).
    const row = (
      await c.query<{ o_state: string | null; o_revision: bigint | null; o_restore: string | null }>({
        name: "jpki_crl_publish_check",
        text: "SELECT * FROM jpki_crl_publish_check($1, $2, $3)",
        values: [rec.caId, rec.number, scope],
      })
    ).rows[0]!;
    if (row.o_restore !== null) throw restoreIncomplete(row.o_restore);
    if (row.o_state === "unreserved") throw new JpkiError("ERR_INTERNAL", `CRL ${rec.caId} #${rec.number} was not reserved for this scope`);
    if (row.o_state === "superseded") return false;
    // The files go into place while this transaction holds the CA's crl_state row, so two publishers of
    // one CA cannot interleave their renames: the file on disk only ever moves to a higher number.
    install();
    await c.query({
      name: "jpki_crl_publish_finish",
      text: `SELECT jpki_crl_publish_finish($7, $8, $9, $10, $11, $12, $13, ${AUDIT_APPEND_ARGS})`,
      values: [...this.#auditColumns([crlAudit(rec, scope)]), rec.caId, rec.number, scope, row.o_revision, rec.entries, rec.path, rec.sha256],
    });
    return true;
  }

  syncCommitted(): Promise<void> {
    // Each commit was durable when it returned (synchronous_commit on, the server's default).
    return Promise.resolve();
  }

  async ping(): Promise<void> {
    // through #query, as any read: tied to the watched call it is for, so one hung on a vanished host can be cut
    await this.#query("checking that the store answers", "SELECT 1");
  }

  async caRevisions(): Promise<Map<string, number>> {
    const rows = await this.#query<{ ca_id: string; revision: bigint }>("reading CA revisions", "SELECT ca_id, revision FROM crl_state");
    return new Map(rows.map((r) => [r.ca_id, Number(r.revision)]));
  }

  certificateStatus(serial: string): Promise<CertificateStatusRow | undefined> {
    return this.#statusLookups.get(serial);
  }

  /**
   * OCSP's fresh answers (a nonce, several CertIDs) read a status each: the reads of one event-loop turn, or made
   * while one is running, share one query, not a round trip each (a round trip costs the serving thread ≈ 280 µs,
   * as the owner lookups found), so concurrent nonce requests do not queue on the pool one query apiece.
   * A certificate the store has no row of may still be one whose CRL entry a restore carried over: revoked.
   * Revoked first: a carried row beside an unrevoked row of the certificate (an older backup brought it back)
   * still stands, as on the CRLs (a revocation is never undone).
   */
  readonly #statusLookups = new Coalescer<CertificateStatusRow>(async (serials) => {
    const rows = await this.#query<{ serial: string; ca_id: string; revoked_at: bigint | null; reason: number | null }>(
      "reading certificates' statuses",
      {
        name: "jpki_certificate_statuses",
        text: `SELECT DISTINCT ON (serial) serial, ca_id, revoked_at, reason FROM (
                 SELECT serial, ca_id, revoked_at, reason FROM certificates WHERE serial = ANY($1::text[])
                 UNION ALL SELECT serial, ca_id, revoked_at, reason FROM carried_revocations WHERE serial = ANY($1::text[])) s
               ORDER BY serial, revoked_at IS NULL`,
      },
      [textArray(serials)],
    );
    return new Map(rows.map((r) => [r.serial, {
      caId: r.ca_id,
      revocation: r.revoked_at === null ? undefined : { revokedAt: new Date(Number(r.revoked_at)), reason: Number(r.reason ?? 0) },
    }]));
  });

  async putOcspResponder(rec: OcspResponderRecord, o: { readonly unlessRewrapped?: WrappedKeysSeen } = {}): Promise<void> {
    const seen = o.unlessRewrapped;
    await this.#tx(
      "saving an OCSP signing certificate",
      async (c) => {
        if (seen) {
          // Read FOR SHARE, in the order a rewrap (replaceCaKeys) updates them: the CA keys in listCas order, then
          // their signers. A rewrap committing meanwhile is waited for and its keys are what this reads; one
          // starting later waits for this commit, then finds this CA's signer renewed and replaces nothing.
          const cas = await c.query<{ id: string; key_pem: string }>(`${SQL.listCas} FOR SHARE`);
          const signers = await c.query<{ ca_id: string; serial: string; key_pem: string }>(
            "SELECT o.ca_id, o.serial, o.key_pem FROM ocsp_responders o JOIN cas c ON c.id = o.ca_id ORDER BY c.prefecture, c.purpose DESC, c.id FOR SHARE OF o",
          );
          const [changed] = rewrappedKeys(
            seen,
            cas.rows.map((r) => ({ id: r.id, encryptedKeyPem: r.key_pem })),
            signers.rows.map((r) => ({ caId: r.ca_id, serial: r.serial, encryptedKeyPem: r.key_pem })),
          );
          if (changed) throw keysRewrapped(changed.what, `the new OCSP signing certificate of CA ${rec.caId} was not stored`, { caId: rec.caId });
        }
        await c.query(
          `INSERT INTO ocsp_responders (ca_id, serial, cert_der, key_pem, not_before, not_after) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (ca_id) DO UPDATE SET serial = excluded.serial, cert_der = excluded.cert_der, key_pem = excluded.key_pem,
             not_before = excluded.not_before, not_after = excluded.not_after`,
          [rec.caId, rec.serial, rec.certificateDer, rec.encryptedKeyPem, rec.notBefore.getTime(), rec.notAfter.getTime()],
        );
        await this.#appendAudits(c, [ocspAudit(rec)]);
      },
      { retries: DEADLOCK_RETRIES },
    );
  }

  async ocspResponders(): Promise<OcspResponderRecord[]> {
    return (await this.#query("reading OCSP signing certificates", "SELECT * FROM ocsp_responders ORDER BY ca_id")).map(toOcspResponder);
  }

  async latestCrl(caId: string, scope: CrlScope = FULL_SCOPE): Promise<CrlRecord | undefined> {
    const [r] = await this.#query<CrlRowDb>(
      "reading the latest CRL",
      "SELECT * FROM crls WHERE ca_id = $1 AND scope = $2 AND state = 'published' ORDER BY number DESC LIMIT 1",
      [caId, scope],
    );
    return r ? toCrlRecord(r) : undefined;
  }

  async crlPartitionEntries(caId: string, partitions: readonly string[], opts: { expiredBefore: Date }): Promise<Map<string, EncodedEntries[]>> {
    // From the revocation log, as full CRLs (and SQLite's partitions): the CA's blocks in one read, each split into
    // runs of the wanted partitions' entries (splitBlockByPartition), referenced, not copied or encoded again.
    const out = new Map<number, EncodedEntries[]>(partitions.map((p) => [municipalityKey(p), []]));
    if (!partitions.length) return new Map();
    const what = "reading the revocation log of partitions";
    const c = await this.#connect(what);
    let broken = false;
    try {
      let blocks: LogBlock[];
      try {
        blocks = await readLogPage(c, caId, opts.expiredBefore.getTime(), 0n, 2 ** 31 - 1, { meta: true });
      } catch (e) {
        broken = true; // a COPY that failed half-way leaves the connection in no state to reuse
        throw storeError(e, what);
      }
      const cutoff = opts.expiredBefore.getTime();
      for (const b of blocks) splitBlockByPartition(b.der, b.entries, b.minNotAfter, b.meta!, cutoff, out);
    } finally {
      c.release(broken);
    }
    return new Map(partitions.map((p) => [p, out.get(municipalityKey(p))!]));
  }

  async crlScopeStatus(): Promise<CrlScopeStatus[]> {
    // One statement, so one snapshot by itself: no transaction around it (it took BEGIN and COMMIT, two more round
    // trips of every `jpki crl generate`).
    const rows = await this.#query<CrlRowDb & { dirty: boolean; number: bigint | null }>(
      "reading CRL status per scope",
      `SELECT s.ca_id, s.scope,
             (s.revision > s.published_revision OR EXISTS (SELECT 1 FROM crls r WHERE r.ca_id = s.ca_id AND r.scope = s.scope AND r.state = 'reserved'
                AND r.number > coalesce(s.published_number, 0))) AS dirty,
             c.number, c.this_update, c.next_update, c.entries, c.path, c.sha256, c.state
           FROM (SELECT ca_id, scope, revision, published_revision, published_number FROM crl_scopes
                 UNION ALL SELECT id, 'arl', 0, 0, NULL FROM cas WHERE NOT EXISTS (SELECT 1 FROM crl_scopes x WHERE x.ca_id = cas.id AND x.scope = 'arl')) s
           LEFT JOIN crls c ON c.ca_id = s.ca_id AND c.number = s.published_number
           ORDER BY s.ca_id, s.scope`,
    );
    return rows.map((r) => ({ caId: r.ca_id, scope: r.scope, dirty: r.dirty, latest: r.number === null ? undefined : toCrlRecord(r) }));
  }

  crlStatus(): Promise<CrlStatus[]> {
    // One snapshot for the three reads, as SQLite's single read transaction gives.
    return this.#tx(
      "reading CRL status",
      async (c) => {
      const latest = new Map<string, CrlRecord>();
      const published = await c.query<CrlRowDb>(
        `SELECT c.* FROM crls c JOIN (SELECT ca_id, max(number) AS n FROM crls WHERE state = 'published' AND scope = '' GROUP BY ca_id) m
           ON m.ca_id = c.ca_id AND m.n = c.number`,
      );
      for (const r of published.rows) latest.set(r.ca_id, toCrlRecord(r));
      const dirty = new Set((await c.query<{ ca_id: string }>(SQL.dirty)).rows.map((r) => r.ca_id));
      return (await c.query<{ id: string }>(SQL.listCas)).rows.map((r) => ({ caId: r.id, latest: latest.get(r.id), dirty: dirty.has(r.id) }));
      },
      { begin: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" },
    );
  }

  async loadNoticeContext(keys: NoticeContextKeys): Promise<NoticeContext> {
    const c = await this.#connect("reading notice context");
    try {
      return await this.#noticeContext(c, keys);
    } catch (e) {
      throw storeError(e, "reading notice context");
    } finally {
      c.release();
    }
  }

  /**
   * Set-based: one statement per kind of fact for the whole batch, `= ANY($1)` over the keys. With `lock`
   * (committing), codes found on the way are locked before they are read, and the unrevoked certificates are
   * row-locked, so a manual revocation cannot slip in between this read and the batch's own.
   */
  async #noticeContext(c: PoolClient, keys: NoticeContextKeys, lock?: (codes: string[]) => Promise<void>, rowsOf?: Map<string, CertifiedTid>): Promise<NoticeContext> {
    // A held resident-code change may be applied by this batch (its gap filled): the notices held under its
    // new code must then be in the context too, or they would wait for ever. Follow such changes, locking
    // each new code before reading under it.
    const codeSet = new Set(keys.residentCodes);
    const registryCodes = new Set(keys.registryCodes);
    // Applied changes are followed too (as the SQLite store: NoticeContext.codeChanges).
    const codeChanges = new Map<string, string>();
    const noticeIds = textArrayLiteral([...keys.noticeIds]);
    // The reads go as one simple-protocol message (NOTICE_CONTEXT_READS), one round trip for what were eight,
    // each statement still its own snapshot taken after the locks before it: the held notices and code changes
    // that say whether more codes are to be locked, and the facts the decision reads. Usually no new code turns
    // up and that is all (bar the registry records of a few); when one does, it is locked and every read is made
    // again over the larger set (the unrevoked certificates already row-locked stay so, which changes nothing).
    let reads: NoticeContextReads;
    for (;;) {
      const codes = textArrayLiteral([...codeSet]);
      reads = noticeContextReads(await c.query(noticeContextReads.text(codes, noticeIds, lock !== undefined)));
      const next: string[] = [];
      for (const r of reads.held) {
        if (r.kind !== "resident-code-change") continue;
        const to = (JSON.parse(r.body) as { newResidentCode?: string }).newResidentCode;
        registryCodes.add(r.resident_code);
        if (to) registryCodes.add(to);
        if (to && !codeSet.has(to)) (codeSet.add(to), next.push(to));
      }
      for (const r of reads.changes) {
        const to = (JSON.parse(r.body) as { newResidentCode?: string }).newResidentCode;
        if (!to) continue;
        codeChanges.set(r.resident_code, to);
        if (!codeSet.has(to)) (codeSet.add(to), next.push(to));
      }
      if (!next.length) break;
      if (lock) await lock(next);
    }
    const codes = [...codeSet];
    const known = new Map<string, { status: NoticeStatus; body: string; receivedAt: Date; appliedAt?: Date }>();
    for (const r of reads.ids) {
      known.set(r.notice_id, { status: r.status, body: r.body, receivedAt: new Date(Number(r.received_at)), ...(r.applied_at === null ? {} : { appliedAt: new Date(Number(r.applied_at)) }) });
    }
    const lastSequence = new Map<string, number>();
    for (const r of reads.seqs) lastSequence.set(r.resident_code, Number(r.last_sequence));
    const held = new Map<string, StoredNotice[]>();
    for (const r of reads.held) {
      const list = held.get(r.resident_code) ?? [];
      list.push(toStoredNotice(r));
      held.set(r.resident_code, list);
    }
    const certificates = new Map<string, CertifiedRow[]>();
    const everCertified = new Set<string>();
    for (const r of reads.certified) {
      everCertified.add(r.resident_code);
      if (r.serial === null) continue; // certified once, every certificate revoked
      rowsOf?.set(r.serial, { tid: r.tid!, residentCode: r.resident_code });
      const list = certificates.get(r.resident_code) ?? [];
      // one shape per type, as the SQLite store builds them: issuedAtSequence there, undefined where not kept
      const seq = r.registry_sequence === null ? undefined : Number(r.registry_sequence);
      const { serial, ca_id: caId, type, resident_code: residentCode } = r;
      list.push(
        type === "signature"
          ? { serial, caId, type, residentCode, fourItems: { name: r.name!, address: r.address!, birthDate: r.birth_date!, gender: r.gender as Gender }, issuedAtSequence: seq }
          : { serial, caId, type, residentCode, issuedAtSequence: seq },
      );
      certificates.set(r.resident_code, list);
    }
    // The registry's record only where the decision looks at it (as the SQLite store: NoticeContext.residents).
    const wanted = codes.filter((code) => registryCodes.has(code) || !(everCertified.has(code) || lastSequence.has(code)));
    const residentRows = wanted.length
      ? await c.query<{ resident_code: string; notice_sequence: bigint; successor_code: string | null }>(
          "SELECT resident_code, notice_sequence, successor_code FROM residents WHERE resident_code = ANY($1::text[])",
          [textArray(wanted)],
        )
      : { rows: [] };
    const residents = new Map(residentRows.rows.map((r) => [r.resident_code, Number(r.notice_sequence)]));
    const successors = new Map(residentRows.rows.flatMap((r) => (r.successor_code === null ? [] : [[r.resident_code, r.successor_code] as [string, string]])));
    return { known, lastSequence, held, certificates, residents, successors, everCertified, codeChanges };
  }

  commitNoticeBatch<T extends { readonly commit: NoticeCommit }>(keys: NoticeContextKeys, decide: (ctx: NoticeContext) => T): Promise<T & { readonly revoked: number }> {
    // The batch's resident codes are locked before its context is read, so no other writer can change what
    // it decides from between the read and the commit.
    return this.#residentTx("committing a notice batch", keys.residentCodes, async (c, locks) => {
      // where each unrevoked certificate the context read (and row-locked) lies: the revoking update goes there
      const rowsOf = new Map<string, CertifiedTid>();
      const decided = decide(await this.#noticeContext(c, keys, (codes) => locks.extend(codes), rowsOf));
      const b = decided.commit;
      await locks.extend([...b.notices.map((n) => n.residentCode), ...b.sequences.map((q) => q.residentCode), ...b.relinks.flatMap((r) => [r.from, r.to])]);
      const at = b.at.getTime();
      // The per-resident index's mark, locked against the indexer (#indexDisclosures) to this commit: the records
      // up to it are moved by their index rows, those above it by the table's own rows; then the index rows.
      const mark = b.relinks.length ? await this.#disclosuresIndexedThrough("committing a notice batch", c, true) : 0;
      if (relinksSetwise(b.relinks)) {
        // Seven statements for the batch's relinks (three of them the disclosure log's), not seven per relink: a notice run at 1M residents had ≈ 5,000
        // code changes per 100,000 notices, 25,000 round trips. Set-wise equals one by one only when no relink
        // feeds another (a code moved on again in the same batch) and no two share a code: relinksSetwise.
        // The seven go as one simple-protocol message (their arrays as literals): one round trip, each statement
        // seeing the ones before it as before.
        const from = textArrayLiteral(b.relinks.map((r) => r.from));
        const to = textArrayLiteral(b.relinks.map((r) => r.to));
        await c.query(
          [
            `UPDATE certificates c SET resident_code = u.t FROM unnest(${from}, ${to}) AS u(f, t) WHERE c.resident_code = u.f`,
            `DELETE FROM resident_sequences s USING unnest(${from}, ${to}) AS u(f, t)
             WHERE s.resident_code = u.t AND EXISTS (SELECT 1 FROM resident_sequences o WHERE o.resident_code = u.f)`,
            `UPDATE resident_sequences s SET resident_code = u.t FROM unnest(${from}, ${to}) AS u(f, t) WHERE s.resident_code = u.f`,
            `UPDATE notices n SET resident_code = u.t FROM unnest(${from}, ${to}) AS u(f, t) WHERE n.resident_code = u.f AND n.status = 'held'`,
            ...relinkDisclosures(from, to, mark),
          ].join(";\n"),
        );
      } else for (const r of b.relinks) {
        await c.query("UPDATE certificates SET resident_code = $1 WHERE resident_code = $2", [r.to, r.from]);
        // like SQLite's UPDATE OR REPLACE: the moved sequence replaces one already under the new code
        await c.query(
          "DELETE FROM resident_sequences WHERE resident_code = $1 AND EXISTS (SELECT 1 FROM resident_sequences WHERE resident_code = $2)",
          [r.to, r.from],
        );
        await c.query("UPDATE resident_sequences SET resident_code = $1 WHERE resident_code = $2", [r.to, r.from]);
        await c.query("UPDATE notices SET resident_code = $1 WHERE resident_code = $2 AND status = 'held'", [r.to, r.from]);
        // The disclosure log follows the certificates it names: the resident asks under the code held now.
        for (const q of relinkDisclosures("ARRAY[$2::text]", "ARRAY[$1::text]", mark)) await c.query(q, [r.to, r.from]);
      }
      let revoked = 0;
      let revokedIn: RevokedRow[] = [];
      // A serial named twice is revoked by its first mention, as one-by-one updates would.
      const first = new Map<string, NoticeCommit["revocations"][number]>();
      for (const r of b.revocations) if (!first.has(r.serial)) first.set(r.serial, r);
      const firstRevocations = [...first.values()];
      if (firstRevocations.length) {
        // A row whose certificates this batch moved to another code (a relink, above) has a new ctid: found by serial.
        const moved = new Set(b.relinks.map((r) => r.from));
        const tids = firstRevocations.map((x) => {
          const at = rowsOf.get(x.serial);
          return at && !moved.has(at.residentCode) ? at.tid : null;
        });
        const r = await c.query<RevokedRow>(REVOKE_BY_TID, [
          at,
          textArray(firstRevocations.map((x) => x.serial)),
          int4Array(firstRevocations.map((x) => x.reason)),
          textArray(firstRevocations.map((x) => x.source)),
          textArray(tids),
        ]);
        revokedIn = r.rows;
        // A row not where the read left it (never so while its lock holds, but the answer must not depend on it):
        // by serial, as every revocation was before.
        const done = new Set(r.rows.map((x) => x.serial));
        const again = firstRevocations.flatMap((x, i) => (tids[i] !== null && !done.has(x.serial) ? [{ ...x, n: i + 1 }] : []));
        if (again.length) {
          const r2 = await c.query<RevokedRow>(REVOKE_BY_SERIAL, [
            at,
            textArray(again.map((x) => x.serial)),
            int4Array(again.map((x) => x.reason)),
            textArray(again.map((x) => x.source)),
            int8Array(again.map((x) => x.n)),
          ]);
          revokedIn = [...revokedIn, ...r2.rows];
        }
        revoked = revokedIn.length;
        // The revoked certificates' registered issuance information (発行情報) stays, as SQLite's notice batches
        // leave it: the reads filter it out (REGISTERED_UNREVOKED) and sweepRegisteredIssuances deletes it in key
        // order. Deleted here, each was a random heap page written (its first change after a checkpoint a full
        // page image in the WAL): ≈ 13 µs of server time per revocation (pg_stat_statements, 1M residents).
      }
      const notices = foldNotices(b.notices);
      const sequences = new Map<string, number>();
      for (const q of b.sequences) sequences.set(q.residentCode, Math.max(q.last, sequences.get(q.residentCode) ?? q.last));
      if (revokedIn.length || notices.length || sequences.size || b.dirtyCas.length) {
        // The revoked rows' log blocks, the notices, the sequences and the CAs' revisions: one statement
        // (NOTICE_BATCH_WRITES), where they were four in turn. Of the rows it locks only crl_state's are ever
        // waited for by another writer (a CRL publication), and they are taken in key order as before, after the
        // certificates' and before the partitions' (bumpScopes): the lock order publishCrl keeps.
        const blocks = revocationBlocksOf(revokedIn);
        await c.query({
          name: "jpki_notice_batch_writes",
          text: NOTICE_BATCH_WRITES,
          values: [
            blocks.map((x) => x.caId),
            blocks.map((x) => x.entries),
            blocks.map((x) => x.minNotAfter),
            ...packed(blocks.map((x) => x.der)),
            ...packed(blocks.map((x) => x.meta)),
            at,
            textArray(notices.map((n) => n.noticeId)),
            textArray(notices.map((n) => n.residentCode)),
            int8Array(notices.map((n) => n.sequence)),
            textArray(notices.map((n) => n.kind)),
            textArray(notices.map((n) => n.status)),
            // each body is a notice's JSON: a text array escaped every one of its quotes
            textArray(notices.map((n) => n.body)),
            int4Array(notices.map((n) => n.revocations)),
            textArray([...sequences.keys()]),
            int8Array([...sequences.values()]),
            textArray(sortedUnique(b.dirtyCas)),
          ],
        });
      }
      // Lock order, as publishCrl takes them: the CA's crl_state row, then its crl_scopes rows (a partition's
      // revision bumped first here deadlocked against a publisher of the same CA).
      await bumpScopes(c, revokedIn);
      await this.#appendAudits(c, [noticeBatchAudit(b, revoked)]);
      return { ...decided, revoked };
    });
  }

  async listHeldNotices(limit = 1000, after?: HeldNoticeKey): Promise<StoredNotice[]> {
    return (
      after
        ? await this.#query<NoticeRowDb>(
            "listing held notices",
            "SELECT * FROM notices WHERE status = 'held' AND (resident_code, sequence) > ($2, $3) ORDER BY resident_code, sequence LIMIT $1",
            [limit, after.residentCode, after.sequence],
          )
        : await this.#query<NoticeRowDb>("listing held notices", "SELECT * FROM notices WHERE status = 'held' ORDER BY resident_code, sequence LIMIT $1", [limit])
    ).map(toStoredNotice);
  }

  async getNotice(noticeId: string): Promise<StoredNotice | undefined> {
    const [r] = await this.#query<NoticeRowDb>("reading a notice", "SELECT * FROM notices WHERE notice_id = $1", [noticeId]);
    return r ? toStoredNotice(r) : undefined;
  }

  async dirtyCas(): Promise<string[]> {
    return (await this.#query<{ ca_id: string }>("listing CAs awaiting a CRL", SQL.dirty)).map((r) => r.ca_id);
  }

  async revocationSummary(): Promise<Array<{ serial: string; caId: string; reason: number; source: string }>> {
    const rows = await this.#query<{ serial: string; ca_id: string; reason: number; revocation_source: string }>(
      "summarising revocations",
      "SELECT serial, ca_id, reason, revocation_source FROM certificates WHERE revoked_at IS NOT NULL ORDER BY serial",
    );
    return rows.map((r) => ({ serial: r.serial, caId: r.ca_id, reason: r.reason, source: r.revocation_source }));
  }

  // ---- Registered signature verifiers (署名検証者) ----

  async putVerifier(v: VerifierRecord): Promise<void> {
    try {
      await this.#tx("registering a verifier", async (c) => {
        await c.query("INSERT INTO verifiers (id, name, kind, token_sha256, cert_sha256, cert_not_after, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", verifierValues(v));
        await this.#appendAudits(c, [verifierAudit(v)]);
      });
    } catch (e) {
      if (pgCode(e instanceof JpkiError && e.code === "ERR_STORE" ? e.cause : e) === "23505") {
        throw new JpkiError("ERR_VERIFIER_INVALID", `verifier ${v.id} or one of its credentials is already registered: register it again for new credentials`, { cause: e });
      }
      throw storeError(e, "registering a verifier");
    }
  }

  async getVerifier(id: string): Promise<VerifierRecord | undefined> {
    const r = await this.#query<VerifierRowDb>("reading a verifier", "SELECT * FROM verifiers WHERE id = $1", [id]);
    return r[0] ? toVerifier(r[0]) : undefined;
  }

  async listVerifiers(): Promise<VerifierRecord[]> {
    return (await this.#query<VerifierRowDb>("listing verifiers", "SELECT * FROM verifiers ORDER BY id")).map(toVerifier);
  }

  revokeVerifier(id: string, at: Date): Promise<VerifierRecord> {
    return this.#tx("revoking a verifier", async (c) => {
      const r = (await c.query<VerifierRowDb>("SELECT * FROM verifiers WHERE id = $1 FOR UPDATE", [id])).rows[0];
      if (!r) throw new JpkiError("ERR_VERIFIER_UNKNOWN", `no registered verifier ${id}: see 'jpki verifier list'`);
      if (r.revoked_at !== null) throw new JpkiError("ERR_VERIFIER_REVOKED", `verifier ${id} was already revoked on ${new Date(Number(r.revoked_at)).toISOString()}`);
      await c.query("UPDATE verifiers SET revoked_at = $1 WHERE id = $2", [at.getTime(), id]);
      await this.#appendAudits(c, [{ action: "verifier.revoke", subject: id, detail: { at } }]);
      return toVerifier({ ...r, revoked_at: at.getTime() });
    });
  }

  async initVerifierCa(ca: VerifierCaRecord): Promise<VerifierCaRecord> {
    await this.#tx("saving the verifier CA", async (c) => {
      const made = await c.query("INSERT INTO verifier_ca (id, cert_der, key_pem, created_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING", [
        ca.certificateDer,
        ca.encryptedKeyPem,
        ca.createdAt.getTime(),
      ]);
      if (made.rowCount === 1) await this.#appendAudits(c, [{ action: "verifier-ca.create", subject: "verifier-ca", detail: { certificateSha256: auditDigest(ca.certificateDer) } }]);
    });
    return (await this.getVerifierCa())!;
  }

  async getVerifierCa(): Promise<VerifierCaRecord | undefined> {
    const r = await this.#query<{ cert_der: Buffer; key_pem: string; created_at: bigint }>("reading the verifier CA", "SELECT * FROM verifier_ca WHERE id = 1");
    return r[0] ? toVerifierCa(r[0]) : undefined;
  }

  // The deadline is kept as appendDisclosures keeps it: through the watched call this runs in (#tie).
  async recordVerifierFetches(fetches: readonly VerifierFetch[], _opts?: WriteDeadline): Promise<void> {
    if (!fetches.length) return;
    // One statement for the whole batch (unnest'ed arrays): one round trip, one commit.
    await this.#query(
      "recording verifier fetches",
      `INSERT INTO verifier_fetches (verifier_id, scope, path, status, at, count, last_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::int[], $7::bigint[])`,
      [fetches.map((f) => f.verifierId), fetches.map((f) => f.scope), fetches.map((f) => f.path), fetches.map((f) => f.status), fetches.map((f) => f.at.getTime()), fetches.map((f) => f.count), fetches.map((f) => f.lastAt.getTime())],
    );
  }

  async listVerifierFetches(q: { verifierId?: string; limit?: number; newest?: boolean } = {}): Promise<VerifierFetch[]> {
    const limit = q.limit ?? 1000;
    const order = q.newest ? "DESC" : "ASC";
    const rows =
      q.verifierId === undefined
        ? await this.#query<VerifierFetchRowDb>("reading verifier fetches", `SELECT * FROM verifier_fetches ORDER BY id ${order} LIMIT $1`, [limit])
        : await this.#query<VerifierFetchRowDb>("reading verifier fetches", `SELECT * FROM verifier_fetches WHERE verifier_id = $1 ORDER BY id ${order} LIMIT $2`, [q.verifierId, limit]);
    return rows.map(toVerifierFetch);
  }

  // The deadline (WriteDeadline) is kept through the watched call this runs in (#tie): a connection that comes
  // free past it sends nothing. A statement sent cannot be taken back: its connection is cut once late (when the pool needs it), and it
  // may still commit (lateCallError "connection-closed", which the disclosure log counts as abandoned).
  async appendDisclosures(records: readonly DisclosureAppend[], _opts?: WriteDeadline): Promise<ReadonlyArray<DisclosureOwner | undefined>> {
    if (!records.length) return [];
    const col = <T>(f: (d: DisclosureAppend) => T) => records.map(f);
    // One statement, so one round trip and its own transaction: the disclosures and the verifiers' audit records
    // are kept together or not at all. The validation API writes a group per few answers: five round trips
    // (BEGIN, the insert, the audit head, the audit records, COMMIT) were ≈ 4 writes per answer more on the
    // serving thread and as many statements for the server. The audit function is called over the insert's
    // count, so the rows are in before the audit head is locked (the last lock, as #appendAudits takes it).
    // The answered certificates' owners are resolved in it too (o): a read of them before, a statement of its
    // own per group, was ≈ 16 µs of PostgreSQL's CPU and ≈ 20 of the serving thread's per answer (bench api).
    // A stored certificate's tbsCertificate starts after its outer header: 2 octets and the long form's count
    // (pki/tbs.ts storedTbsIs, the same rule SQLite applies).
    // The owners are joined in the CTE the insert reads (o: every answer, whether owned and by whom), not in
    // one of their own joined back to the answers by ordinal: that was a second materialized copy of the answers
    // (their tbsCertificates among them) and a hash join per statement, measured (bench DB, generic plan) at
    // 13 answers ≈ 5 % and at 100 ≈ 30 % of the statement's server CPU.
    // Named, so each connection parses and plans it once.
    const audits = queryAudits([], records);
    // One verifier's answers (one audit record): the record is chained in the statement itself (migration 32),
    // not by jpki_audit_append — the function call and its row lock (a WAL record of its own) before the update
    // were ≈ 40–140 µs of the server's CPU per group of 13 (alternated on one connection, 6 rounds, all but one
    // lower). Several verifiers' answers go through the function's loop, as before.
    const one = audits.length === 1;
    const [r] = await this.#query<{ ns: number[]; cas: string[]; residents: string[]; newest: bigint | null }>("recording disclosures", {
      name: one ? "jpki_disclosures_append_one" : "jpki_disclosures_append_owned",
      text: one ? DISCLOSURES_APPEND_ONE : DISCLOSURES_APPEND_OWNED,
    }, [
      ...this.#auditColumns(audits),
      textArray(col((d) => d.verifierId)),
      textArray(col((d) => d.serial)),
      textArray(col((d) => d.issuer)),
      textArray(col((d) => d.residentCode)),
      textArray(col((d) => d.purpose)),
      textArray(col((d) => d.legalBasis)),
      int8Array(col((d) => d.at.getTime())),
      int8Array(col((d) => d.validationTime.getTime())),
      textArray(col((d) => d.answer)),
      boolArray(col((d) => d.itemsDisclosed)),
      // Only a whole TLV can be compared by its octets (a part of one would match the start of a longer one).
      byteaArray(col((d) => (d.tbs && isWholeTlv(d.tbs) ? d.tbs : undefined))),
    ]);
    const owners: Array<DisclosureOwner | undefined> = records.map(() => undefined);
    r!.ns.forEach((n, i) => (owners[n - 1] = { caId: r!.cas[i]!, residentCode: r!.residents[i]! }));
    this.#afterDisclosures(r!.newest);
    return owners;
  }

  /**
   * The resident's view: the per-resident index's rows (migration 34) up to the mark, and the records above it from
   * the table itself (its primary key: a range of at most a few batches), newest first. The mark is read first, in a
   * statement of its own, and passed to the second as a value: planned with it (an unnamed statement's plan is made
   * for its values), the range above it is an index scan, where a mark read inside the statement would be planned
   * as an unknown third of the table. Two statements, two snapshots, and still every record once: the mark only
   * moves on, and the rows for every id up to it committed with it, before the first statement read it; ids above
   * it come from the table alone (rows a later batch wrote for them are left out by `i <= $2`); a relink moves a
   * record and its index row in one transaction, which the second statement sees whole or not at all.
   * The ids are ordered and cut to the limit before the records are read, so a resident with a long history has
   * only `limit` of them read. Nor are all its index rows unnested: they are read newest first (the key's order)
   * with a running count of their ids, up to the row where the count meets the limit, and only rows newer than that
   * row's newest less a batch width are taken. Each row's ids lie within one batch width below its newest (a batch
   * groups its records per DISCLOSURES_PER_INDEX ids; a relink moves rows, never ids), so every id of a row left out
   * is below every id of the rows counted, at least `limit` of them. A resident with 10,000 records of 780,000,
   * limit 1,000: 21 of its 190 rows read, the backend's CPU 4.0 ms a view against 7.2 (10 alternated rounds of 50,
   * NEW lower in each; the 1,000 records' own reads are most of what is left).
   * Rows are taken by `newest <= $2`: a batch files ids above the mark it found, never below a mark read before.
   */
  async listDisclosures(q: { residentCode: string; limit?: number }): Promise<DisclosureRecord[]> {
    const mark = await this.#disclosuresIndexedThrough("reading disclosures");
    const rows = await this.#query<DisclosureRowDb>(
      "reading disclosures",
      `SELECT d.* FROM (
         SELECT id FROM (
           SELECT i AS id FROM disclosures_by_resident r CROSS JOIN LATERAL unnest(r.ids) AS i
           WHERE r.resident_code = $1 AND r.newest <= $2 AND i <= $2
             AND r.newest > coalesce((
               SELECT w.newest FROM (
                 SELECT newest, sum(cardinality(ids)) OVER (ORDER BY newest DESC) AS n FROM disclosures_by_resident
                 WHERE resident_code = $1 AND newest <= $2 ORDER BY newest DESC) w
               WHERE w.n >= $3 LIMIT 1) - ${DISCLOSURES_PER_INDEX}, 0)
           UNION ALL SELECT id FROM disclosures WHERE id > $2 AND resident_code = $1) x
         ORDER BY id DESC LIMIT $3) k
       JOIN disclosures d ON d.id = k.id ORDER BY d.id DESC`,
      [q.residentCode, mark, q.limit ?? 1000],
    );
    return rows.reverse().map(toDisclosure);
  }

  /** The per-resident index's mark (migration 34) as it is now; `forShare`: locked against the indexer, in `c`'s transaction. */
  async #disclosuresIndexedThrough(what: string, c?: ClientBase, forShare = false): Promise<number> {
    // Locked for a relink: the same statement marks the transaction as this release's relink (the relink guard, 35).
    const text = forShare
      ? `SELECT (SELECT indexed_through FROM disclosure_index_state WHERE id = 1 FOR SHARE) AS m, set_config('${DISCLOSURE_RELINK_SETTING}', 'on', true) AS relink`
      : "SELECT indexed_through AS m FROM disclosure_index_state WHERE id = 1";
    const rows = c ? (await c.query<{ m: bigint }>(text)).rows : await this.#query<{ m: bigint }>(what, text);
    // No row: a database emptied by hand. Nothing is indexed then, and every record is read from the table.
    const m = Number(rows[0]?.m ?? 0);
    if (m > this.#indexedThrough) this.#indexedThrough = m;
    return m;
  }

  /** The mark as this process last saw it: never above the real one (it only moves on), so a due check may only come early. */
  #indexedThrough = 0;
  /** Ids the indexer files in one transaction (DISCLOSURES_PER_PAGE; tests lower it through UpgradeOptions.pageRows). */
  #indexPageIds = DISCLOSURES_PER_PAGE;
  /** The indexer this process runs, if one is running (#afterDisclosures): one at a time. */
  #indexing: Promise<void> | undefined;
  /** After a failed run, the id the log must pass before the next try: a failing indexer is not retried on every append. */
  #indexRetryAbove = 0;

  /** The highest disclosure id this process appended (disclosureIndex.behind). */
  #newestAppended = 0;
  /** The indexer's failed runs, and who hears of each (Store.disclosureIndex). */
  #indexWatch = { failures: 0, onFailure: undefined as ((e: JpkiError) => void) | undefined };

  get disclosureIndex(): DisclosureIndexWatch {
    const store = this;
    const watch = this.#indexWatch;
    return {
      get failures() {
        return watch.failures;
      },
      get behind() {
        return store.#newestAppended > store.#indexedThrough ? store.#newestAppended - store.#indexedThrough : 0;
      },
      get onFailure() {
        return watch.onFailure;
      },
      set onFailure(f) {
        watch.onFailure = f;
      },
    };
  }

  /** After an append whose highest id is `newest`: starts the indexer if a batch is due and none is running here. */
  #afterDisclosures(newest: bigint | number | null | undefined): void {
    const n = Number(newest ?? 0);
    if (n > this.#newestAppended) this.#newestAppended = n;
    if (this.#closed || this.#indexing || n < this.#indexRetryAbove || n - this.#indexedThrough < DISCLOSURES_PER_INDEX) return;
    // Of no watched call: the API's answers are given already, and no deadline of theirs may cut the indexer's connection.
    this.#indexing = runAs(undefined, () => this.#indexDisclosures(DISCLOSURES_PER_INDEX))
      .catch((e: unknown) => {
        // Nothing is lost: the records stay readable above the mark, and a later append tries again. Said, though:
        // a failure that repeats leaves the tail growing and every resident's view slower (Store.disclosureIndex).
        this.#indexRetryAbove = n + DISCLOSURES_PER_INDEX / 4;
        this.#indexWatch.failures++;
        const failed = e instanceof JpkiError ? e : storeError(e, "indexing the disclosure log");
        try {
          this.#indexWatch.onFailure?.(failed);
        } catch {
          // a listener's own failure is not the indexer's
        }
      })
      .finally(() => (this.#indexing = undefined));
  }

  /**
   * Brings disclosures_by_resident up to date when at least `atLeast` records are above the mark, off the answering
   * path: it holds no lock an append waits for, and an append never waits for it.
   *
   * Why the mark never passes a record that commits later. Ids come from disclosures' sequence as each row is
   * inserted, so they commit out of order: with several connections, processes (`jpki serve --workers`) or hosts
   * appending, a record with id 10 may commit after one with id 11, and a mark moved to 11 when only 11 was visible
   * would leave 10 out of the resident's view for good. The rule: the mark moves to `s`, the sequence's last value
   * read before anything else, only once every transaction that may hold an id up to `s` has ended:
   * - a statement that inserts into disclosures holds ROW EXCLUSIVE on it from before it draws an id (the lock is
   *   taken as the statement's plan is locked, the id drawn as a row is made) to its transaction's end;
   * - so whoever drew an id ≤ s did so before `s` was read, and holds that lock still, or has committed or rolled back;
   * - the holders are read from pg_locks after `s` (fast-path locks included; this database only), and the indexer
   *   waits, polling, until none of those transactions holds it any more (what CREATE INDEX CONCURRENTLY waits for);
   * - then the insert's snapshot, taken after, sees every record with an id ≤ s that will ever commit.
   * The sequence hands ids out one at a time (bigserial's CACHE 1): a cache would let a session draw an id ≤ s
   * after s was read. Waiting takes no lock, so appenders go on meanwhile; their ids are above s.
   * The batch's transaction locks the mark's row first (FOR UPDATE): two indexers run one after the other, the
   * second finding the mark moved; and a relink, which locks it FOR SHARE before moving a resident's records and
   * index rows, comes wholly before or after the batch — never between its read of the records and its commit,
   * which would file a moved record under the code it left.
   * A run files in pages of #indexPageIds, one transaction each: a batch is one page, a log upgraded from 33
   * (migration34) many; once a run has filed to `s` it drops disclosures_resident if the upgrade kept it.
   */
  async #indexDisclosures(atLeast: number): Promise<void> {
    const what = "indexing the disclosure log";
    const from = await this.#disclosuresIndexedThrough(what);
    // `kept`: disclosures_resident is still there (migration34), the log being caught up; dropped once it is.
    const [seq] = await this.#query<{ s: bigint; kept: boolean }>(
      what,
      "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS s, to_regclass('disclosures_resident') IS NOT NULL AS kept FROM disclosures_id_seq",
    );
    const s = Number(seq!.s);
    if (s - from < atLeast) return;
    const holders = `SELECT virtualtransaction AS v FROM pg_locks
       WHERE locktype = 'relation' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND relation = 'disclosures'::regclass AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()`;
    let waiting = (await this.#query<{ v: string }>(what, holders)).map((r) => r.v);
    const until = performance.now() + DISCLOSURE_INDEX_WAIT_MS;
    for (let pause = 1; waiting.length; pause = Math.min(pause * 2, 50)) {
      if (this.#closed) return;
      if (performance.now() >= until) throw new JpkiError("ERR_STORE", `${what}: a transaction writing it stayed open past ${DISCLOSURE_INDEX_WAIT_MS} ms; tried again later`);
      await new Promise((r) => setTimeout(r, pause));
      waiting = (await this.#query<{ v: string }>(what, `SELECT v FROM (${holders}) h WHERE v = ANY($1::text[])`, [waiting])).map((r) => r.v);
    }
    // Up to `s` in pages, each a transaction of its own that moves the mark: a log upgraded from 33 (migration34)
    // is the whole log behind, and one transaction for it would hold the mark's row (every relink waiting on it,
    // then failing at lock_timeout) and a snapshot for as long as it ran. Every id up to `s` is safe to mark once the
    // wait above is over, so any mark on the way to it is too. A page killed (its backend, the process) rolls back
    // alone; the next run goes on from the mark the last one committed.
    for (let filing = false; ; filing = true) {
      if (this.#closed) return;
      // The mark as this page leaves it: its end once it filed; else the mark its transaction found (another
      // indexer's, short of `s`). Taking `s` then would put this process's due check up to a batch late.
      let reached = s;
      let filed = false;
      await this.#tx(what, async (c) => {
        const f = Number((await c.query<{ m: bigint }>("SELECT indexed_through AS m FROM disclosure_index_state WHERE id = 1 FOR UPDATE")).rows[0]?.m ?? s);
        // Once this run has filed, it goes on to `s` whatever is left; another indexer may have got there first.
        if (s - f < (filing ? 1 : atLeast)) {
          reached = f;
          return;
        }
        reached = Math.min(s, f + this.#indexPageIds);
        await indexDisclosureRange(c, f, reached);
        filed = true;
      });
      if (reached > this.#indexedThrough) this.#indexedThrough = reached;
      if (!filed || reached >= s) break;
    }
    if (seq!.kept && !this.#closed) {
      // Caught up: what is above the mark is a batch or so, read by the primary key. CONCURRENTLY takes no lock an
      // append or a reader waits for; it waits for the transactions using the table (and fails at lock_timeout, a
      // failed run like any, tried again with the next). IF EXISTS: another process may have dropped it meanwhile.
      await this.#query(what, "DROP INDEX CONCURRENTLY IF EXISTS disclosures_resident");
    }
  }

  // ---- Liveness checks (POST /v1/status) and the registry's consents ----

  async carriedRevocations(serials: readonly string[]): Promise<Map<string, CarriedStatus>> {
    const out = new Map<string, CarriedStatus>();
    if (!serials.length) return out;
    const rows = await this.#query<{ serial: string; ca_id: string; revoked_at: bigint; reason: number }>(
      "reading carried-over revocations",
      "SELECT serial, ca_id, revoked_at, reason FROM carried_revocations WHERE serial = ANY($1::text[])",
      [textArray([...new Set(serials)])],
    );
    for (const r of rows) out.set(r.serial, { caId: r.ca_id, revokedAt: new Date(Number(r.revoked_at)), reason: Number(r.reason) });
    return out;
  }

  async certificatesForStatus(q: { readonly serials: readonly string[]; readonly certificateIds: readonly string[] }): Promise<CertificateRow[]> {
    if (!q.serials.length && !q.certificateIds.length) return [];
    const ids = wellFormedCertificateIds(q.certificateIds);
    const rows = await this.#query<CertRowDb>(
      "reading certificates for a liveness check",
      `SELECT * FROM certificates WHERE serial = ANY($1::text[])
         OR (substring(sha256(der) from 1 for 8) = ANY($2::bytea[]) AND encode(sha256(der), 'hex') = ANY($3::text[]))`,
      [q.serials, ids.map((id) => certificateIdKey(id, "buffer")), ids],
    );
    return rows.map(toCertRow);
  }

  async recordStatusChecks(checks: readonly StatusCheckRecord[], disclosures: readonly DisclosureRecord[], _opts?: WriteDeadline): Promise<void> {
    if (!checks.length && !disclosures.length) return;
    const dcols = disclosures.map(disclosureValues);
    const dcol = (i: number) => dcols.map((r) => r[i]);
    // One transaction, a statement per table: the checks and their disclosures are kept together or not at all.
    let newest: bigint | null | undefined;
    await this.#tx("recording liveness checks", async (c) => {
      // Ids in commit order: a verifier pages its history by the last id it saw (GET /v1/status/history's
      // cursor), so a check given a lower id than one already committed, and committed after it, was never seen.
      // Drawn from the sequence as each insert ran, concurrent batches (a verifier's parallel requests, --workers,
      // several servers) committed out of id order: a paging client missed 38 % of the checks six writers made
      // (a review helper's repro). The lock is held to the commit, so ids are drawn and committed one batch at a time.
      if (checks.length) await c.query("SELECT pg_advisory_xact_lock($1, 0)", [ADVISORY_LOCKS.statusChecks]);
      await insertStatusChecks(c, checks);
      if (disclosures.length) {
        const r = await c.query<{ newest: bigint | null }>(
          `WITH i AS (INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
           SELECT v, s, i, rc, p, lb, a, vt, ans, d FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::boolean[])
             WITH ORDINALITY AS u(v, s, i, rc, p, lb, a, vt, ans, d, n) ORDER BY n
           RETURNING id) SELECT max(id) AS newest FROM i`,
          [dcol(0), dcol(1), dcol(2), dcol(3), dcol(4), dcol(5), dcol(6), dcol(7), dcol(8), dcols.map((r) => r[9] === 1)],
        );
        newest = r.rows[0]?.newest;
      }
      await this.#appendAudits(c, queryAudits(checks, disclosures));
    });
    this.#afterDisclosures(newest);
  }

  nextStatusCheckId(): Promise<number> {
    return this.#tx("reading the next liveness-check id", (c) => nextStatusCheckIdIn(c));
  }

  async counterNoticeIdKey(): Promise<Buffer> {
    const read = async () => (await this.#query<{ value: string }>("reading the counter notice id key", "SELECT value FROM meta WHERE key = $1", [COUNTER_NOTICE_ID_KEY]))[0]?.value;
    let hex = await read();
    if (hex === undefined) {
      // Whoever inserts first sets it for good; read again in a statement of its own, which sees the winner's
      // row (a concurrent insert's ON CONFLICT waits for it to commit).
      await this.#query("making the counter notice id key", "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [COUNTER_NOTICE_ID_KEY, randomBytes(32).toString("hex")]);
      hex = (await read())!;
    }
    return Buffer.from(hex, "hex");
  }

  /**
   * The SQL statement that marks the store a restore is putting back ({@link RESTORE_PENDING}), run by the restore
   * in the transaction that restores the tables (backup/postgres-tools.ts), with the search path the
   * connection's own. `note`: JSON naming the backup and the time.
   */
  static restorePendingStatement(note: string): string {
    // A literal, not a parameter: it runs in a psql script. standard_conforming_strings is on (pg_restore's script
    // sets it): only the quote is special.
    const literal = `'${note.replace(/\u0000/g, "").replace(/'/g, "''")}'`;
    // A dump from before migration 22 holds no carried_revocations, and pg_restore --clean drops only what the
    // dump holds: the table of the database replaced would stay, its rows naming CRL entries the restored log
    // lacks (carryRevocations would then take them for carried and skip them). Emptied; the restore carries anew.
    // No full CRL of the backup is a delta base any more: its snapshot names transaction ids of the server the
    // backup was taken on, and a new cluster (a restore onto a new machine) numbers its transactions from the
    // start again — a revocation after the restore would look older than the base and be left off every delta on
    // it. The restore makes every full CRL due; deltas start again on the first one published after it. (A dump
    // from before migration 7 has no such column: nothing to forget.)
    return `INSERT INTO meta (key, value) VALUES ('${RESTORE_PENDING}', ${literal}) ON CONFLICT (key) DO UPDATE SET value = excluded.value;
      DO $$ BEGIN
        IF to_regclass('carried_revocations') IS NOT NULL AND (SELECT value::int FROM meta WHERE key = 'schema_version') < 22 THEN
          TRUNCATE carried_revocations;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('crls') AND attname = 'delta_snapshot' AND NOT attisdropped) THEN
          UPDATE crls SET delta_snapshot = NULL WHERE delta_snapshot IS NOT NULL;
        END IF;
      END $$`;
  }

  /** The restore that opened this store (`restoring`) is done with it: the store may be used from now on. */
  async finishRestore(): Promise<void> {
    await this.#query("finishing a restore", "DELETE FROM meta WHERE key = $1", [RESTORE_PENDING]);
  }

  /**
   * The next liveness-check id of the jpki store in the database `url` names, read on a connection of its own
   * and written nothing (a restore reads the store it is about to replace), or undefined when it holds none or
   * cannot be read.
   */
  /**
   * As SqliteStore.certificateMunicipalitiesOf, of the database at `url`, read on a connection of its own: its
   * certificates, the entries an earlier restore carried over with their partition, and those a restore that was
   * stopped noted in its {@link RESTORE_PENDING} mark ("partitions") — a restore run again finds the certificate
   * there no more: the first one's pg_restore replaced it. Empty when unreadable.
   */
  static async certificateMunicipalitiesAt(url: string, serials: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!serials.length) return out;
    const client = new (loadPg().Client)({ connectionString: url, application_name: "jpki restore" });
    client.on("error", () => undefined);
    try {
      await client.connect();
      const has = (await client.query("SELECT to_regclass('carried_revocations') IS NOT NULL AS t")).rows[0]?.t === true;
      const carried = has ? " UNION ALL SELECT ca_id, serial, municipality_code FROM carried_revocations WHERE serial = ANY($1::text[]) AND municipality_code <> ''" : "";
      const rows = await client.query<{ ca_id: string; serial: string; municipality_code: string }>(
        `SELECT ca_id, serial, municipality_code FROM certificates WHERE serial = ANY($1::text[])${carried}`,
        [textArray(serials)],
      );
      for (const r of rows.rows) out.set(`${r.ca_id}/${r.serial}`, r.municipality_code);
      const wanted = new Set(serials);
      const note = (await client.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [RESTORE_PENDING])).rows[0]?.value;
      let noted: unknown;
      try {
        noted = note === undefined ? undefined : (JSON.parse(note) as { partitions?: unknown }).partitions;
      } catch {
        // a mark in another form: it notes no partition
      }
      if (noted && typeof noted === "object") {
        for (const [k, v] of Object.entries(noted)) if (typeof v === "string" && wanted.has(k.slice(k.indexOf("/") + 1)) && !out.has(k)) out.set(k, v);
      }
    } catch {
      // no database there, or not one of ours: nothing known
    } finally {
      await client.end().catch(() => undefined);
    }
    return out;
  }

  /** The CA ids the database at `url` holds and has retired, read only, as SqliteStore.caIdsOf; undefined when unreadable. */
  static async caIdsAt(url: string): Promise<{ readonly cas: readonly string[]; readonly retired: readonly RetiredCaIdRecord[] } | undefined> {
    const client = new (loadPg().Client)({ connectionString: url, application_name: "jpki restore" });
    client.on("error", () => undefined);
    try {
      await client.connect();
      const cas = (await client.query<{ id: string }>("SELECT id FROM cas ORDER BY id")).rows.map((r) => r.id);
      const has = (await client.query("SELECT to_regclass('retired_ca_ids') IS NOT NULL AS t")).rows[0]?.t === true;
      const retired = has ? (await client.query("SELECT id, retired_at, reason FROM retired_ca_ids ORDER BY id")).rows.map(toRetiredCaId) : [];
      return { cas, retired };
    } catch {
      return undefined;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  static async nextStatusCheckIdAt(url: string): Promise<number | undefined> {
    const client = new (loadPg().Client)({ connectionString: url, application_name: "jpki restore" });
    client.on("error", () => undefined);
    try {
      await client.connect();
      return await nextStatusCheckIdIn(client);
    } catch {
      return undefined;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  skipStatusCheckIds(next: number): Promise<{ readonly before: number; readonly next: number }> {
    if (!Number.isSafeInteger(next) || next < 1) return Promise.reject(new JpkiError("ERR_USAGE", `a liveness-check id is a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`));
    return this.#tx("moving liveness-check ids on", async (c) => {
      // No check is recorded meanwhile (inserts wait for this transaction), so the sequence is moved from what it is.
      await c.query("LOCK TABLE status_checks IN EXCLUSIVE MODE");
      const before = await nextStatusCheckIdIn(c);
      const to = Math.max(before, next);
      await moveStatusCheckSequence(c, to);
      return { before, next: to };
    });
  }

  async listStatusChecks(q: { readonly verifierId: string; readonly since?: Date; readonly after?: number; readonly limit?: number }): Promise<StoredStatusCheck[]> {
    // With since: the checks from then on by (verifier_id, at, id) (25), however many came before; without: by id.
    const rows = q.since
      ? await this.#query<StatusCheckRowDb>("reading liveness checks", "SELECT * FROM status_checks WHERE verifier_id = $1 AND at >= $2 AND id > $3 ORDER BY id LIMIT $4", [
          q.verifierId,
          q.since.getTime(),
          q.after ?? 0,
          q.limit ?? 100,
        ])
      : await this.#query<StatusCheckRowDb>("reading liveness checks", "SELECT * FROM status_checks WHERE verifier_id = $1 AND id > $2 ORDER BY id LIMIT $3", [q.verifierId, q.after ?? 0, q.limit ?? 100]);
    return rows.map(toStatusCheck);
  }

  async grantConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord> {
    return this.#tx("recording a consent", async (cl) => {
      const made = await cl.query("INSERT INTO consents (resident_code, verifier_id, granted_at) VALUES ($1, $2, $3) ON CONFLICT (resident_code, verifier_id) WHERE withdrawn_at IS NULL DO NOTHING", [
        c.residentCode,
        c.verifierId,
        c.at.getTime(),
      ]);
      if (made.rowCount === 1) await this.#appendAudits(cl, [{ action: "consent.grant", subject: c.verifierId, detail: { at: c.at } }]);
      const r = (await cl.query<ConsentRowDb>("SELECT * FROM consents WHERE resident_code = $1 AND verifier_id = $2 AND withdrawn_at IS NULL", [c.residentCode, c.verifierId])).rows[0]!;
      return toConsent(r);
    });
  }

  async withdrawConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord> {
    return this.#tx("withdrawing a consent", async (cl) => {
      const r = (
        await cl.query<ConsentRowDb>("UPDATE consents SET withdrawn_at = $1 WHERE resident_code = $2 AND verifier_id = $3 AND withdrawn_at IS NULL RETURNING *", [
          c.at.getTime(),
          c.residentCode,
          c.verifierId,
        ])
      ).rows[0];
      if (!r) throw new JpkiError("ERR_CONSENT_UNKNOWN", `resident ${c.residentCode} holds no live consent for verifier ${c.verifierId}: see 'jpki registry consent list'`);
      await this.#appendAudits(cl, [{ action: "consent.withdraw", subject: c.verifierId, detail: { at: c.at } }]);
      return toConsent(r);
    });
  }

  async listConsents(q: { readonly residentCode?: string; readonly verifierId?: string }): Promise<ConsentRecord[]> {
    const rows = await this.#query<ConsentRowDb>(
      "reading consents",
      "SELECT * FROM consents WHERE ($1::text IS NULL OR resident_code = $1) AND ($2::text IS NULL OR verifier_id = $2) ORDER BY id",
      [q.residentCode ?? null, q.verifierId ?? null],
    );
    return rows.map(toConsent);
  }

  async liveConsents(verifierId: string, residentCodes: readonly string[]): Promise<Set<string>> {
    if (!residentCodes.length) return new Set();
    const rows = await this.#query<{ resident_code: string }>(
      "reading consents",
      "SELECT resident_code FROM consents WHERE verifier_id = $1 AND withdrawn_at IS NULL AND resident_code = ANY($2::text[])",
      [verifierId, residentCodes],
    );
    return new Set(rows.map((r) => r.resident_code));
  }

  // ---- Moving a store (store/copy.ts): dump and load. Kept apart, at the end, on purpose: they read and
  // write every table this backend has, and only through the columns its other methods use. ----

  async *dump(opts: DumpOptions = {}): AsyncIterable<DumpBatch> {
    const size = opts.chunkSize ?? 1000;
    const c = await this.#connect("starting a dump");
    const q = async <R extends QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> => {
      try {
        return (await c.query<R>(text, values)).rows;
      } catch (e) {
        throw storeError(e, "dumping the store");
      }
    };
    let broken = false;
    try {
      // One snapshot (REPEATABLE READ, frozen at the first SELECT, after the lock), and writers kept out until the
      // iteration ends: SHARE mode lets readers in and makes every INSERT/UPDATE/DELETE wait (then lock_timeout).
      await q("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await q(`LOCK TABLE ${COPY_TABLES.join(", ")} IN SHARE MODE`);
      const counts = await q<Record<DumpKind, bigint>>(
        `SELECT ${DUMP_KINDS.map((k) => `(${COPY_COUNT_OF[k]}) AS "${k}"`).join(", ")}`,
      );
      yield {
        kind: "header",
        source: this.kind,
        counts: Object.fromEntries(DUMP_KINDS.map((k) => [k, Number(counts[0]![k])])) as Record<DumpKind, number>,
        nextStatusCheckId: Number((await q<{ n: string }>(NEXT_STATUS_CHECK_ID))[0]!.n),
        ...(await q<{ value: string }>("SELECT value FROM meta WHERE key = $1", [COUNTER_NOTICE_ID_KEY])).map((r) => ({ counterNoticeIdKey: r.value }))[0],
      };
      // A server-side cursor per kind, read in chunks: bounded memory whatever the size.
      const cursor = async function* <R extends QueryResultRow>(select: string): AsyncGenerator<R[]> {
        await q(`DECLARE jpki_dump NO SCROLL CURSOR FOR ${select}`);
        for (;;) {
          const rows = await q<R>(`FETCH ${size} FROM jpki_dump`);
          if (rows.length) yield rows;
          if (rows.length < size) break;
        }
        await q("CLOSE jpki_dump");
      };
      for await (const rows of cursor("SELECT * FROM cas ORDER BY id")) yield { kind: "cas", records: rows.map(toCa) };
      for await (const rows of cursor("SELECT * FROM ca_links ORDER BY new_ca_id")) yield { kind: "caLinks", records: rows.map(toCaLink) };
      for await (const rows of cursor("SELECT * FROM retired_ca_ids ORDER BY id")) yield { kind: "retiredCaIds", records: rows.map(toRetiredCaId) };
      for await (const rows of cursor<ResidentRowDb>("SELECT * FROM residents ORDER BY resident_code")) {
        yield { kind: "residents", records: rows.map((r) => ({ ...toResident(r), noticeSequence: Number(r.notice_sequence) })) };
      }
      for await (const rows of cursor<CertRowDb>("SELECT * FROM certificates ORDER BY serial")) yield { kind: "certificates", records: rows.map(toCertRow) };
      // The CRL order: each CA's log, block after block, entry after entry (the serial read back from its DER).
      let order: DumpRevocationOrder[] = [];
      // An entry with no revoked certificate of its CA is one a restore carried over: it travels as the log lists it.
      // Which are is asked of the certificates about `size` entries at a time (a block may hold thousands).
      let pending: Array<{ caId: string; e: CrlEntryInput; meta: Buffer; i: number }> = [];
      const resolve = async function* (): AsyncGenerator<DumpBatch> {
        const serials = textArray(pending.map((x) => x.e.serial));
        const revoked = new Map((await q<{ serial: string; ca_id: string }>("SELECT serial, ca_id FROM certificates WHERE serial = ANY($1::text[]) AND revoked_at IS NOT NULL", [serials])).map((r) => [r.serial, r.ca_id]));
        const recorded = new Map((await q<{ serial: string; ca_id: string }>("SELECT serial, ca_id FROM carried_revocations WHERE serial = ANY($1::text[])", [serials])).map((r) => [r.serial, r.ca_id]));
        for (const { caId, e, meta, i } of pending) {
          if (revoked.get(e.serial) === caId) order.push({ caId, serial: e.serial });
          else order.push(carriedOrderEntry(caId, e, meta, i, recorded.get(e.serial) === caId));
          if (order.length === size) (yield { kind: "revocationOrder", records: order }, (order = []));
        }
        pending = [];
      };
      for await (const rows of cursor<{ ca_id: string; der: Buffer; meta: Buffer }>("SELECT ca_id, der, meta FROM revocation_log ORDER BY ca_id, id")) {
        for (const r of rows) {
          for (const [i, e] of decodeEntries(r.der).entries()) pending.push({ caId: r.ca_id, e, meta: r.meta, i });
          if (pending.length >= size) yield* resolve();
        }
      }
      if (pending.length) yield* resolve();
      if (order.length) yield { kind: "revocationOrder", records: order };
      for await (const rows of cursor<NoticeRowDb>("SELECT * FROM notices ORDER BY notice_id")) yield { kind: "notices", records: rows.map(toStoredNotice) };
      for await (const rows of cursor<{ resident_code: string; last_sequence: bigint }>("SELECT * FROM resident_sequences ORDER BY resident_code")) {
        yield { kind: "residentSequences", records: rows.map((r) => ({ residentCode: r.resident_code, lastSequence: Number(r.last_sequence) })) };
      }
      for await (const rows of cursor<{ ca_id: string; revision: bigint; published_revision: bigint }>("SELECT * FROM crl_state ORDER BY ca_id")) {
        yield { kind: "crlState", records: rows.map((r) => ({ caId: r.ca_id, revision: Number(r.revision), publishedRevision: Number(r.published_revision) })) };
      }
      for await (const rows of cursor<{ ca_id: string; scope: string; revision: bigint; published_revision: bigint; published_number: bigint | null }>(
        "SELECT * FROM crl_scopes ORDER BY ca_id, scope",
      )) {
        yield {
          kind: "crlScopes",
          records: rows.map((r) => ({
            caId: r.ca_id,
            scope: r.scope,
            revision: Number(r.revision),
            publishedRevision: Number(r.published_revision),
            publishedNumber: r.published_number ?? undefined,
          })),
        };
      }
      for await (const rows of cursor<CrlRowDb & { revision: bigint }>("SELECT * FROM crls ORDER BY ca_id, number")) {
        yield { kind: "crls", records: rows.map(toDumpCrl) };
      }
      for await (const rows of cursor("SELECT * FROM ocsp_responders ORDER BY ca_id")) yield { kind: "ocspResponders", records: rows.map(toOcspResponder) };
      for await (const rows of cursor<{ cert_der: Buffer; key_pem: string; created_at: bigint }>("SELECT * FROM verifier_ca")) {
        yield { kind: "verifierCa", records: rows.map(toVerifierCa) };
      }
      for await (const rows of cursor<VerifierRowDb>("SELECT * FROM verifiers ORDER BY id")) yield { kind: "verifiers", records: rows.map(toVerifier) };
      for await (const rows of cursor<VerifierFetchRowDb>("SELECT * FROM verifier_fetches ORDER BY id")) {
        yield { kind: "verifierFetches", records: rows.map(toVerifierFetch) };
      }
      for await (const rows of cursor<DisclosureRowDb>("SELECT * FROM disclosures ORDER BY id")) yield { kind: "disclosures", records: rows.map(toDisclosure) };
      for await (const rows of cursor<ConsentRowDb>("SELECT * FROM consents ORDER BY id")) yield { kind: "consents", records: rows.map(toConsent) };
      for await (const rows of cursor<StatusCheckRowDb>("SELECT * FROM status_checks ORDER BY id")) yield { kind: "statusChecks", records: rows.map(toStatusCheck) };
      for await (const rows of cursor<{ notice_id: string; resident_code: string; sequence: string; body: string; created_at: string }>("SELECT * FROM registry_outbox ORDER BY id")) {
        yield { kind: "registryOutbox", records: rows.map((r) => ({ noticeId: r.notice_id, residentCode: r.resident_code, sequence: Number(r.sequence), body: r.body, createdAt: new Date(Number(r.created_at)) })) };
      }
      for await (const rows of cursor<AuditRowDb>("SELECT * FROM audit_log ORDER BY seq")) yield { kind: "auditLog", records: rows.map(toAudit) };
      for await (const rows of cursor<AuditCheckpointRowDb>("SELECT * FROM audit_checkpoints ORDER BY seq")) yield { kind: "auditCheckpoints", records: rows.map(toAuditCheckpoint) };
      yield { kind: "end" };
      const note = opts.retire?.();
      if (note) {
        // Closed to writers in this transaction, whose locks kept them out: a statement trigger on every table
        // refuses any insert, update or delete (even of no row) naming the note. Waiting writers fail on it.
        await q("INSERT INTO meta (key, value) VALUES ('retired', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [note]);
        await q(`CREATE OR REPLACE FUNCTION jpki_retired() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            RAISE EXCEPTION 'this jpki store is retired, its writes refused: %', (SELECT value FROM meta WHERE key = 'retired')
              USING ERRCODE = 'read_only_sql_transaction';
          END $$`);
        for (const table of COPY_TABLES) {
          await q(`DROP TRIGGER IF EXISTS jpki_retired ON ${table}`);
          await q(`CREATE TRIGGER jpki_retired BEFORE INSERT OR UPDATE OR DELETE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION jpki_retired()`);
        }
        await q("COMMIT");
      }
    } finally {
      // Read only unless retired (committed above): ending it either way changes nothing.
      await c.query("ROLLBACK").catch(() => (broken = true));
      c.release(broken);
    }
  }

  async retirement(): Promise<string | undefined> {
    return (await this.#query<{ value: string }>("reading whether the store is retired", "SELECT value FROM meta WHERE key = 'retired'"))[0]?.value;
  }

  /** The mark this store's last load left (UNVERIFIED_COPY's value): what confirmLoad may remove. */
  #loadMark: string | undefined;

  async confirmLoad(): Promise<void> {
    const mark = this.#loadMark;
    const gone = mark === undefined ? [] : await this.#query("confirming a verified copy", "DELETE FROM meta WHERE key = $1 AND value = $2 RETURNING key", [UNVERIFIED_COPY, mark]);
    if (!gone.length) {
      // Another copy into this database replaced what this one loaded (or this one loaded nothing): what was
      // read back may be either, and confirming would let the other, unverified, into use.
      throw new JpkiError("ERR_STORE_COPY_MISMATCH", "another copy into the same PostgreSQL database replaced this one before it was confirmed: nothing was switched; run one copy at a time");
    }
    this.#loadMark = undefined;
  }

  async load(batches: AsyncIterable<DumpBatch>): Promise<DumpCounts> {
    const c = await this.#connect("starting a load");
    let broken = false;
    let what = "starting a load";
    try {
      // One transaction from the emptiness check to the last row: a copy killed midway (or a lost connection)
      // is rolled back by the server and leaves the database as empty as it found it. The tables are locked
      // exclusively first, so no jpki process (nor a second copy) sees or writes a half-loaded store.
      await c.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      await c.query(`LOCK TABLE meta, disclosure_index_state, ${COPY_TABLES.join(", ")} IN ACCESS EXCLUSIVE MODE`);
      const countsNow = async () =>
        (await c.query<{ kind: string; n: bigint }>(DUMP_KINDS.map((k) => `SELECT '${k}' AS kind, (${COPY_COUNT_OF[k]}) AS n`).join(" UNION ALL "))).rows;
      const countsText = (rows: ReadonlyArray<{ kind: string; n: bigint }>) => rows.map((r) => `${r.kind}=${r.n}`).sort().join(",");
      let held = (await countsNow()).filter((r) => r.n > 0n);
      // An earlier copy that loaded and was never verified goes — unless a jpki process that had opened the
      // database before that load (open refuses it since) wrote to it: its records hold as they are. Every write
      // appends to the audit log at least, so the counts the load recorded then differ.
      const earlier = (await c.query<{ value: string }>("SELECT value FROM meta WHERE key = $1", [UNVERIFIED_COPY])).rows[0]?.value;
      if (earlier !== undefined) {
        if (earlier.split(" ")[2] !== countsText(held)) {
          throw new JpkiError("ERR_STORE_NOT_EMPTY", "the target holds a store copy that was never verified and has been written to since: drop the database (or clear it) and copy again");
        }
        await c.query(`TRUNCATE ${COPY_TABLES.join(", ")} RESTART IDENTITY`);
        await c.query(`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}')`);
        held = [];
      }
      if (held.length) {
        throw new JpkiError("ERR_STORE_NOT_EMPTY", `the target store already holds ${held.map((r) => `${r.n} ${r.kind}`).join(", ")}: a copy goes into an empty store only`);
      }
      const check = new DumpStreamCheck();
      const log = new LogLoader();
      let nextStatusCheckId: number | undefined;
      let counterKey: string | undefined;
      for await (const batch of batches) {
        if (batch.kind === "header") ({ nextStatusCheckId, counterNoticeIdKey: counterKey } = batch);
        const b = check.accept(batch);
        if (!b || !b.records.length) continue;
        what = `loading ${b.kind}`;
        if (b.kind === "revocationOrder") await log.load(c, b.records);
        else await loadBatch(c, b);
      }
      what = "finishing a load";
      const counts = check.finish();
      await log.finish(c);
      // The checks came with their ids (the sequence did not hand them out): it continues above them, and above
      // the source's next id where a restore moved that on.
      await moveStatusCheckSequence(c, Math.max(await nextStatusCheckIdIn(c), nextStatusCheckId ?? 1));
      // The source's counter notice id key, or none: the target (holding no facts, so no ids) had none of its own
      // to keep, and an unverified copy this load replaces leaves none behind.
      await c.query("DELETE FROM meta WHERE key = $1", [COUNTER_NOTICE_ID_KEY]);
      if (counterKey !== undefined) {
        if (!/^[0-9a-f]{64}$/.test(counterKey)) throw new JpkiError("ERR_STORE_COPY_MISMATCH", "the dump's counter notice id key is not 32 bytes of hex: nothing was loaded");
        await c.query("INSERT INTO meta (key, value) VALUES ($1, $2)", [COUNTER_NOTICE_ID_KEY, counterKey]);
      }
      // The registry side's copy of the issuance information is not a kind of its own in a dump: in one store
      // it is exactly the unrevoked certificates' (every transaction that issues or revokes keeps it so).
      await c.query(REGISTER_UNREVOKED);
      // The per-resident index is not a kind of its own either: the loaded records are filed under their residents
      // (the table is locked, so its highest id is the mark), from a mark of 0 (the target held no record).
      await indexDisclosureRange(c, 0, Number((await c.query<{ m: bigint }>("SELECT coalesce(max(id), 0) AS m FROM disclosures")).rows[0]!.m));
      // When, whose (a random token: only this store object's confirmLoad removes it), and what it holds.
      const mark = `${new Date().toISOString()} ${randomBytes(12).toString("hex")} ${countsText((await countsNow()).filter((r) => r.n > 0n))}`;
      await c.query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [UNVERIFIED_COPY, mark]);
      await c.query("COMMIT");
      this.#loadMark = mark;
      return counts;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => (broken = true));
      throw storeError(e, what);
    } finally {
      c.release(broken);
    }
  }
}

/** How many records of each kind a dump carries. */
const COPY_COUNT_OF: Readonly<Record<DumpKind, string>> = {
  cas: "SELECT count(*) FROM cas",
  caLinks: "SELECT count(*) FROM ca_links",
  retiredCaIds: "SELECT count(*) FROM retired_ca_ids",
  residents: "SELECT count(*) FROM residents",
  certificates: "SELECT count(*) FROM certificates",
  revocationOrder: "SELECT coalesce(sum(entries), 0) FROM revocation_log",
  notices: "SELECT count(*) FROM notices",
  residentSequences: "SELECT count(*) FROM resident_sequences",
  crlState: "SELECT count(*) FROM crl_state",
  crlScopes: "SELECT count(*) FROM crl_scopes",
  crls: "SELECT count(*) FROM crls",
  ocspResponders: "SELECT count(*) FROM ocsp_responders",
  verifierCa: "SELECT count(*) FROM verifier_ca",
  verifiers: "SELECT count(*) FROM verifiers",
  verifierFetches: "SELECT count(*) FROM verifier_fetches",
  disclosures: "SELECT count(*) FROM disclosures",
  consents: "SELECT count(*) FROM consents",
  statusChecks: "SELECT count(*) FROM status_checks",
  registryOutbox: "SELECT count(*) FROM registry_outbox",
  auditLog: "SELECT count(*) FROM audit_log",
  auditCheckpoints: "SELECT count(*) FROM audit_checkpoints",
};
/** The tables a dump reads and a load writes (disclosures_by_resident: the load files its records there, indexDisclosureRange). */
const COPY_TABLES = ["cas", "ca_links", "retired_ca_ids", "residents", "certificates", "revocation_log", "notices", "resident_sequences", "crl_state", "crl_scopes", "crls", "ocsp_responders", "verifier_ca", "verifiers", "verifier_fetches", "disclosures", "disclosures_by_resident", "consents", "status_checks", "registry_issuances", "registry_outbox", "audit_log", "audit_head", "audit_checkpoints", "carried_revocations"] as const;

/**
 * Rebuilds the revocation log of a load in the order the dump gives (the source's CRL order): consecutive
 * entries of a CA go into one block, up to MIGRATION_BLOCK entries (the source's block boundaries are not kept,
 * its order is). Each entry takes its values from the certificate loaded before it; each revoked certificate
 * must come exactly once, checked against a temporary table (a store may hold millions of revocations).
 */
class LogLoader {
  readonly #blocks = new RevocationBlocks();
  #ca: string | undefined;
  #open = 0;
  #placed = 0;
  #started = false;

  async load(c: ClientBase, records: readonly DumpRevocationOrder[]): Promise<void> {
    if (!this.#started) {
      await c.query("CREATE TEMP TABLE jpki_load_placed (serial text COLLATE \"C\" PRIMARY KEY) ON COMMIT DROP");
      this.#started = true;
    }
    const serials = records.map((r) => r.serial);
    const fresh = new Set(
      (await c.query<{ serial: string }>("INSERT INTO jpki_load_placed (serial) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING serial", [serials])).rows.map((r) => r.serial),
    );
    const rows = new Map(
      (
        await c.query<{ serial: string; ca_id: string; revoked_at: bigint | null; reason: number | null; not_after: bigint; municipality_code: string }>(
          "SELECT serial, ca_id, revoked_at, reason, not_after, municipality_code FROM certificates WHERE serial = ANY($1::text[])",
          [serials],
        )
      ).rows.map((r) => [r.serial, r]),
    );
    const carried: Array<{ serial: string; caId: string; municipality: string; revokedAt: number; reason: number; notAfter: number }> = [];
    for (const r of records) {
      const row = rows.get(r.serial);
      if (r.carried) {
        // A restore's carried-over entry: as the source's log lists it, for a certificate this store has no row of.
        const k = r.carried;
        if (row) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump carries ${r.serial}'s CRL entry over, but also holds that certificate: nothing was loaded`);
        if (!fresh.delete(r.serial)) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} twice among the CRL entries: nothing was loaded`);
        if (r.caId !== this.#ca || this.#open === MIGRATION_BLOCK) (await appendBlocks(c, this.#blocks.take()), (this.#ca = r.caId), (this.#open = 0));
        const municipality = carriedMunicipality({ serial: r.serial, ...(k.municipality === undefined ? {} : { municipality: k.municipality }) });
        this.#blocks.add(r.caId, r.serial, k.revokedAt.getTime(), k.reason, k.notAfter.getTime(), municipality);
        this.#open++;
        if (k.recorded) carried.push({ serial: r.serial, caId: r.caId, municipality, revokedAt: k.revokedAt.getTime(), reason: k.reason, notAfter: k.notAfter.getTime() });
        continue;
      }
      if (!row || row.revoked_at === null || row.ca_id !== r.caId) {
        throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} among ${r.caId}'s CRL entries, but it is not a certificate of that CA it revoked: nothing was loaded`);
      }
      if (!fresh.delete(r.serial)) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} twice among the CRL entries: nothing was loaded`);
      if (r.caId !== this.#ca || this.#open === MIGRATION_BLOCK) (await appendBlocks(c, this.#blocks.take()), (this.#ca = r.caId), (this.#open = 0));
      this.#blocks.add(row.ca_id, row.serial, Number(row.revoked_at), row.reason ?? 0, Number(row.not_after), row.municipality_code);
      this.#open++;
      this.#placed++;
    }
    if (carried.length) {
      await c.query(
        `INSERT INTO carried_revocations (ca_id, serial, municipality_code, revoked_at, reason, not_after)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::int8[])`,
        [
          textArray(carried.map((x) => x.caId)), textArray(carried.map((x) => x.serial)), textArray(carried.map((x) => x.municipality)),
          int8Array(carried.map((x) => BigInt(x.revokedAt))), int4Array(carried.map((x) => x.reason)), int8Array(carried.map((x) => BigInt(x.notAfter))),
        ],
      );
    }
  }

  /** Appends the last block and checks that every revoked certificate was placed. */
  async finish(c: ClientBase): Promise<void> {
    await appendBlocks(c, this.#blocks.take());
    const revoked = Number((await c.query<{ n: bigint }>("SELECT count(*) AS n FROM certificates WHERE revoked_at IS NOT NULL")).rows[0]!.n);
    if (this.#placed !== revoked) {
      throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump revokes ${revoked} certificates but orders ${this.#placed} CRL entries: nothing was loaded`);
    }
  }
}

/** One dump batch as one multi-row INSERT over unnest'ed column arrays. */
async function loadBatch(c: PoolClient, b: DumpDataBatch): Promise<void> {
  const col = <T, V>(rows: readonly T[], f: (r: T) => V): V[] => rows.map(f);
  switch (b.kind) {
    case "cas": {
      const r = b.records;
      await c.query(
        `INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at, key_ref)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::bytea[], $7::bigint[], $8::text[])`,
        [col(r, (x) => x.id), col(r, (x) => x.prefectureCode), col(r, (x) => x.purpose), col(r, (x) => x.certificateDer), col(r, (x) => x.encryptedKeyPem), col(r, (x) => x.keyId), col(r, (x) => x.createdAt.getTime()), col(r, (x) => x.keyRef ?? null)],
      );
      return;
    }
    case "caLinks": {
      const r = b.records;
      await c.query(
        `INSERT INTO ca_links (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at, compromised_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::bigint[])`,
        [col(r, (x) => x.newCaId), col(r, (x) => x.oldCaId), col(r, (x) => x.oldWithNew ?? null), col(r, (x) => x.newWithOld ?? null), col(r, (x) => x.createdAt.getTime()), col(r, (x) => x.compromisedAt?.getTime() ?? null)],
      );
      return;
    }
    case "retiredCaIds": {
      const r = b.records;
      await c.query("INSERT INTO retired_ca_ids (id, retired_at, reason) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])", [
        col(r, (x) => x.id),
        col(r, (x) => x.retiredAt.getTime()),
        col(r, (x) => x.reason),
      ]);
      return;
    }
    case "residents": {
      const r = b.records;
      await c.query(SQL.upsertResidents, [
        col(r, (x) => x.residentCode),
        col(r, (x) => x.municipalityCode),
        col(r, (x) => x.fourItems.name),
        col(r, (x) => x.fourItems.address),
        col(r, (x) => x.fourItems.birthDate),
        col(r, (x) => x.fourItems.gender),
        col(r, (x) => x.status),
        col(r, (x) => x.noticeSequence),
        col(r, (x) => x.successorCode ?? null),
      ]);
      return;
    }
    case "certificates": {
      const r = b.records;
      await c.query(
        `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, name, address, birth_date, gender,
           not_before, not_after, issued_at, der, revoked_at, reason, revocation_source, application_id, certified_key, registry_sequence)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
           $10::bigint[], $11::bigint[], $12::bigint[], $13::bytea[], $14::bigint[], $15::int[], $16::text[], $17::text[], $18::bytea[], $19::bigint[])`,
        [
          col(r, (x) => x.serial),
          col(r, (x) => x.caId),
          col(r, (x) => x.type),
          col(r, (x) => x.residentCode),
          col(r, (x) => x.municipalityCode),
          col(r, (x) => x.fourItems.name),
          col(r, (x) => x.fourItems.address),
          col(r, (x) => x.fourItems.birthDate),
          col(r, (x) => x.fourItems.gender),
          col(r, (x) => x.notBefore.getTime()),
          col(r, (x) => x.notAfter.getTime()),
          col(r, (x) => x.issuedAt.getTime()),
          col(r, (x) => x.der),
          col(r, (x) => x.revocation?.revokedAt.getTime() ?? null),
          col(r, (x) => x.revocation?.reason ?? null),
          col(r, (x) => x.revocation?.source ?? null),
          col(r, (x) => x.applicationId ?? null),
          col(r, (x) => certifiedKeyColumn(x.der)),
          col(r, (x) => x.registrySequence ?? null),
        ],
      );
      return;
    }
    case "revocationOrder":
      throw new JpkiError("ERR_INTERNAL", "the CRL order is loaded by LogLoader");
    case "notices": {
      const r = b.records;
      await c.query(
        `INSERT INTO notices (notice_id, resident_code, sequence, kind, status, body, received_at, applied_at, revocations)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::int[])`,
        [
          col(r, (x) => x.noticeId),
          col(r, (x) => x.residentCode),
          col(r, (x) => x.sequence),
          col(r, (x) => x.kind),
          col(r, (x) => x.status),
          col(r, (x) => x.body),
          col(r, (x) => x.receivedAt.getTime()),
          col(r, (x) => x.appliedAt?.getTime() ?? null),
          col(r, (x) => x.revocations),
        ],
      );
      return;
    }
    case "residentSequences": {
      const r = b.records;
      await c.query("INSERT INTO resident_sequences (resident_code, last_sequence) SELECT * FROM unnest($1::text[], $2::bigint[])", [
        col(r, (x) => x.residentCode),
        col(r, (x) => x.lastSequence),
      ]);
      return;
    }
    case "crlState": {
      const r = b.records;
      await c.query("INSERT INTO crl_state (ca_id, revision, published_revision) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])", [
        col(r, (x) => x.caId),
        col(r, (x) => x.revision),
        col(r, (x) => x.publishedRevision),
      ]);
      return;
    }
    case "crlScopes": {
      const r = b.records;
      await c.query(
        `INSERT INTO crl_scopes (ca_id, scope, revision, published_revision, published_number)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])`,
        [col(r, (x) => x.caId), col(r, (x) => x.scope), col(r, (x) => x.revision), col(r, (x) => x.publishedRevision), col(r, (x) => x.publishedNumber ?? null)],
      );
      return;
    }
    case "crls": {
      const r = b.records;
      await c.query(
        `INSERT INTO crls (ca_id, number, this_update, next_update, entries, path, sha256, revision, state, scope, base_number)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])`,
        [
          col(r, (x) => x.caId),
          col(r, (x) => x.number),
          col(r, (x) => x.thisUpdate.getTime()),
          col(r, (x) => x.nextUpdate.getTime()),
          col(r, (x) => x.entries ?? null),
          col(r, (x) => x.path ?? null),
          col(r, (x) => x.sha256 ?? null),
          col(r, (x) => x.revision),
          col(r, (x) => x.state),
          col(r, (x) => x.scope),
          col(r, (x) => x.baseNumber ?? null),
        ],
      );
      return;
    }
    case "ocspResponders": {
      const r = b.records;
      await c.query(
        `INSERT INTO ocsp_responders (ca_id, serial, cert_der, key_pem, not_before, not_after)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[])`,
        [col(r, (x) => x.caId), col(r, (x) => x.serial), col(r, (x) => x.certificateDer), col(r, (x) => x.encryptedKeyPem), col(r, (x) => x.notBefore.getTime()), col(r, (x) => x.notAfter.getTime())],
      );
      return;
    }
    case "verifierCa": {
      for (const x of b.records) {
        await c.query("INSERT INTO verifier_ca (id, cert_der, key_pem, created_at) VALUES (1, $1, $2, $3)", [x.certificateDer, x.encryptedKeyPem, x.createdAt.getTime()]);
      }
      return;
    }
    case "verifiers": {
      const r = b.records.map(verifierValues);
      await c.query(
        `INSERT INTO verifiers (id, name, kind, token_sha256, cert_sha256, cert_not_after, created_at, revoked_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[])`,
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => r.map((x) => x[i])),
      );
      return;
    }
    case "verifierFetches": {
      const r = b.records;
      // In dump order, so the ids (bigserial) keep the order the fetches were recorded in.
      await c.query(
        `INSERT INTO verifier_fetches (verifier_id, scope, path, status, at, count, last_at)
         SELECT v, s, p, st, a, c, l FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::int[], $7::bigint[]) WITH ORDINALITY AS u(v, s, p, st, a, c, l, n) ORDER BY n`,
        [col(r, (x) => x.verifierId), col(r, (x) => x.scope), col(r, (x) => x.path), col(r, (x) => x.status), col(r, (x) => x.at.getTime()), col(r, (x) => x.count), col(r, (x) => x.lastAt.getTime())],
      );
      return;
    }
    case "disclosures": {
      const r = b.records;
      // In dump order, so the ids keep the order the answers were recorded in.
      await c.query(
        `INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed)
         SELECT v, s, i, rc, p, lb, a, vt, ans, d FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::text[], $10::boolean[])
           WITH ORDINALITY AS u(v, s, i, rc, p, lb, a, vt, ans, d, n) ORDER BY n`,
        [
          col(r, (x) => x.verifierId),
          col(r, (x) => x.serial),
          col(r, (x) => x.issuer),
          col(r, (x) => x.residentCode ?? null),
          col(r, (x) => x.purpose),
          col(r, (x) => x.legalBasis ?? null),
          col(r, (x) => x.at.getTime()),
          col(r, (x) => x.validationTime.getTime()),
          col(r, (x) => x.answer),
          col(r, (x) => x.itemsDisclosed),
        ],
      );
      return;
    }
    case "consents": {
      const r = b.records;
      await c.query(
        `INSERT INTO consents (resident_code, verifier_id, granted_at, withdrawn_at)
         SELECT rc, v, g, w FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(rc, v, g, w, n) ORDER BY n`,
        [col(r, (x) => x.residentCode), col(r, (x) => x.verifierId), col(r, (x) => x.grantedAt.getTime()), col(r, (x) => x.withdrawnAt?.getTime() ?? null)],
      );
      return;
    }
    case "statusChecks": {
      // with their ids: a verifier's paging cursor goes on working against the copy
      const cols = b.records.map(statusCheckValues);
      const col = (i: number) => cols.map((r) => r[i]);
      await c.query(
        `INSERT INTO status_checks (id, verifier_id, at, ca_id, serial, certificate_id, status, reason, revoked_at, replaced_by_ca_id, replaced_by_serial)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[], $10::text[], $11::text[])`,
        [b.records.map((r) => r.id), col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7), col(8), col(9)],
      );
      return;
    }
    case "registryOutbox": {
      // in dump order (WITH ORDINALITY): the ids keep the source's delivery order
      const r = b.records;
      await c.query(
        `INSERT INTO registry_outbox (notice_id, resident_code, sequence, body, created_at)
         SELECT n, rc, s, bd, t FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) WITH ORDINALITY AS u(n, rc, s, bd, t, o) ORDER BY o`,
        [col(r, (x) => x.noticeId), col(r, (x) => x.residentCode), col(r, (x) => x.sequence), col(r, (x) => x.body), col(r, (x) => x.createdAt.getTime())],
      );
      return;
    }
    case "auditLog": {
      // as stored, seq and hashes included; the head row follows the last record
      const r = b.records;
      const last = r[r.length - 1]!;
      await c.query(
        `WITH i AS (INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]))
         UPDATE audit_head SET seq = $9, hash = $10 WHERE id = 1`,
        [col(r, (x) => x.seq), col(r, (x) => x.at.getTime()), col(r, (x) => x.actor), col(r, (x) => x.action), col(r, (x) => x.subject), col(r, (x) => x.detail), col(r, (x) => x.prevHash), col(r, (x) => x.hash), last.seq, last.hash],
      );
      return;
    }
    case "auditCheckpoints": {
      const r = b.records;
      await c.query(
        `INSERT INTO audit_checkpoints (seq, hash, at, ca_id, cert_der, signature)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[])`,
        [col(r, (x) => x.seq), col(r, (x) => x.hash), col(r, (x) => x.at.getTime()), col(r, (x) => x.caId), col(r, (x) => x.certificateDer), col(r, (x) => x.signature)],
      );
      return;
    }
  }
}

/**
 * The id the next liveness check gets: the sequence's next value, or above the highest row if checks were loaded
 * with their ids (a copy). Read without taking a value (nextval would burn one).
 */
async function nextStatusCheckIdIn(c: ClientBase): Promise<number> {
  return Number((await c.query<{ n: string }>(NEXT_STATUS_CHECK_ID)).rows[0]!.n);
}

const NEXT_STATUS_CHECK_ID =
  "SELECT GREATEST(coalesce((SELECT max(id) FROM status_checks), 0) + 1, (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM status_checks_id_seq)) AS n";

/** Makes the sequence hand out `next` next (is_called false: setval's value is then the next nextval's). */
async function moveStatusCheckSequence(c: ClientBase, next: number): Promise<void> {
  await c.query("SELECT setval('status_checks_id_seq', $1, false)", [next]);
}

/** Appends checks in the order given (one statement: their ids keep that order). */
async function insertStatusChecks(c: ClientBase, checks: readonly StatusCheckRecord[]): Promise<void> {
  if (!checks.length) return;
  const cols = checks.map(statusCheckValues);
  const col = (i: number) => cols.map((r) => r[i]);
  await c.query(
    `INSERT INTO status_checks (verifier_id, at, ca_id, serial, certificate_id, status, reason, revoked_at, replaced_by_ca_id, replaced_by_serial)
     SELECT v, a, ca, s, ci, st, r, ra, rc, rs FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::text[], $10::text[])
       WITH ORDINALITY AS u(v, a, ca, s, ci, st, r, ra, rc, rs, n) ORDER BY n`,
    [col(0), col(1), col(2), col(3), col(4), col(5), col(6), col(7), col(8), col(9)],
  );
}

/**
 * One row per notice id with the outcome of writing them one after another: later mentions of a notice
 * only update it while it is still held (the upsert's condition), so its first insert keeps its body.
 */
function foldNotices(notices: NoticeCommit["notices"]): Array<NoticeCommit["notices"][number]> {
  const out = new Map<string, NoticeCommit["notices"][number]>();
  for (const n of notices) {
    const prev = out.get(n.noticeId);
    if (!prev) out.set(n.noticeId, n);
    else if (prev.status === "held") out.set(n.noticeId, { ...prev, status: n.status, revocations: n.revocations });
  }
  return [...out.values()];
}
