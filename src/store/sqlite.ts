/**
 * The embedded default store: SQLite through better-sqlite3, WAL journal, versioned migrations.
 * better-sqlite3 is synchronous; the Store interface is async so PostgreSQL can implement it unchanged.
 */
import { hash, randomBytes } from "node:crypto";
import { closeSync, fchmodSync, openSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { setImmediate as yieldTurn } from "node:timers/promises";
import { createRequire } from "node:module";
import type Database from "better-sqlite3";
import { JpkiError } from "../errors.js";
import { decodeEntries, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import { collectYoungGeneration } from "./young-generation.js";
import { RevocationBlocks, blockEntries, carriedOrderEntry, municipalitiesOf, municipalityText, splitBlockByPartition } from "./revocation-log.js";
import type { CertificateType, FourItems, Gender } from "../profile/types.js";
import {
  disclosureValues,
  toDisclosure,
  statusCheckValues,
  toStatusCheck,
  toConsent,
  type StatusCheckRowDb,
  type ConsentRowDb,
  type DisclosureRowDb,
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
  verifierFetchValues,
  verifierValues,
  wellFormedCertificateIds,
  carriedMunicipality,
  certificateIdKey,
  certifiedKeyOf,
  derIdKey,
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
  type KeyHolderRow,
} from "./rows.js";
import type {
  CertificateOwner,
  ConsentRecord,
  StatusCheckRecord,
  StoredStatusCheck,
  DisclosureAppend,
  DisclosureOwner,
  DisclosureRecord,
  CaLinkRecord,
  CaCompromiseRecord,
  RetiredCaIdRecord,
  CaRecord,
  CertificateStatusRow,
  OcspResponderRecord,
  OcspSignerKey,
  VerifierCaKey,
  WrappedKeysSeen,
  CertifiedRow,
  NoticeCommit,
  NoticeContext,
  NoticeStatus,
  StoredNotice,
  HeldNoticeKey,
  CertificateQuery,
  CertificateRow,
  CrlRecord,
  CrlReservation,
  CrlStatus,
  IssuanceCommitResult,
  NoticeContextKeys,
  RegistryDecide,
  ResidentForIssuance,
  IssuanceRecord,
  ResidentRecord,
  OutboxNotice,
  RegisteredIssuance,
  RevokeInput,
  CarriedRevocation,
  CarriedStatus,
  Store,
  DumpBatch,
  DumpCounts,
  DumpOptions,
  DumpCrl,
  DumpCrlState,
  DumpKind,
  DumpResident,
  DumpResidentSequence,
  DumpRevocationOrder,
  VerifierCaRecord,
  VerifierFetch,
  VerifierRecord,
  WriteDeadline,
  SharedCertifiedKey,
} from "./types.js";
import { ARL_SCOPE, COUNTER_NOTICE_ID_KEY, CrlInstallFailed, DELTA_SCOPE, DUMP_KINDS, FULL_SCOPE, guardedInstall, sweepBatchSize, type PublishedCrlRecord, type SweepOptions, type CrlScope, type DeltaCrlReservation, type DeltaCrlStatus, type CrlScopeStatus, type DumpCrlScope, type KnownBlocks } from "./types.js";
import { DumpStreamCheck } from "./dump.js";
import { storedTbsIs } from "../pki/tbs.js";
import { ThreadGone, WalCheckpointer } from "./checkpointer.js";
import { Coalescer } from "./coalesce.js";
import { activeCompromiseMessage, auditDigest, caCompromisedAudit, caCreatedAudit, caIdRetiredAudit, caRolloverAudit, retiredMessage, checkpointAudit, crlAudit, issuanceAudit, noticeBatchAudit, ocspAudit, queryAudits, rewrapAudit, registryAudit, registryLoadAudit, registrySweepAudit, revokeAudit, toAudit, toAuditCheckpoint, verifierAudit, type AuditCheckpointRowDb, type AuditContext, type AuditRowDb } from "./audit-ops.js";
import { osActor, sealAudit, type AuditCheckpoint, type AuditEntry, type AuditQuery, type AuditRecord } from "./audit-log.js";
import { fillMarkKey, pageRowsOf, upgradeInProgress, type UpgradeOptions, type UpgradeProgress } from "./upgrade.js";
import { certifiedKeyColumn, isSqliteWriterGuard, NO_CERTIFIED_KEY, WRITER_GUARD_MESSAGE, writerGuardRefused } from "./writer-guard.js";

/**
 * better-sqlite3, required when the first database opens: the workspace module imports this store for every
 * workspace, and a PostgreSQL workspace's commands (a CRL's generation, the daemons' start) paid for loading the
 * driver they never use.
 */
let driver: typeof Database | undefined;
function betterSqlite3(): typeof Database {
  return (driver ??= createRequire(import.meta.url)("better-sqlite3") as typeof Database);
}

type Int = number | bigint;

/**
 * A migration: SQL, or a function for one that must compute (e.g. encode) what it writes, or one that fills a
 * column for every row in pages (FillMigration).
 */
export type Migration = string | ((db: Database.Database) => void) | FillMigration;

/**
 * A migration that fills a column for every row of a table (store/upgrade.ts): the runner commits it in pages by
 * rowid range (runFill), each with how far it has come, and records the version with the last one. Called as a
 * function it does the whole in one go (what tests building an older schema do).
 */
interface SqliteFill {
  /** for the progress line: "certified keys" */
  readonly what: string;
  readonly table: string;
  /** Registers the SQL functions `page` calls, on the connection that runs it. */
  readonly functions: (db: Database.Database) => void;
  /** Run once, in the first page's transaction: adds the column (and drops what it replaces). */
  readonly start: string;
  /** Fills the rows whose rowid is above the first parameter and at most the second. */
  readonly page: string;
  /** Run in the transaction of the last page, which records the version: the index, once the column is filled. */
  readonly finish: (db: Database.Database) => void;
}
export type FillMigration = ((db: Database.Database) => void) & { readonly fill: SqliteFill };

/** Below and above every rowid a table of ours holds (SQLite assigns them from 1 up). */
const ROWID_FLOOR = Number.MIN_SAFE_INTEGER;
const ROWID_CEILING = 9223372036854775807n;

function fillMigration(fill: SqliteFill): FillMigration {
  const whole = (db: Database.Database) => {
    fill.functions(db);
    db.exec(fill.start);
    db.prepare(fill.page).run(ROWID_FLOOR, ROWID_CEILING);
    fill.finish(db);
  };
  return Object.assign(whole, { fill });
}

/** How far a fill has come (meta, fillMarkKey): the rowid its pages reached and the rows they filled. */
interface FillMark {
  readonly through: number;
  readonly done: number;
}

/**
 * The fill of migration `v` (to version v + 1) in pages of `pageRows` rows, each an IMMEDIATE transaction (a step
 * the caller runs: runUpgrade, which decides how the write lock is waited for) that reads the version and the mark under the write lock: a process killed goes on from its last committed page
 * when the store is next opened, and two processes opening the store at once share the pages (each page is taken
 * by whichever holds the lock; neither redoes the other's). The WAL is checkpointed (PASSIVE) between pages, so it
 * holds about one page whatever the table's size. The last page (fewer rows than a page above the mark, rows added
 * meanwhile included) runs `finish`, removes the mark and records the version, in one transaction.
 */
function* fillSteps(db: Database.Database, v: number, fill: SqliteFill, opts: UpgradeOptions): Generator<UpgradeStep, void, unknown> {
  const key = fillMarkKey(v + 1);
  const pageRows = pageRowsOf(opts);
  fill.functions(db);
  let page = 0;
  let lastReport: UpgradeProgress | undefined;
  for (;;) {
    const step = (yield () =>
      db.transaction(() => {
        if ((db.pragma("user_version", { simple: true }) as number) !== v) return undefined; // another process finished it
        const stored = db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(key) as string | undefined;
        let mark: FillMark;
        if (stored === undefined) {
          db.exec(fill.start);
          mark = { through: ROWID_FLOOR, done: 0 };
        } else mark = JSON.parse(stored) as FillMark;
        const end = db.prepare(`SELECT rowid FROM ${fill.table} WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ${pageRows - 1}`).pluck().get(mark.through) as number | undefined;
        const { changes } = db.prepare(fill.page).run(mark.through, end ?? ROWID_CEILING);
        const next: FillMark = { through: end ?? mark.through, done: mark.done + changes };
        void opts.inPage?.(++page, v + 1);
        if (end === undefined) {
          opts.onProgress?.({ what: fill.what, done: next.done, total: next.done, stage: "indexing" });
          fill.finish(db);
          db.prepare("DELETE FROM meta WHERE key = ?").run(key);
          db.pragma(`user_version = ${v + 1}`);
          return { done: next.done, total: next.done, last: true };
        }
        db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, JSON.stringify(next));
        const max = (db.prepare(`SELECT max(rowid) FROM ${fill.table}`).pluck().get() as number | null) ?? next.through;
        return { done: next.done, total: next.done + Math.max(0, max - next.through), last: false };
      }).immediate()) as { done: number; total: number; last: boolean } | undefined;
    if (!step) {
      if (lastReport) opts.onProgress?.({ ...lastReport, total: lastReport.done, stage: "done" }); // finished by another process
      return;
    }
    lastReport = { what: fill.what, done: step.done, total: step.total, stage: step.last ? "done" : "filling" };
    // The page's frames back into the database file, so the next transaction starts the WAL over (unless a reader
    // holds it); after the last page, the index it built.
    db.pragma("wal_checkpoint(PASSIVE)");
    opts.onProgress?.(lastReport);
    if (step.last) return;
  }
}

/**
 * One write transaction of an upgrade, yielded for the caller to run: what it returns goes back into the generator.
 * The caller alone waits for the write lock, so the same steps serve a blocking open and one that waits without
 * blocking the event loop (and ends at a stop).
 */
type UpgradeStep = () => unknown;

/** The steps that bring a store at schema version `from` to SCHEMA_VERSION. */
function* upgradeSteps(db: Database.Database, from: number, opts: UpgradeOptions): Generator<UpgradeStep, void, unknown> {
  for (let v = from; v < SCHEMA_VERSION; v++) {
    const m = MIGRATIONS[v]!;
    if (typeof m !== "string" && "fill" in m) {
      yield* fillSteps(db, v, m.fill, opts);
      continue;
    }
    // IMMEDIATE, and the version read again under the write lock: two processes opening an old store at
    // once run each migration exactly once (the second finds it done).
    yield () =>
      db.transaction(() => {
        const now = db.pragma("user_version", { simple: true }) as number;
        if (now !== v) return;
        if (typeof m === "string") db.exec(m);
        else m(db);
        db.pragma(`user_version = ${v + 1}`);
      }).immediate();
  }
}

/** Longest pause between two tries of the write lock while an open waits without blocking, ms. */
const OPEN_RETRY_MAX_PAUSE_MS = 50;

/**
 * Runs the upgrade from `from`. Without `wait`, each step waits for the write lock in SQLite's busy handler
 * (BUSY_TIMEOUT_MS, the event loop stopped meanwhile): SqliteStore.open, synchronous. With `wait`, the lock is
 * tried at once and, while another process holds it (its upgrade's page, or its write), tried again after an
 * asynchronous pause, up to BUSY_TIMEOUT_MS a step as before: a daemon's SIGTERM handler runs meanwhile, and its
 * stop (`wait.signal`) ends the wait, rejecting with the signal's reason. Once a step holds the lock it runs to
 * its commit: a stop between two pages of a fill leaves the pages committed so far, which the next open goes on
 * from (as after a kill). The same holds when this process runs the upgrade itself and nobody else holds the lock:
 * before each step the event loop turns once (turnUnlessStopped), so a daemon's SIGTERM that came during a step is
 * acted on before the next rather than once the whole upgrade is done (hours for a national store's fill).
 */
function runUpgrade(db: Database.Database, from: number, opts: UpgradeOptions): void;
function runUpgrade(db: Database.Database, from: number, opts: UpgradeOptions, wait: { signal?: AbortSignal }): Promise<void>;
function runUpgrade(db: Database.Database, from: number, opts: UpgradeOptions, wait?: { signal?: AbortSignal }): void | Promise<void> {
  const steps = upgradeSteps(db, from, opts);
  if (!wait) {
    for (let r = steps.next(); !r.done; r = steps.next(r.value()));
    return;
  }
  return (async () => {
    // busy_timeout 0: a step fails with SQLITE_BUSY at once rather than sleeping inside the call.
    db.pragma("busy_timeout = 0");
    try {
      for (let r = steps.next(); !r.done; r = steps.next(await withoutBlockingWait(r.value, wait.signal)));
    } finally {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  })();
}

/** Runs `step` once the write lock is free (busy_timeout 0 on its connection): see runUpgrade. */
async function withoutBlockingWait(step: UpgradeStep, signal: AbortSignal | undefined): Promise<unknown> {
  await turnUnlessStopped(signal);
  const deadline = performance.now() + BUSY_TIMEOUT_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, OPEN_RETRY_MAX_PAUSE_MS)) {
    try {
      return step();
    } catch (e) {
      if ((e as { code?: string }).code !== "SQLITE_BUSY" || performance.now() >= deadline) throw e;
    }
    await pauseUnlessStopped(pause, signal);
  }
}

/**
 * Resolves once the event loop has turned, or rejects with the signal's reason if it is aborted by then. A step runs
 * synchronously, and one that finds the lock free never pauses: the steps of an upgrade nobody else contends for
 * would run back to back in promise continuations, where no signal handler runs. setImmediate's callbacks run after
 * the loop's poll phase, in which libuv delivers a pending SIGTERM to its handler (which aborts the signal).
 */
function turnUnlessStopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => setImmediate(() => (signal?.aborted ? reject(signal.reason) : resolve())));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it is aborted (at once if it already is). */
function pauseUnlessStopped(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** Registers the issuance information of every unrevoked certificate (migration 16, and after a load). */
const REGISTER_UNREVOKED = `
  INSERT INTO registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after)
    SELECT k.serial, k.resident_code, k.ca_id, k.type, k.name, k.address, k.birth_date, k.gender, c.not_before, k.not_after
    FROM certified k JOIN certificates c ON c.serial = k.serial WHERE k.revoked_at IS NULL ORDER BY k.serial;`;

/**
 * Version 23 (issue 8). `certificates.der_sha256` (64 hex characters, indexed) becomes `der_sha256_prefix`, the
 * digest's first 8 octets (rows.ts derIdKey): each issuance put an entry on a random page of that index — the digest
 * is random — and at ≈ 80 bytes an entry, the index grew a leaf page per 50 certificates (a 200M-certificate
 * store: ≈ 16 GB of index against ≈ 3 GB now). Measured on the issuance commit: 0.9 → ≈ 0.3 WAL pages per
 * certificate at the bench's size. A lookup compares the whole digest of each row it finds (certificatesForStatus),
 * so two certificates sharing a prefix are told apart.
 */
const migration23 = fillMigration({
  what: "certificate ids",
  table: "certificates",
  functions: (db) => db.function("jpki_der_id", { deterministic: true }, (der: unknown) => derIdKey(der as Buffer)),
  // The old index first: nothing reads it during the upgrade, and the pages would otherwise update it row by row.
  start: `
  DROP INDEX certificates_der_sha256;
  ALTER TABLE certificates ADD COLUMN der_sha256_prefix BLOB;
  `,
  // The hex digest goes in the same row write (65 bytes a row back).
  page: "UPDATE certificates SET der_sha256_prefix = jpki_der_id(der), der_sha256 = NULL WHERE rowid > ? AND rowid <= ?",
  finish: (db) => {
    // DROP COLUMN rewrites every row in one transaction — the very thing the pages avoid: a table that has rows
    // keeps der_sha256, NULL in each (one octet of record header); nothing reads or writes it. An empty one (a new
    // store) loses it, so new stores keep the schema they always had.
    if (db.prepare("SELECT 1 FROM certificates LIMIT 1").get() === undefined) db.exec("ALTER TABLE certificates DROP COLUMN der_sha256");
    db.exec("CREATE INDEX certificates_der_sha256_prefix ON certificates (der_sha256_prefix)");
  },
});

/**
 * Version 29: each certificate's public key, looked up by `certified_key` (rows.ts certifiedKeyOf: 8 octets of the
 * SHA-256 of its subjectPublicKeyInfo), so an issuance refuses a key the store certified to another resident, for
 * the other type, or revoked for keyCompromise (commitIssuances; rows.ts keyInUse). Filled here for every row; an
 * index entry per issuance at a random place, as the certificate id's (version 23).
 */
const migration29 = fillMigration({
  what: "certified keys",
  table: "certificates",
  functions: (db) => db.function("jpki_certified_key", { deterministic: true }, (der: unknown) => certifiedKeyOf(der as Buffer)),
  start: "ALTER TABLE certificates ADD COLUMN certified_key BLOB",
  page: "UPDATE certificates SET certified_key = jpki_certified_key(der) WHERE rowid > ? AND rowid <= ?",
  // Built once the column is filled: a sort, where an index present during the fill took an entry per row at a
  // random place.
  finish: (db) => db.exec("CREATE INDEX certificates_certified_key ON certificates (certified_key)"),
});

/**
 * Version 32: the writer guard (store/writer-guard.ts says why). A jpki of an earlier release that had the store
 * open before it was upgraded goes on inserting certificates without `certified_key` (version 29) — or, older
 * still, without `der_sha256_prefix` (23): such a row escaped the key-in-use check and was never found by its
 * certificate id. From here a trigger refuses them with a message that tells the operator what to do.
 *
 * First the rows such a writer already inserted get what the fills would have given them (rows written after
 * the fill committed): read through the columns' indexes (SQLite indexes NULL), so the cost is the rows found,
 * not the table; INDEXED BY, as statistics an ANALYZE took while a column was still empty would make a scan of
 * the table look cheaper. A DER with no key to read gets NO_CERTIFIED_KEY, so that NULL means "an older writer"
 * only. The hex digest (version 15), where a store with rows kept the column, goes with it as version 23's pages
 * did.
 *
 * A trigger, as SQLite has no ALTER TABLE … ADD CONSTRAINT (a CHECK would mean rebuilding the table). Its cost on
 * the insert path was thought to be the WHEN clause alone; it was not: any trigger puts every insert into the table
 * in a statement journal, and version 33 replaced it with a CHECK constraint written into the table's definition.
 * A migration that rebuilds the certificates table must keep that constraint.
 */
function migration32(db: Database.Database): void {
  fillOlderWritersRows(db);
  db.exec(`
  CREATE TRIGGER jpki_writer_guard BEFORE INSERT ON certificates
    WHEN NEW.certified_key IS NULL OR NEW.der_sha256_prefix IS NULL
  BEGIN
    SELECT RAISE(ABORT, '${WRITER_GUARD_MESSAGE.replace(/'/g, "''")}');
  END;
  `);
}

/**
 * What an older writer left empty (version 32): each row's certificate id and certified key from its DER, found
 * through the columns' indexes (SQLite indexes NULL), so the cost is the rows found, not the table.
 */
function fillOlderWritersRows(db: Database.Database): void {
  db.function("jpki_der_id", { deterministic: true }, (der: unknown) => derIdKey(der as Buffer));
  db.function("jpki_certified_key_column", { deterministic: true }, (der: unknown) => certifiedKeyColumn(der as Buffer));
  const hexDigest = (db.pragma("table_info(certificates)") as Array<{ name: string }>).some((c) => c.name === "der_sha256");
  db.exec(`
  UPDATE certificates INDEXED BY certificates_der_sha256_prefix SET der_sha256_prefix = jpki_der_id(der)${hexDigest ? ", der_sha256 = NULL" : ""} WHERE der_sha256_prefix IS NULL;
  UPDATE certificates INDEXED BY certificates_certified_key SET certified_key = jpki_certified_key_column(der) WHERE certified_key IS NULL;
  `);
}

/**
 * The writer guard's CHECK constraint (version 33), named by its message: SQLite's error is "CHECK constraint
 * failed: <name>", so an older jpki shows what to do (writer-guard.ts isSqliteWriterGuard reads it back).
 */
export const WRITER_GUARD_CHECK = `CONSTRAINT "${WRITER_GUARD_MESSAGE.replace(/"/g, '""')}" CHECK (certified_key IS NOT NULL AND der_sha256_prefix IS NOT NULL)`;

/**
 * Version 33: the writer guard (version 32) becomes a CHECK constraint in the certificates table's definition, and
 * its trigger goes. Why: a table with a trigger makes every INSERT into it a "multi-write" statement, which with
 * its constraints that may abort (the primary key, the foreign key to cas) SQLite runs inside a statement
 * journal — each page the insert changes copied to an in-memory journal first, allocated and freed per row.
 * Measured (perf of the issue bench's main thread; the same groups committed in turn to a store with the trigger
 * and to one without, in one process): ≈ 3–5 µs of CPU per issued certificate — the journal's page copies
 * (subjournalPageIfRequired, ≈ 3 µs), its allocations and their page faults. A CHECK constraint refuses the same
 * rows (a NULL certified key or certificate id) with no journal for a single-row INSERT.
 *
 * SQLite has no ALTER TABLE … ADD CONSTRAINT, and rebuilding a national certificates table would take hours, so
 * the constraint is written into the table's stored definition (sqlite_schema), as SQLite's documentation
 * describes for schema changes that leave the stored rows' format alone ("Making Other Kinds Of Table Schema
 * Changes", lang_altertable.html): in this migration's transaction, under the write lock, with the schema
 * version raised so every other connection — an older jpki's too — reads the new definition before its next
 * statement. No row breaks it: version 32 filled what older writers left empty and its trigger refused the rest;
 * what slipped in even so (an older writer between the two versions cannot: the trigger stood) is filled first
 * all the same. The table keeps its rows, indexes and rowids; a later ALTER TABLE … ADD COLUMN inserts its column
 * before the constraint (SQLite keeps that offset). better-sqlite3 opens connections in SQLite's defensive mode,
 * which forbids writing sqlite_schema: lifted for these statements only.
 */
function migration33(db: Database.Database): void {
  fillOlderWritersRows(db);
  const table = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'certificates'").pluck().get() as string;
  if (!table.endsWith(")")) throw new Error(`certificates table definition does not end in ')': ${table.slice(-40)}`);
  db.exec("DROP TRIGGER jpki_writer_guard");
  const version = db.pragma("schema_version", { simple: true }) as number;
  db.unsafeMode(true);
  try {
    db.pragma("writable_schema = ON");
    db.prepare("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'certificates'").run(`${table.slice(0, -1)}, ${WRITER_GUARD_CHECK})`);
    db.pragma(`schema_version = ${version + 1}`);
  } finally {
    db.pragma("writable_schema = RESET");
    db.unsafeMode(false);
  }
}

/** Ordered migrations; the index + 1 is the schema version. Never edit a published one, append. */
export const MIGRATIONS: readonly Migration[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE cas (
    id TEXT PRIMARY KEY,
    prefecture TEXT NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('signature','authentication')),
    cert_der BLOB NOT NULL,
    key_pem TEXT NOT NULL,
    key_id BLOB NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE residents (
    resident_code TEXT PRIMARY KEY,
    municipality_code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    status TEXT NOT NULL
  );
  CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    ca_id TEXT NOT NULL REFERENCES cas(id),
    type TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    der BLOB NOT NULL,
    revoked_at INTEGER,
    reason INTEGER,
    revocation_source TEXT
  );
  CREATE INDEX certificates_resident ON certificates (resident_code, type) WHERE revoked_at IS NULL;
  CREATE INDEX certificates_revoked ON certificates (ca_id, serial) WHERE revoked_at IS NOT NULL;
  CREATE TABLE crls (
    ca_id TEXT NOT NULL REFERENCES cas(id),
    number INTEGER NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    entries INTEGER,
    path TEXT,
    sha256 TEXT,
    PRIMARY KEY (ca_id, number)
  );
  `,
  `
  CREATE TABLE notices (
    notice_id TEXT PRIMARY KEY,
    resident_code TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('applied','held')),
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    applied_at INTEGER,
    revocations INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX notices_held ON notices (resident_code, sequence) WHERE status = 'held';
  CREATE TABLE resident_sequences (resident_code TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL);
  CREATE TABLE crl_dirty (ca_id TEXT PRIMARY KEY, since INTEGER NOT NULL);
  CREATE INDEX certificates_resident_all ON certificates (resident_code);
  `,
  `
  ALTER TABLE residents ADD COLUMN notice_sequence INTEGER NOT NULL DEFAULT 0;
  `,
  // Revoking must touch as few B-trees as possible: the partial index of unrevoked certificates per
  // resident cost one more scattered page per revocation, and certificates_resident_all serves its queries.
  `
  DROP INDEX certificates_resident;
  `,
  `
  ALTER TABLE certificates ADD COLUMN application_id TEXT;
  CREATE UNIQUE INDEX certificates_application ON certificates (application_id) WHERE application_id IS NOT NULL;
  `,
  // CRL freshness by revision instead of a time mark: every transaction that revokes bumps its CA's revision;
  // a CRL number is reserved together with the revision it is sure to cover, and publishing marks the CA
  // clean only up to that revision. (A time mark cleared revocations committed while a CRL was being built.)
  // A CRL row is reserved, published, or superseded by a higher number published first.
  `
  CREATE TABLE crl_state (
    ca_id TEXT PRIMARY KEY REFERENCES cas(id),
    revision INTEGER NOT NULL DEFAULT 0,
    published_revision INTEGER NOT NULL DEFAULT 0
  );
  INSERT INTO crl_state (ca_id, revision, published_revision) SELECT ca_id, 1, 0 FROM crl_dirty;
  DROP TABLE crl_dirty;
  ALTER TABLE crls ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE crls ADD COLUMN state TEXT NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved','published','superseded'));
  UPDATE crls SET state = 'published' WHERE path IS NOT NULL;
  `,
  // Version 7, the hot paths at national scale (issue 8). Measured at 1M residents / 2M certificates, a
  // notice batch spent most of its time writing scattered pages (the certificates table with its DER, its
  // revoked-serial index, the sequence table and its separate key index) and a CRL build re-encoded every
  // entry. Now:
  // - certified: what the CA certified and each certificate's revocation, clustered by resident code (WITHOUT
  //   ROWID), so reading a resident's certificates for a notice and revoking one touch the same page; the
  //   certificates table keeps the DER and the cold columns and is written once, at issuance;
  // - resident_sequences without a rowid: one B-tree instead of a table and its key index;
  // - revocation_log: append-only, per CA, each block the DER of the CRL entries one transaction revoked,
  //   with 8 bytes of metadata per entry (not_after in seconds; municipality code, the partition key), so a
  //   CRL is the concatenation of its CA's blocks, filtered only where a block holds an expired certificate.
  migration7,
  // 8: OCSP (RFC 6960): each CA's delegated signing certificate and its key, encrypted as CA keys are.
  `
  CREATE TABLE ocsp_responders (
    ca_id TEXT PRIMARY KEY REFERENCES cas(id),
    serial TEXT NOT NULL,
    cert_der BLOB NOT NULL,
    key_pem TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL
  );
  `,
  // 9: municipality partitions and ARLs (issue 9). See migration9.
  migration9,
  // 10: registered signature verifiers (署名検証者, issue 9 point 6): who may fetch revocation
  // information (credentials as hashes only), the workspace's verifier CA for their client certificates, and
  // what each fetched. verifier_fetches is append-only and written in batches by `jpki serve`; no foreign key,
  // so a batch insert costs one B-tree append per row plus its index entry.
  `
  CREATE TABLE verifier_ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert_der BLOB NOT NULL,
    key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE verifiers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('government','private')),
    token_sha256 TEXT UNIQUE,
    cert_sha256 TEXT UNIQUE,
    cert_not_after INTEGER,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE verifier_fetches (
    id INTEGER PRIMARY KEY,
    verifier_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX verifier_fetches_verifier ON verifier_fetches (verifier_id, id);
  `,
  // 11: a fetch record stands for `count` identical fetches (verifier, path, status) answered from `at` to
  // `last_at`: jpki serve aggregates polls per flush interval, where a row per request cost a quarter of a
  // 304's CPU and grew the table by every poll. Older rows are single fetches (count 1, last_at NULL = at).
  `
  ALTER TABLE verifier_fetches ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE verifier_fetches ADD COLUMN last_at INTEGER;
  `,
  // 12: delta CRLs (RFC 5280 §5.2.4, crl/delta.ts). delta_mark, on a full CRL: the CA's last revocation_log
  // block id when its number was reserved, under the write lock — every later block of the CA holds a
  // revocation the CRL may miss, so a delta on it lists exactly those blocks. base_number, on a delta: the
  // number of its base. A full CRL published before this version has no mark, and no delta is built on it.
  `
  ALTER TABLE crls ADD COLUMN delta_mark INTEGER;
  ALTER TABLE crls ADD COLUMN base_number INTEGER;
  `,
  // 13: no index of certificates by resident. Since version 7, certified (keyed by resident code, then
  // serial) answers every question by resident, and certificates is reached from it by serial; the index
  // only cost each issuance one more B-tree insert at a random page (measured: about a tenth of the
  // commit's time per certificate).
  `
  DROP INDEX IF EXISTS certificates_resident_all;
  `,
  // 14: the disclosure log (issue 11 point 1): every answer of POST /v1/validate — which verifier asked about
  // which certificate, for which purpose and legal basis, when, what it was told and whether the resident's
  // current four items went with it (never the items themselves) — so a resident can see who checked their
  // certificates (jpki disclosure --resident). Append-only, written in groups by jpki serve before it answers.
  `
  CREATE TABLE disclosures (
    id INTEGER PRIMARY KEY,
    verifier_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    issuer TEXT NOT NULL,
    resident_code TEXT,
    purpose TEXT NOT NULL,
    legal_basis TEXT,
    at INTEGER NOT NULL,
    validation_time INTEGER NOT NULL,
    answer TEXT NOT NULL,
    items_disclosed INTEGER NOT NULL CHECK (items_disclosed IN (0, 1))
  );
  CREATE INDEX disclosures_resident ON disclosures (resident_code, id) WHERE resident_code IS NOT NULL;
  `,
  // 15: liveness checks and old/new certificate links (issue 11 point 4): see migration15.
  migration15,
  // 16: the issuance information the registry side registered (発行情報, 電子証明書発行者情報の登録; issue 12
  // point 1, store/types.ts RegisteredIssuance): the registry network's own copy, one row per unrevoked
  // certificate, written by the transaction that commits the certificate and, when this migration was written,
  // deleted by every transaction that revokes it (since then a notice batch leaves a revoked certificate's row
  // for the daily sweep, and registeredOf skips it: sweepRegisteredIssuances). Keyed by serial (a revocation
  // knows the serial, not always the registry's code for it) and indexed by resident (a counter procedure
  // compares one resident's). Filled here from the certificates not revoked, as if registered when they were
  // issued.
  `
  CREATE TABLE registry_issuances (
    serial TEXT PRIMARY KEY,
    resident_code TEXT NOT NULL,
    ca_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('signature','authentication')),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX registry_issuances_resident ON registry_issuances (resident_code);
  ${REGISTER_UNREVOKED}
  `,
  // 17: the registry side's transactional outbox (store/types.ts OutboxNotice): each change notice the counter
  // decided, written by the transaction that changes the record and deleted once delivered to the CA side, so
  // a process killed between the two loses nothing. `id` keeps the enqueuing order (a new row's rowid is above
  // every row present), which delivery follows: oldest first, per resident in sequence order.
  `
  CREATE TABLE registry_outbox (
    id INTEGER PRIMARY KEY,
    notice_id TEXT NOT NULL UNIQUE,
    resident_code TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  // 18: CA keys in a PKCS#11 token (issue 13 point 1): the key's RFC 7512 URI (store/types.ts CaRecord.keyRef);
  // NULL for a software key, whose encrypted PEM stays in key_pem (empty for a token key).
  `
  ALTER TABLE cas ADD COLUMN key_ref TEXT;
  `,
  // 19: the audit log (監査ログ; issue 13 point 2, store/audit-log.ts): one row per operation, appended by the
  // operation's own transaction, chained by SHA-256. `seq` is the rowid: the head is the last row, found by one
  // descent of the primary key (no head table: SQLite's single write lock already serializes appends).
  // audit_checkpoints: the head signed by a CA key (audit/checkpoint.ts), one row per checkpoint.
  `
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
  );
  CREATE TABLE audit_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    ca_id TEXT NOT NULL,
    cert_der BLOB NOT NULL,
    signature BLOB NOT NULL
  );
  `,
  // 20: CA key rollover (issue 13 point 5; ca/rollover.ts, store/types.ts CaLinkRecord). A new
  // key generation is a CA row of its own ("13-sig-g2"), so `cas` keeps its shape; this table holds each rollover's
  // two link certificates. One successor per generation (old_ca_id UNIQUE), so of two rollovers at once one wins.
  `
  CREATE TABLE ca_links (
    new_ca_id TEXT PRIMARY KEY REFERENCES cas(id),
    old_ca_id TEXT NOT NULL UNIQUE REFERENCES cas(id),
    old_with_new BLOB NOT NULL,
    new_with_old BLOB NOT NULL,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 21: a rollover after a key compromise (ca/rollover.ts `compromised`) records the successor WITHOUT link
  // certificates: a NewWithOld would make the new root vouch for whatever the stolen key signs. The row stays (it is
  // what refuses a second rollover of the old generation), so the link columns become nullable, both or neither.
  // SQLite cannot drop NOT NULL in place: the table is rebuilt (nothing references it).
  `
  CREATE TABLE ca_links_v21 (
    new_ca_id TEXT PRIMARY KEY REFERENCES cas(id),
    old_ca_id TEXT NOT NULL UNIQUE REFERENCES cas(id),
    old_with_new BLOB,
    new_with_old BLOB,
    created_at INTEGER NOT NULL,
    CHECK ((old_with_new IS NULL) = (new_with_old IS NULL))
  ) WITHOUT ROWID;
  INSERT INTO ca_links_v21 (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at)
    SELECT new_ca_id, old_ca_id, old_with_new, new_with_old, created_at FROM ca_links;
  DROP TABLE ca_links;
  ALTER TABLE ca_links_v21 RENAME TO ca_links;
  `,
  // 22: the disclosure log's per-resident index is kept apart and brought up to date in batches (#indexDisclosures),
  // not by every commit of jpki serve. An index on disclosures put each record on a leaf page of its resident's
  // own: a group of 11 answers wrote ≈ 17 WAL frames, ≈ 11 µs per record more than the table alone, on the
  // thread that answers. Sorted by resident in a batch of thousands, records of one resident share their pages.
  // What the index does not cover yet (ids above indexed_through) a reader scans: a bounded tail.
  `
  CREATE TABLE disclosures_by_resident (
    resident_code TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (resident_code, id)
  ) WITHOUT ROWID;
  INSERT INTO disclosures_by_resident (resident_code, id) SELECT resident_code, id FROM disclosures WHERE resident_code IS NOT NULL ORDER BY resident_code, id;
  DROP INDEX disclosures_resident;
  CREATE TABLE disclosure_index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_through INTEGER NOT NULL
  );
  INSERT INTO disclosure_index_state (id, indexed_through) SELECT 1, coalesce(max(id), 0) FROM disclosures;
  `,
  migration23,
  // 24: applied resident-code changes by their old code, for notices that still name it (#noticeContext's
  // codeChanges). Partial: code changes are a sliver of the notices.
  `
  CREATE INDEX notices_code_changes ON notices (resident_code) WHERE kind = 'resident-code-change' AND status = 'applied';
  `,
  migration25,
  // 26: CA ids never to be created again (Store.retireCaIds): a restore records those whose CRLs the workspace it
  // replaced had published, under a CA the backup does not hold.
  `
  CREATE TABLE retired_ca_ids (
    id TEXT PRIMARY KEY,
    retired_at INTEGER NOT NULL,
    reason TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  // 27: CRL entries a restore carried over for certificates the store has no row of (Store.carryRevocations), by
  // serial: their CRL entries are in the revocation log, and OCSP answers them revoked from here (certificateStatus)
  // rather than unknown. Entries carried before this version are not back-filled (OCSP says unknown for them, as it did).
  `
  CREATE TABLE carried_revocations (
    serial TEXT PRIMARY KEY,
    ca_id TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    reason INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 28: a verifier's history by the time of its checks (GET /v1/status/history?since=): with only (verifier_id, id),
  // since filtered every check of the verifier after the cursor — 0.4–0.6 s a request at 3M checks, on the serving
  // thread (a review helper's repro; listStatusChecks).
  `
  CREATE INDEX status_checks_verifier_at ON status_checks (verifier_id, at, id);
  `,
  migration29,
  // 30: the registry record's notice sequence each certificate was issued at (IssuanceRecord.registrySequence): a
  // notice at or below it is already in what the certificate certifies, and does not revoke it for differing items
  // (registry/notice-rules.ts decideRevocations). Certificates from before keep none, and are compared as they were.
  `
  ALTER TABLE certified ADD COLUMN registry_sequence INTEGER;
  `,
  // 31: a retired generation's key declared compromised after an ordinary rollover (Store.declareCaCompromised): its
  // NewWithOld kept vouching for the stolen key under the successor's root, and nothing could revoke a link
  // certificate (found by a review helper). Set once, on the rollover's row; the ARLs list the links from then on.
  `
  ALTER TABLE ca_links ADD COLUMN compromised_at INTEGER;
  `,
  migration32,
  migration33,
];

/**
 * Version 25: a record closed by a resident-code change (住民票コード変更) names the code the person moved to
 * (`successor_code`), so 'registry apply' can follow a later notice still filed under the old code
 * (registry/apply.ts) instead of skipping it — a death left the record under the new code active. A record
 * closed before is given its successor where the CA side applied the same change: the applied resident-code-change
 * notice under the closed code at the record's sequence (the index of version 24), naming a code the registry
 * holds. Others (no such notice: the CA side never took it, or a counter change that sent none) stay without one,
 * and a notice under their old code is skipped as before.
 */
function migration25(db: Database.Database): void {
  db.function("jpki_new_resident_code", { deterministic: true }, (body: unknown) => newResidentCodeOf(String(body)) ?? null);
  db.exec(`
  ALTER TABLE residents ADD COLUMN successor_code TEXT;
  UPDATE residents AS r SET successor_code = (
    SELECT s.resident_code FROM notices n JOIN residents s ON s.resident_code = jpki_new_resident_code(n.body)
    WHERE n.resident_code = r.resident_code AND n.kind = 'resident-code-change' AND n.status = 'applied' AND n.sequence = r.notice_sequence
    LIMIT 1
  ) WHERE r.status = 'removed' AND r.notice_sequence > 0;
  `);
}

/**
 * Version 15 (issue 11 point 4). `certificates.der_sha256`: the certificate id a verifier names in a liveness
 * check (hex SHA-256 of the DER, what it can compute from the certificate it stored), filled for every row here
 * and by every insert after (a plain column: an expression index would need our SQL function in every program
 * that writes the file). `status_checks`: each verifier's check history, append-only, read by verifier and id.
 * `consents`: the registry side's record of a resident's consent that a verifier learn the link; at most one
 * live (not withdrawn) per resident and verifier.
 */
function migration15(db: Database.Database): void {
  db.function("jpki_sha256_hex", { deterministic: true }, (der: unknown) => hash("sha256", der as Buffer, "hex"));
  db.exec(`
  ALTER TABLE certificates ADD COLUMN der_sha256 TEXT;
  UPDATE certificates SET der_sha256 = jpki_sha256_hex(der);
  CREATE INDEX certificates_der_sha256 ON certificates (der_sha256);
  CREATE TABLE status_checks (
    id INTEGER PRIMARY KEY,
    verifier_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    ca_id TEXT,
    serial TEXT,
    certificate_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('good', 'revoked', 'unknown')),
    reason INTEGER,
    revoked_at INTEGER,
    replaced_by_ca_id TEXT,
    replaced_by_serial TEXT
  );
  CREATE INDEX status_checks_verifier ON status_checks (verifier_id, id);
  CREATE TABLE consents (
    id INTEGER PRIMARY KEY,
    resident_code TEXT NOT NULL,
    verifier_id TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    withdrawn_at INTEGER
  );
  CREATE UNIQUE INDEX consents_live ON consents (resident_code, verifier_id) WHERE withdrawn_at IS NULL;
  CREATE INDEX consents_verifier ON consents (verifier_id, id);
  `);
}

interface RegisteredRowDb {
  serial: string;
  resident_code: string;
  ca_id: string;
  type: CertificateType;
  name: string;
  address: string;
  birth_date: string;
  gender: string;
  not_before: Int;
  not_after: Int;
}

function toRegistered(r: RegisteredRowDb): RegisteredIssuance {
  return { serial: r.serial, caId: r.ca_id, type: r.type, residentCode: r.resident_code, fourItems: itemsOf(r), notBefore: new Date(Number(r.not_before)), notAfter: new Date(Number(r.not_after)) };
}

/**
 * What the commit's re-check (the issuanceCheck statement) answers of a resident whose certificate was signed: still
 * as signed, no longer active, the CA side ahead of the registry (a notice the registry has not applied), or
 * changed since (its notice sequence, municipality or one of the four items). No row: no such resident.
 */
const ISSUANCE_CHECK = { current: 0, gone: 1, behind: 2, changed: 3 } as const;

/** residentForIssuance's row: the registry record's columns, its notice sequence, then the CA side's. */
type ResidentForIssuanceRow = [code: string, municipality: string, name: string, address: string, birthDate: string, gender: string, status: string, registrySequence: number, caSequence: number, successor: string | null];

function residentOfIssuanceRow(r: ResidentForIssuanceRow): ResidentRecord {
  return toResident({ resident_code: r[0], municipality_code: r[1], name: r[2], address: r[3], birth_date: r[4], gender: r[5], status: r[6], successor_code: r[9] });
}

/**
 * A registry_issuances row whose certificate is revoked (the CA side's code of a serial is certificates'; the
 * registry's may differ until both sides have applied a resident-code change).
 */
const REVOKED_REGISTERED = `EXISTS (SELECT 1 FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial
  WHERE c.serial = registry_issuances.serial AND k.revoked_at IS NOT NULL)`;

/** WAL pages after which a bulk writer checkpoints on its own thread too (256 MiB of 4 KiB pages). */
const BULK_AUTOCHECKPOINT = 65536;
/** meta's key for the floor of the next liveness-check id (Store.skipStatusCheckIds). */
const STATUS_CHECK_NEXT_KEY = "status_checks.next_id";
/** The next liveness-check id: above every row, and at least the floor skipStatusCheckIds set. */
const NEXT_STATUS_CHECK_ID = `SELECT max(coalesce((SELECT max(id) FROM status_checks), 0) + 1, coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${STATUS_CHECK_NEXT_KEY}'), 1)) AS n`;

/** The newest disclosure record the per-resident index covers (migration 22). */
const DISCLOSURES_INDEXED_THROUGH = "SELECT indexed_through FROM disclosure_index_state WHERE id = 1";
/** Serving-path commits (disclosures, liveness checks) between two checkpoints on the checkpointer's thread. */
const APPENDS_PER_CHECKPOINT = 64;
/**
 * Disclosure records above the per-resident index's mark (migration 22) from which an append also brings the index
 * up to date. Batches this size let the records of one resident share index pages, and what a reader scans beyond
 * the index stays about this short — whoever appended them, a process killed before it closed included.
 */
const DISCLOSURES_PER_INDEX = 4096;
/**
 * WAL frames past which a bulk writer waits for the checkpointer thread before its next transaction, so that
 * transaction starts the WAL over (store/checkpointer.ts): 128 MiB of 4 KiB pages. A larger WAL slows every page
 * read (SQLite looks a page up in one hash table per 4096 frames, newest first) and takes longer to recover after a
 * crash; each wait idles the writer for one copy-back of the latest commit (≈ 40 ms after a notice batch of ≈ 1,500
 * frames, an fsync of scattered pages). Measured at 1M residents, 100,000 notices: waiting after every fourth batch
 * (as before) idled the writer ≈ 0.9 s of a 6.5 s run; at 8192 frames 0.5 s, at 16384 0.3 s (ingestion 4.40-4.56 s
 * in three runs), at 32768 0.2 s (4.29-4.48 s). Half of BULK_AUTOCHECKPOINT, where the writer copies back itself.
 */
const SETTLE_FRAMES = 32_768;

/**
 * Certificates in one issuance commit from which it counts as a bulk write (checkpointed on the checkpointer's
 * thread): a batch's groups, not a single `jpki issue`, which would start a thread for one commit.
 */
const BULK_ISSUANCE_GROUP = 64;

/**
 * Certificates committed in bulk between two checkpoints on the checkpointer's thread (four groups of 500). A
 * checkpoint copies each page once however many commits since the last one wrote it (the tables' right-hand pages,
 * the indexes' upper levels, and every leaf that took a key in more than one of those groups), then syncs the
 * database file once. Measured (issue bench, 4,000 certificates a round): the checkpointer's thread took ≈ 18 µs of
 * CPU a certificate checkpointing after every group of 500 (≈ 600–900 frames each), ≈ 8 µs after every fourth,
 * ≈ 7 µs after every eighth. What it waits for is already durable: the writer syncs the WAL before a caller hears
 * of its certificate (syncCommitted), so this only moves when the WAL is copied back. The WAL holds four groups'
 * frames more at most (≈ 15 MB), far below SETTLE_FRAMES, which still bounds it.
 */
const ISSUANCES_PER_CHECKPOINT = 2000;

/**
 * Notices committed between two checkpoints on the checkpointer's thread (four batches of the default 1000), as for
 * issuance above: a checkpoint copies each page once however many batches wrote it since the last one — the
 * resident_sequences leaves (nearly all of them in every batch once the table holds a few hundred thousand codes),
 * the notices' and revocation log's last pages, the indexes' upper levels. Measured at 1M residents, 100,000 notices,
 * six alternated pairs (load 9–13): the checkpointer's thread 16.4–18.0 → 11.8–14.7 µs a notice, lower in every
 * pair (median 17.2 → 13.2); the whole process 103–114 → 98–109 (median 108.5 → 104.5); the committing thread not
 * resolved (54–60 either way). Again with #beforeBulk's kick, against the build before (three pairs, load 13–15):
 * that thread 18.4–19.9 → 15.0–15.8, the rest not resolved. What the thread copies back is durable in the WAL already
 * (the run syncs it), and SETTLE_FRAMES still bounds the WAL (#beforeBulk asks for what was not kicked yet).
 */
const NOTICES_PER_CHECKPOINT = 4000;

/** Audit records per page read (auditRecords). */
const AUDIT_PAGE = 500;

/** Entries per log block written by the migration (later blocks hold what one transaction revoked). */
const MIGRATION_BLOCK = 4096;

function migration7(db: Database.Database): void {
  db.exec(`
  CREATE TABLE certified (
    resident_code TEXT NOT NULL,
    serial TEXT NOT NULL,
    ca_id TEXT NOT NULL,
    type TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    gender TEXT NOT NULL,
    not_after INTEGER NOT NULL,
    revoked_at INTEGER,
    reason INTEGER,
    source TEXT,
    PRIMARY KEY (resident_code, serial)
  ) WITHOUT ROWID;
  INSERT INTO certified
    SELECT resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after,
      revoked_at, CASE WHEN revoked_at IS NOT NULL THEN coalesce(reason, 0) END, revocation_source
    FROM certificates ORDER BY resident_code, serial;
  CREATE TABLE revocation_log (
    id INTEGER PRIMARY KEY,
    ca_id TEXT NOT NULL,
    entries INTEGER NOT NULL,
    min_not_after INTEGER NOT NULL,
    der BLOB NOT NULL,
    meta BLOB NOT NULL
  );
  CREATE INDEX revocation_log_ca ON revocation_log (ca_id, id);
  `);
  // The existing revocations become the first blocks, per CA in serial order: the order CRLs listed them in,
  // so the first CRL after the upgrade lists exactly what the last one before it did.
  const page = db.prepare(
    `SELECT ca_id, serial, revoked_at, reason, not_after, municipality_code FROM certificates
     WHERE revoked_at IS NOT NULL AND (ca_id, serial) > (?, ?) ORDER BY ca_id, serial LIMIT ${MIGRATION_BLOCK}`,
  ).raw();
  const log = new RevocationLog(db.prepare("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES (?, ?, ?, ?, ?)"));
  for (let after: [string, string] = ["", ""]; ; ) {
    const rows = page.all(...after) as Array<[string, string, number, number | null, number, string]>;
    let ca = rows[0]?.[0];
    for (const [caId, serial, revokedAt, reason, notAfter, municipality] of rows) {
      if (caId !== ca) (log.flush(), (ca = caId));
      log.add(caId, serial, revokedAt, reason ?? 0, notAfter, municipality);
    }
    log.flush();
    if (rows.length < MIGRATION_BLOCK) break;
    const last = rows[rows.length - 1]!;
    after = [last[0], last[1]];
  }
  // The certificates table without what moved to certified: rebuilt once (one copy) rather than a table
  // rewrite per dropped column.
  db.exec(`
  CREATE TABLE certificates_v7 (
    serial TEXT PRIMARY KEY,
    ca_id TEXT NOT NULL REFERENCES cas(id),
    type TEXT NOT NULL,
    resident_code TEXT NOT NULL,
    municipality_code TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    der BLOB NOT NULL,
    application_id TEXT
  );
  INSERT INTO certificates_v7 SELECT serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id
    FROM certificates ORDER BY serial;
  DROP TABLE certificates;
  ALTER TABLE certificates_v7 RENAME TO certificates;
  CREATE INDEX certificates_resident_all ON certificates (resident_code);
  CREATE UNIQUE INDEX certificates_application ON certificates (application_id) WHERE application_id IS NOT NULL;
  CREATE TABLE resident_sequences_v7 (resident_code TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO resident_sequences_v7 SELECT resident_code, last_sequence FROM resident_sequences ORDER BY resident_code;
  DROP TABLE resident_sequences;
  ALTER TABLE resident_sequences_v7 RENAME TO resident_sequences;
  `);
}

/**
 * Version 9: CRLs per scope. `crls.scope` says what a CRL covers ("" full, a municipality code, "arl"); numbers
 * stay one sequence per CA (the primary key is unchanged), shared by its scopes. `crl_scopes` is each
 * partition's and ARL's freshness (revision bumped by every transaction that revokes in the partition, the
 * revision and number its latest published CRL covers); a partition row exists for every municipality the CA
 * issued in. `revocation_log_partition` indexes the log by partition: which blocks hold entries of a
 * municipality, so a partition's CRL reads those blocks only.
 */
function migration9(db: Database.Database): void {
  db.exec(`
  ALTER TABLE crls ADD COLUMN scope TEXT NOT NULL DEFAULT '';
  CREATE INDEX crls_scope ON crls (ca_id, scope, number);
  CREATE TABLE crl_scopes (
    ca_id TEXT NOT NULL REFERENCES cas(id),
    scope TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    published_revision INTEGER NOT NULL DEFAULT 0,
    published_number INTEGER,
    PRIMARY KEY (ca_id, scope)
  ) WITHOUT ROWID;
  INSERT INTO crl_scopes (ca_id, scope) SELECT DISTINCT ca_id, municipality_code FROM certified ORDER BY 1, 2;
  CREATE TABLE revocation_log_partition (
    ca_id TEXT NOT NULL,
    municipality INTEGER NOT NULL,
    block_id INTEGER NOT NULL,
    PRIMARY KEY (ca_id, municipality, block_id)
  ) WITHOUT ROWID;
  `);
  const index = db.prepare("INSERT OR IGNORE INTO revocation_log_partition (ca_id, municipality, block_id) VALUES (?, ?, ?)");
  const page = db.prepare("SELECT id, ca_id, entries, meta FROM revocation_log WHERE id > ? ORDER BY id LIMIT 256").raw();
  for (let after = 0; ; ) {
    const rows = page.all(after) as Array<[number, string, number, Buffer]>;
    for (const [id, caId, count, meta] of rows) for (const m of municipalitiesOf(meta, count)) index.run(caId, m, id);
    if (rows.length < 256) break;
    after = rows[rows.length - 1]![0];
  }
}

/** An unrevoked certificate a notice batch read: what its CRL entry and log metadata need. */
interface UnrevokedCertificate {
  readonly caId: string;
  readonly municipality: string;
  readonly notAfter: number;
}

/** Called for each block a RevocationLog appends: its id and the municipalities (partition keys) it holds. */
type OnBlock = (caId: string, blockId: number, municipalities: ReadonlySet<number>) => void;

/**
 * Collects the CRL entries one transaction revokes (revocation-log.ts) and appends them as one log block per CA,
 * through the caller's insert statement, in that transaction.
 */
class RevocationLog {
  readonly #insert: Database.Statement;
  readonly #onBlock: OnBlock | undefined;
  readonly #blocks = new RevocationBlocks();

  constructor(insert: Database.Statement, onBlock?: OnBlock) {
    this.#insert = insert;
    this.#onBlock = onBlock;
  }

  add(caId: string, serial: string, revokedAt: number, reason: number, notAfter: number, municipality: string): void {
    this.#blocks.add(caId, serial, revokedAt, reason, notAfter, municipality);
  }

  flush(): void {
    for (const b of this.#blocks.take()) {
      const { lastInsertRowid } = this.#insert.run(b.caId, b.entries, b.minNotAfter, b.der, b.meta);
      this.#onBlock?.(b.caId, Number(lastInsertRowid), b.municipalities);
    }
  }
}

function toRetiredCaId(r: { id: string; retired_at: Int; reason: string }): RetiredCaIdRecord {
  return { id: r.id, retiredAt: new Date(Number(r.retired_at)), reason: r.reason };
}

export const SCHEMA_VERSION = MIGRATIONS.length;

/** What SqliteStore.open takes (see there). */
export interface SqliteOpenOptions {
  readonly create?: boolean;
  readonly settleFrames?: number;
  readonly upgrade?: UpgradeOptions;
}

/** How long a statement waits for another process's write lock before ERR_WORKSPACE_LOCKED, ms. */
const BUSY_TIMEOUT_MS = 20_000;
/**
 * The page size (bytes) of a store this jpki creates. SQLite fixes it when the first page is written, so it applies
 * to new stores only (a workspace's \`jpki ca init\`, \`jpki store copy --to sqlite:…\`); an existing store keeps the
 * size it was made with, and one in WAL mode cannot change it short of leaving WAL for a VACUUM.
 */
export const NEW_STORE_PAGE_SIZE = 4096;
/** Checks by id a history page with `since` reads before it looks by time instead (listStatusChecks). */
const SINCE_SCAN = 500;
/** Creates `path` empty with mode 0600 whatever the umask, unless something is there already. */
function createOwnerOnly(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (e) {
    // There already; or no directory to make it in, which SQLite's own open then reports as a missing store.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOENT" || code === "ENOTDIR") return;
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
}

/** How often (ms) a connection looks whether the file outgrew its page cache (SqliteStore.#sizeCache). */
const CACHE_CHECK_MS = 1000;

/** The page cache (PRAGMA cache_size) below which no connection goes, KiB. */
const MIN_CACHE_KIB = 65536;
/** ... and above which none goes, KiB. */
const MAX_CACHE_KIB = 1 << 20;

/**
 * The page cache a connection keeps for a file of `fileBytes`: 64 MiB, or 2 % of the file past 3.2 GB, up to 1 GiB.
 * Pages are read with pread into this cache (no memory map: see SqliteStore.open); at 10M residents (≈ 17 GB)
 * 64 MiB could not even keep the B-trees' interior pages (≈ 1 % of a table), so a lookup paid a syscall per level
 * instead of one for its leaf.
 */
export function pageCacheKiB(fileBytes: number): number {
  return Math.min(MAX_CACHE_KIB, Math.max(MIN_CACHE_KIB, Math.ceil(fileBytes / 50 / 1024)));
}

/**
 * Syncs the WAL file of the database at `file`: every commit in it survives a power cut (fsync is the file's,
 * whichever descriptor asks). The store runs with synchronous=NORMAL, which syncs the WAL only at checkpoints: a
 * process crash loses nothing, a power cut the last commits. Frames already checkpointed are in the database file,
 * which the checkpoint synced; no WAL file, nothing to sync. SQLite's locks are on the database and -shm files,
 * never the WAL, so opening and closing it here releases none of them.
 */
async function syncWalFile(file: string): Promise<void> {
  let h: FileHandle;
  try {
    h = await open(`${file}-wal`, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  try {
    await h.datasync();
  } finally {
    await h.close();
  }
}

/** A certificate with its four items and revocation, in the column names the row mapping (rows.ts) reads. */
const CERT_SELECT = `SELECT c.serial, c.ca_id, c.type, c.resident_code, c.municipality_code, k.name, k.address, k.birth_date, k.gender,
    c.not_before, c.not_after, c.issued_at, c.der, c.application_id, k.revoked_at, k.reason, k.source AS revocation_source, k.registry_sequence
  FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial`;
const APPLICATION_ID = 0x4a504b49; // "JPKI": marks the file as ours

function storeError(e: unknown, what: string): JpkiError {
  if (e instanceof JpkiError) return e;
  const code = (e as { code?: string }).code ?? "";
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
    return new JpkiError("ERR_WORKSPACE_CORRUPT", `the workspace database is damaged (${code}) while ${what}: restore it from a backup`, { cause: e });
  }
  if (code === "SQLITE_BUSY") {
    return new JpkiError("ERR_WORKSPACE_LOCKED", `the workspace is busy (another jpki process is writing) while ${what}: retry when it finishes`, { cause: e });
  }
  if (isSqliteWriterGuard(e)) return writerGuardRefused(what, e);
  return new JpkiError("ERR_STORE", `store failure while ${what}: ${(e as Error).message}`, { cause: e });
}

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly #db: Database.Database;
  readonly #stmts: ReturnType<SqliteStore["prepare"]>;
  #path: string;
  /** Started by the first bulk write (a notice batch); most commands never need it. */
  #checkpointer: WalCheckpointer | undefined;
  #appendCommits = 0;
  /** Certificates committed in bulk since the checkpointer was last asked to copy them back. */
  #issuedSinceKick = 0;
  /** Notices committed since the checkpointer was last asked to copy them back (NOTICES_PER_CHECKPOINT). */
  #noticesSinceKick = 0;
  #settleFrames = SETTLE_FRAMES;
  #markScopesDue: Database.Statement | undefined;
  #markArlDue: Database.Statement | undefined;
  #unmarkDeltaBases: Database.Statement | undefined;
  /** The database file, for #sizeCache ("" in memory); unlike #path it stays set without a checkpointer. */
  readonly #file: string;
  /** The WAL sync in flight (syncCommitted), and the one that follows it, shared by every caller meanwhile. */
  #walSync: Promise<void> | undefined;
  #walSyncNext: Promise<void> | undefined;
  /** The page cache (KiB) the connection was last given; see pageCacheKiB. */
  #cacheKiB = MIN_CACHE_KIB;
  #cacheCheckedAt = 0;

  private constructor(db: Database.Database, path: string) {
    this.#db = db;
    this.#path = path;
    this.#file = path === ":memory:" ? "" : path;
    this.#stmts = this.prepare();
  }

  /**
   * Gives the connection the page cache its file now asks for (pageCacheKiB): a workspace grows under a long
   * \`jpki serve\` or \`jpki watch\`, and a notice run's checkpoints grow it under the ingesting connection.
   * Looked at most once a second.
   */
  #sizeCache(): void {
    const now = Date.now();
    if (this.#file === "" || now - this.#cacheCheckedAt < CACHE_CHECK_MS || !this.#db.open) return;
    this.#cacheCheckedAt = now;
    let file: number;
    try {
      file = statSync(this.#file).size;
    } catch {
      return; // the next statement reports a file that has gone
    }
    const cache = pageCacheKiB(file);
    if (cache !== this.#cacheKiB) {
      this.#db.pragma(`cache_size = -${cache}`);
      this.#cacheKiB = cache;
    }
  }

  /**
   * Opens (and with `create`, creates) a store file. A file that is not a SQLite database, or is
   * SQLite but not ours, is refused with ERR_WORKSPACE_CORRUPT rather than modified. An older store is upgraded,
   * each step waiting up to BUSY_TIMEOUT_MS for another process's write lock (its upgrade) with the event loop
   * stopped: a daemon opens with {@link SqliteStore.openAsync} instead.
   */
  /** `settleFrames`: the WAL frames past which a bulk writer waits for the checkpointer (SETTLE_FRAMES; tests lower it). */
  /** `upgrade`: progress of an upgrade that fills a column for every certificate (store/upgrade.ts). */
  static open(path: string, opts: SqliteOpenOptions = {}): SqliteStore {
    const { db, version } = SqliteStore.#connect(path, opts);
    try {
      runUpgrade(db, version, opts.upgrade ?? {});
      return SqliteStore.#opened(db, path, opts);
    } catch (e) {
      throw SqliteStore.#openFailed(db, path, version, e);
    }
  }

  /**
   * SqliteStore.open, but an upgrade waits for another process's write lock (its upgrade, or its write) without
   * blocking the event loop, and `signal` (a daemon's SIGTERM) ends that wait at once, rejecting with the signal's
   * reason; nothing of the step waited for is applied. Once a step holds the lock a stop changes nothing until it
   * commits, and ends the upgrade before the next step (see runUpgrade): the steps committed stay, and the next open
   * goes on from them. A store already at the current version opens as with `open`: nothing waits.
   */
  static async openAsync(path: string, opts: SqliteOpenOptions & { readonly signal?: AbortSignal } = {}): Promise<SqliteStore> {
    opts.signal?.throwIfAborted();
    const { db, version } = SqliteStore.#connect(path, opts);
    try {
      await runUpgrade(db, version, opts.upgrade ?? {}, { ...(opts.signal ? { signal: opts.signal } : {}) });
      return SqliteStore.#opened(db, path, opts);
    } catch (e) {
      if (opts.signal?.aborted && e === opts.signal.reason) {
        db.close();
        throw e;
      }
      throw SqliteStore.#openFailed(db, path, version, e);
    }
  }

  /** The connection, set up and checked to be a jpki store no newer than this jpki; its schema version. */
  static #connect(path: string, opts: SqliteOpenOptions): { db: Database.Database; version: number } {
    let db: Database.Database | undefined;
    try {
      // A new file is made owner-only first: SQLite would create it 0644 (less the umask), and it gives the WAL
      // and shared-memory files the database file's mode. The workspace makes its file so already; a library
      // caller creating a store directly gets the same. An empty file is a new database to SQLite.
      if (opts.create && path !== ":memory:" && path !== "") createOwnerOnly(path);
      db = new (betterSqlite3())(path, { fileMustExist: !opts.create });
      // Before journal_mode: switching an empty database to WAL writes its first page, which fixes the page size.
      // On a store that exists already this is a no-op (WAL mode).
      if (opts.create) db.pragma(`page_size = ${NEW_STORE_PAGE_SIZE}`);
      // Writers queue on SQLite's write lock; a transaction waits this long for another process's write
      // transaction (all are short: the longest is one batch) before ERR_WORKSPACE_LOCKED.
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("foreign_keys = ON");
      // A larger page cache keeps the B-trees' interior pages and the hot rows in memory (pageCacheKiB).
      db.pragma(`cache_size = -${MIN_CACHE_KIB}`);
      // No memory map, even where SQLite was built with one by default. Mapping the whole file (as this store did
      // before) was measured slower on the 2-core machines here: a page's first touch through the map is a page
      // fault (≈ 4.6 µs on these virtual machines, a pread of it ≈ 2.7), the scattered lookups of the hot paths
      // touch a new page nearly every time, and the kernel's DAMON pageout scheme evicts cold file pages, mapped
      // ones too, so they fault again; the page cache (anonymous memory) stays. Same host, 1M residents: notices
      // 10,740 and 10,877 → 12,382 and 12,814/s, the validation API 0.33 → 0.45× (bench notices, bench api).
      db.pragma("mmap_size = 0");
      // Checkpoint the WAL in larger steps: the default (every 1000 pages) runs a checkpoint after
      // nearly every ingestion batch, rewriting the same scattered pages again and again.
      db.pragma("wal_autocheckpoint = 16384");
      const appId = db.pragma("application_id", { simple: true }) as number;
      const version = db.pragma("user_version", { simple: true }) as number;
      if (appId === 0 && version === 0) {
        const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number };
        if (tables.n > 0) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} is a SQLite database but not a jpki store: point --workspace elsewhere`);
        if (!opts.create) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} is empty: run 'jpki ca init' to create the workspace`);
        db.pragma(`application_id = ${APPLICATION_ID}`);
      } else if (appId !== APPLICATION_ID) {
        throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} is not a jpki store (application id ${appId})`);
      }
      if (version > SCHEMA_VERSION) {
        throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${path} has schema version ${version}, newer than this jpki (${SCHEMA_VERSION}): upgrade jpki`);
      }
      return { db, version };
    } catch (e) {
      throw SqliteStore.#openFailed(db, path, undefined, e);
    }
  }

  /** The store on an upgraded connection, with its options applied. */
  static #opened(db: Database.Database, path: string, opts: SqliteOpenOptions): SqliteStore {
    const store = new SqliteStore(db, path);
    if (opts.settleFrames !== undefined) {
      if (!Number.isSafeInteger(opts.settleFrames) || opts.settleFrames < 0) throw new JpkiError("ERR_USAGE", `settleFrames must be a whole number of WAL frames ≥ 0, not ${opts.settleFrames}`);
      store.#settleFrames = opts.settleFrames;
    }
    return store;
  }

  /**
   * Closes the connection of an open that failed and says why. `upgradingFrom`: the version the upgrade started at,
   * when it was the upgrade that failed — a step that waited out the lock timeout met another process's upgrade
   * (a page, or the index its last page builds), or its write.
   */
  static #openFailed(db: Database.Database | undefined, path: string, upgradingFrom: number | undefined, e: unknown): JpkiError {
    db?.close();
    if ((e as { code?: string }).code === "SQLITE_CANTOPEN") {
      return new JpkiError("ERR_WORKSPACE_MISSING", `no workspace store at ${path}: run 'jpki ca init' or pass --workspace`, { cause: e });
    }
    if (upgradingFrom !== undefined && (e as { code?: string }).code === "SQLITE_BUSY") return upgradeInProgress(upgradingFrom, SCHEMA_VERSION, e);
    return storeError(e, "opening the store");
  }

  private prepare() {
    const db = this.#db;
    return {
      auditHead: db.prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").raw(),
      auditInsert: db.prepare("INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
      putCa: db.prepare(
        "INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at, key_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      getCa: db.prepare("SELECT * FROM cas WHERE id = ?"),
      listCas: db.prepare("SELECT * FROM cas ORDER BY prefecture, purpose DESC, id"),
      residentExists: db.prepare("SELECT 1 FROM residents WHERE resident_code = ?").pluck(),
      upsertResident: db.prepare(
        `INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status, successor_code)
         VALUES (@residentCode, @municipalityCode, @name, @address, @birthDate, @gender, @status, @successorCode)
         ON CONFLICT (resident_code) DO UPDATE SET municipality_code = excluded.municipality_code, name = excluded.name,
           address = excluded.address, birth_date = excluded.birth_date, gender = excluded.gender, status = excluded.status,
           successor_code = excluded.successor_code`,
      ),
      getResident: db.prepare("SELECT * FROM residents WHERE resident_code = ?"),
      successorOf: db.prepare("SELECT successor_code FROM residents WHERE resident_code = ?").pluck(),
      setResidentSequence: db.prepare("UPDATE residents SET notice_sequence = ? WHERE resident_code = ?"),
      residentSequence: db.prepare("SELECT notice_sequence FROM residents WHERE resident_code = ?").pluck(),
      deleteResident: db.prepare("DELETE FROM residents WHERE resident_code = ?"),
      countResidents: db.prepare("SELECT count(*) FROM residents").pluck(),
      activeSameType: db.prepare("SELECT serial FROM certified WHERE resident_code = ? AND type = ? AND revoked_at IS NULL").pluck(),
      // Revoking updates the row in place (on the page notice matching just read) and returns what the
      // certificate's log entry needs.
      revokeCertified: db.prepare(
        "UPDATE certified SET revoked_at = ?, reason = ?, source = ? WHERE resident_code = ? AND serial = ? AND revoked_at IS NULL RETURNING ca_id, municipality_code, not_after",
      ).raw(),
      // A notice batch read the certificate in its own transaction (its CA, partition and not_after are known):
      // a plain UPDATE, checked by its change count. RETURNING cost a result row per revocation.
      revokeKnown: db.prepare("UPDATE certified SET revoked_at = ?, reason = ?, source = ? WHERE resident_code = ? AND serial = ? AND revoked_at IS NULL"),
      residentOfSerial: db.prepare("SELECT resident_code FROM certificates WHERE serial = ?").pluck(),
      insertCertified: db.prepare(
        "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, registry_sequence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      // 発行情報 copied from the certified row the same commit has just inserted: the four items and the rest bound once,
      // not twice (better-sqlite3 converts each text bound to UTF-8 through V8's API, ≈ 1 K instructions a value).
      // OR FAIL, not the default ABORT: an INSERT … SELECT that may abort runs with a statement journal, a copy of every
      // page it is about to change (its two B-trees' leaves, ≈ 8 KB a certificate), kept to undo the statement alone;
      // the one row it writes is checked before anything is written, and a failure rolls the whole group back anyway.
      registerCertified: db.prepare(
        `INSERT OR FAIL INTO registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after)
         SELECT serial, resident_code, ca_id, type, name, address, birth_date, gender, ?, not_after FROM certified WHERE resident_code = ? AND serial = ?`,
      ),
      deleteRegistered: db.prepare("DELETE FROM registry_issuances WHERE serial = ?"),
      // A notice batch leaves a revoked certificate's row in place (see commitNoticeBatch): what the registry holds
      // is the rows whose certificate is not revoked. The CA side's code of a serial is certificates' (the
      // registry's may differ until both sides have applied a resident-code change).
      registeredOf: db.prepare(
        `SELECT * FROM registry_issuances r WHERE r.resident_code = ?
           AND NOT EXISTS (SELECT 1 FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial
                           WHERE c.serial = r.serial AND k.revoked_at IS NOT NULL)
         ORDER BY r.serial`,
      ),
      // The sweep's batches (sweepRegisteredIssuances): the key that ends the next batch of rows after a key,
      // then the batch's rows of revoked certificates and its expired ones; the last batch has no end key.
      sweepBatchEnd: db.prepare("SELECT serial FROM registry_issuances WHERE serial > ? ORDER BY serial LIMIT 1 OFFSET ?").pluck(),
      sweepRevokedRegistered: db.prepare(`DELETE FROM registry_issuances WHERE serial > ? AND serial <= ? AND ${REVOKED_REGISTERED}`),
      sweepRevokedRegisteredTail: db.prepare(`DELETE FROM registry_issuances WHERE serial > ? AND ${REVOKED_REGISTERED}`),
      sweepRegistered: db.prepare("DELETE FROM registry_issuances WHERE serial > ? AND serial <= ? AND not_after < ?"),
      sweepRegisteredTail: db.prepare("DELETE FROM registry_issuances WHERE serial > ? AND not_after < ?"),
      relinkRegistered: db.prepare("UPDATE registry_issuances SET resident_code = ? WHERE resident_code = ?"),
      enqueueOutbox: db.prepare("INSERT INTO registry_outbox (notice_id, resident_code, sequence, body, created_at) VALUES (?, ?, ?, ?, ?)"),
      pendingOutbox: db.prepare("SELECT notice_id, resident_code, sequence, body, created_at FROM registry_outbox ORDER BY id LIMIT ?"),
      ackOutbox: db.prepare("DELETE FROM registry_outbox WHERE notice_id = ?"),
      logInsert: db.prepare("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES (?, ?, ?, ?, ?)"),
      logIndex: db.prepare("INSERT OR IGNORE INTO revocation_log_partition (ca_id, municipality, block_id) VALUES (?, ?, ?)"),
      bumpScope: db.prepare("INSERT INTO crl_scopes (ca_id, scope, revision) VALUES (?, ?, 1) ON CONFLICT (ca_id, scope) DO UPDATE SET revision = revision + 1"),
      registerScope: db.prepare("INSERT OR IGNORE INTO crl_scopes (ca_id, scope) VALUES (?, ?)"),
      scopeRevision: db.prepare("SELECT revision FROM crl_scopes WHERE ca_id = ? AND scope = ?").pluck(),
      scopePublished: db.prepare("SELECT published_number FROM crl_scopes WHERE ca_id = ? AND scope = ?").pluck().safeIntegers(),
      markScopePublished: db.prepare(
        `INSERT INTO crl_scopes (ca_id, scope, revision, published_revision, published_number) VALUES (?, ?, 0, ?, ?)
         ON CONFLICT (ca_id, scope) DO UPDATE SET published_revision = max(published_revision, excluded.published_revision),
           published_number = max(coalesce(published_number, 0), excluded.published_number)`,
      ),
      partitionBlockIds: db.prepare(
        "SELECT DISTINCT block_id FROM revocation_log_partition WHERE ca_id = ? AND municipality IN (SELECT value FROM json_each(?)) ORDER BY block_id",
      ).pluck(),
      blocksById: db.prepare("SELECT id, entries, min_not_after, der, meta FROM revocation_log WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id").raw(),
      scopeStatus: db.prepare(
        `SELECT s.ca_id, s.scope,
           (s.revision > s.published_revision OR EXISTS (SELECT 1 FROM crls r WHERE r.ca_id = s.ca_id AND r.scope = s.scope AND r.state = 'reserved'
              AND r.number > coalesce(s.published_number, 0))) AS dirty,
           c.number, c.this_update, c.next_update, c.entries, c.path, c.sha256, c.state
         FROM (SELECT ca_id, scope, revision, published_revision, published_number FROM crl_scopes
               UNION ALL SELECT id, 'arl', 0, 0, NULL FROM cas WHERE NOT EXISTS (SELECT 1 FROM crl_scopes x WHERE x.ca_id = cas.id AND x.scope = 'arl')) s
         LEFT JOIN crls c ON c.ca_id = s.ca_id AND c.number = s.published_number
         ORDER BY s.ca_id, s.scope`,
      ).safeIntegers(),      // meta (8 bytes per entry) only for blocks holding a certificate expired before the cutoff: the others go
      // out whole, and skipping it spares a 1M-entry CRL 8 MB of reads and copies.
      logBlocks: db.prepare("SELECT id, entries, min_not_after, der, CASE WHEN min_not_after < ? THEN meta END FROM revocation_log WHERE ca_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?").raw(),
      // length() of a BLOB reads the row's header, not its overflow pages: the total costs one pass over the index.
      logTotal: db.prepare("SELECT coalesce(sum(length(der)), 0), coalesce(sum(entries), 0) FROM revocation_log WHERE ca_id = ? AND id > ? AND id <= ? AND min_not_after >= ?").raw(),
      logPartial: db.prepare("SELECT id, entries, min_not_after, der, meta FROM revocation_log WHERE ca_id = ? AND id > ? AND id <= ? AND min_not_after < ? ORDER BY id LIMIT ?").raw(),
      insertCert: db.prepare(
        // The two keys as hex text (rows.ts derIdKey, certifiedKeyOf), stored as the octets unhex() makes of it: '' is the
        // empty blob, NO_CERTIFIED_KEY.
        "INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix, certified_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, unhex(?), unhex(?))",
      ),
      // The certificates of one public key (migration 29), revoked or not, with their revocation reason; the key as
      // hex text (certifiedKeyOf).
      certificatesOfKey: db.prepare(
        "SELECT c.serial, c.resident_code, c.type, c.der, k.reason FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial WHERE c.certified_key = unhex(?) ORDER BY c.serial",
      ).raw(),
      getCert: db.prepare(`${CERT_SELECT} WHERE c.serial = ?`),
      certificateOwner: db.prepare("SELECT ca_id, resident_code, der FROM certificates WHERE serial = ?").raw(),
      getCertByApplication: db.prepare(`${CERT_SELECT} WHERE c.application_id = ?`),
      maxCrl: db.prepare("SELECT max(number) FROM crls WHERE ca_id = ?").pluck().safeIntegers(),
      insertCrl: db.prepare(
        "INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope, delta_mark, base_number) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?)",
      ),
      logMark: db.prepare("SELECT coalesce(max(id), 0) FROM revocation_log WHERE ca_id = ?").pluck(),
      deltaBase: db.prepare("SELECT number, next_update, delta_mark FROM crls WHERE ca_id = ? AND scope = '' AND state = 'published' ORDER BY number DESC LIMIT 1").safeIntegers(),
      deltaMarkOf: db.prepare("SELECT delta_mark FROM crls WHERE ca_id = ? AND number = ? AND scope = ''").pluck().safeIntegers(),
      maxPublishedIn: db.prepare("SELECT max(number) FROM crls WHERE ca_id = ? AND scope = ? AND state = 'published'").pluck().safeIntegers(),
      latestIn: db.prepare(
        `SELECT c.*, c.delta_mark IS NOT NULL AS has_mark FROM crls c
           JOIN (SELECT ca_id, max(number) AS n FROM crls WHERE state = 'published' AND scope = ? GROUP BY ca_id) m ON m.ca_id = c.ca_id AND m.n = c.number`,
      ).safeIntegers(),
      publishCrl: db.prepare("UPDATE crls SET entries = ?, path = ?, sha256 = ?, state = 'published' WHERE ca_id = ? AND number = ?"),
      batchNoticeStatus: db.prepare("SELECT notice_id, status, body, received_at, applied_at FROM notices WHERE notice_id IN (SELECT value FROM json_each(?))").raw(),
      // The applied resident-code changes away from some codes (migration 24's partial index): rare rows.
      batchCodeChanges: db.prepare(
        "SELECT resident_code, body FROM notices WHERE kind = 'resident-code-change' AND status = 'applied' AND resident_code IN (SELECT value FROM json_each(?))",
      ).raw(),
      batchLastSeq: db.prepare("SELECT resident_code, last_sequence FROM resident_sequences WHERE resident_code IN (SELECT value FROM json_each(?))").raw(),
      batchHeld: db.prepare("SELECT * FROM notices WHERE status = 'held' AND resident_code IN (SELECT value FROM json_each(?)) ORDER BY resident_code, sequence"),
      // The four items only where a notice compares them (CertifiedRow): an unrevoked signature certificate's. Left
      // NULL in SQL, the others are never decoded from UTF-8 into strings on the committing thread.
      batchCertified: db.prepare(
        `SELECT serial, ca_id, type, resident_code,
           CASE WHEN revoked_at IS NULL AND type = 'signature' THEN name END, CASE WHEN revoked_at IS NULL AND type = 'signature' THEN address END,
           CASE WHEN revoked_at IS NULL AND type = 'signature' THEN birth_date END, CASE WHEN revoked_at IS NULL AND type = 'signature' THEN gender END,
           revoked_at, municipality_code, not_after, registry_sequence FROM certified WHERE resident_code IN (SELECT value FROM json_each(?))`,
      ).raw(),
      batchResidents: db.prepare("SELECT resident_code, notice_sequence, successor_code FROM residents WHERE resident_code IN (SELECT value FROM json_each(?))").raw(),
      // Read twice per issuance (to sign, then to commit): rows as arrays, not objects keyed by column name.
      residentForIssuance: db.prepare(
        `SELECT r.resident_code, r.municipality_code, r.name, r.address, r.birth_date, r.gender, r.status, r.notice_sequence,
           coalesce(s.last_sequence, 0), r.successor_code FROM residents r LEFT JOIN resident_sequences s ON s.resident_code = r.resident_code WHERE r.resident_code = ?`,
      ).raw(),
      // The commit's re-check of the record a certificate was signed from (commitIssuances): the comparison made
      // in SQL, one small integer back (ISSUANCE_CHECK), not the row. Read as a row it was an array of 10 values built
      // element by element through V8's API and the four items decoded from UTF-8 into strings, only to be compared
      // with strings the record holds (≈ 17 K instructions a certificate on the committing thread, callgrind).
      // Text compares as BINARY (octet for octet), as === does on the strings read from this same table.
      issuanceCheck: db.prepare(
        `SELECT CASE
           WHEN r.status <> 'active' THEN ${ISSUANCE_CHECK.gone}
           WHEN coalesce(s.last_sequence, 0) > r.notice_sequence THEN ${ISSUANCE_CHECK.behind}
           WHEN (? IS NOT NULL AND r.notice_sequence IS NOT ?) OR r.municipality_code IS NOT ? OR r.name IS NOT ? OR r.address IS NOT ?
             OR r.birth_date IS NOT ? OR r.gender IS NOT ? THEN ${ISSUANCE_CHECK.changed}
           ELSE ${ISSUANCE_CHECK.current} END
         FROM residents r LEFT JOIN resident_sequences s ON s.resident_code = r.resident_code WHERE r.resident_code = ?`,
      ).pluck(),
      // Positional parameters: binding by name cost an object per notice and a lookup per parameter.
      // The body comes as text or as its UTF-8 bytes (NoticeBody): bytes bind as a blob, which the CAST stores as
      // text, byte for byte (the database's encoding is UTF-8). A blob in a TEXT column would stay a blob.
      insertNotice: db.prepare(
        `INSERT INTO notices (notice_id, resident_code, sequence, kind, status, body, received_at, applied_at, revocations)
         VALUES (?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?, ?)
         ON CONFLICT (notice_id) DO UPDATE SET status = excluded.status, applied_at = excluded.applied_at, revocations = excluded.revocations
         WHERE notices.status = 'held'`,
      ),
      setSeq: db.prepare(
        "INSERT INTO resident_sequences (resident_code, last_sequence) VALUES (?, ?) ON CONFLICT (resident_code) DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)",
      ),
      // Run before relinkCertified: certified still knows the old code's serials.
      relinkCerts: db.prepare("UPDATE certificates SET resident_code = ? WHERE serial IN (SELECT serial FROM certified WHERE resident_code = ?)"),
      relinkCertified: db.prepare("UPDATE certified SET resident_code = ? WHERE resident_code = ?"),
      relinkHeld: db.prepare("UPDATE notices SET resident_code = ? WHERE resident_code = ? AND status = 'held'"),
      relinkSeq: db.prepare("UPDATE OR REPLACE resident_sequences SET resident_code = ? WHERE resident_code = ?"),
      // The disclosure log follows the certificates it names: the resident asks under the code held now.
      // By the per-resident index and the tail it does not cover yet (migration 22), then the index itself.
      relinkDisclosuresIndexed: db.prepare("UPDATE disclosures SET resident_code = @to WHERE id IN (SELECT id FROM disclosures_by_resident WHERE resident_code = @from)"),
      relinkDisclosuresTail: db.prepare(`UPDATE disclosures SET resident_code = @to WHERE id > (${DISCLOSURES_INDEXED_THROUGH}) AND resident_code = @from`),
      relinkDisclosureIndex: db.prepare("UPDATE disclosures_by_resident SET resident_code = @to WHERE resident_code = @from"),
      bumpRevision: db.prepare(
        "INSERT INTO crl_state (ca_id, revision, published_revision) VALUES (?, 1, 0) ON CONFLICT (ca_id) DO UPDATE SET revision = revision + 1",
      ),
      revisionOf: db.prepare("SELECT revision FROM crl_state WHERE ca_id = ?").pluck(),
      revisions: db.prepare("SELECT ca_id, revision FROM crl_state").raw(),
      ping: db.prepare("SELECT 1"),
      carriedStatus: db.prepare("SELECT ca_id, revoked_at, reason FROM carried_revocations WHERE serial = ?").raw(),
      certStatus: db.prepare(
        "SELECT k.ca_id, k.revoked_at, k.reason FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial WHERE c.serial = ?",
      ).raw(),
      putOcspResponder: db.prepare(
        `INSERT INTO ocsp_responders (ca_id, serial, cert_der, key_pem, not_before, not_after) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (ca_id) DO UPDATE SET serial = excluded.serial, cert_der = excluded.cert_der, key_pem = excluded.key_pem,
           not_before = excluded.not_before, not_after = excluded.not_after`,
      ),
      ocspResponders: db.prepare("SELECT * FROM ocsp_responders ORDER BY ca_id"),
      // Dirty: revisions no CRL covers yet, or a reservation above the latest published number that never
      // finished (a run killed while installing its files leaves the DER and PEM to be replaced).
      dirty: db.prepare(
        `SELECT ca_id FROM crl_state WHERE revision > published_revision
         UNION
         SELECT c.ca_id FROM crls c WHERE c.state = 'reserved' AND c.scope = ''
           AND c.number > coalesce((SELECT max(p.number) FROM crls p WHERE p.ca_id = c.ca_id AND p.scope = '' AND p.state = 'published'), 0)
         ORDER BY 1`,
      ).pluck(),
      markPublished: db.prepare(
        "INSERT INTO crl_state (ca_id, revision, published_revision) VALUES (?, 0, ?) ON CONFLICT (ca_id) DO UPDATE SET published_revision = max(published_revision, excluded.published_revision)",
      ),
      maxPublished: db.prepare("SELECT max(number) FROM crls WHERE ca_id = ? AND scope = '' AND state = 'published'").pluck().safeIntegers(),
      crlRow: db.prepare("SELECT revision, state, scope FROM crls WHERE ca_id = ? AND number = ?").safeIntegers(),
      supersedeCrl: db.prepare("UPDATE crls SET state = 'superseded' WHERE ca_id = ? AND number = ?"),
      burnCrl: db.prepare("INSERT INTO crls (ca_id, number, this_update, next_update, revision, state, scope) VALUES (?, ?, ?, ?, 0, 'superseded', '')"),
      getNotice: db.prepare("SELECT * FROM notices WHERE notice_id = ?"),
      listHeld: db.prepare("SELECT * FROM notices WHERE status = 'held' ORDER BY resident_code, sequence LIMIT ?"),
      listHeldAfter: db.prepare("SELECT * FROM notices WHERE status = 'held' AND (resident_code, sequence) > (?, ?) ORDER BY resident_code, sequence LIMIT ?"),
      revocationSummary: db.prepare("SELECT serial, ca_id, reason, source FROM certified WHERE revoked_at IS NOT NULL ORDER BY serial").raw(),
      latestCrl: db.prepare(
        "SELECT * FROM crls WHERE ca_id = ? AND scope = ? AND state = 'published' ORDER BY number DESC LIMIT 1",
      ).safeIntegers(),
      latestCrls: db.prepare(
        `SELECT c.* FROM crls c JOIN (SELECT ca_id, max(number) AS n FROM crls WHERE state = 'published' AND scope = '' GROUP BY ca_id) m
           ON m.ca_id = c.ca_id AND m.n = c.number`,
      ).safeIntegers(),
    };
  }

  #run<T>(what: string, f: () => T): Promise<T> {
    try {
      this.#sizeCache();
      return Promise.resolve(f());
    } catch (e) {
      return Promise.reject(storeError(e, what));
    }
  }

  // ---- The audit log (store/audit-log.ts) ----

  #audit: AuditContext = { actor: undefined, now: () => new Date() };

  setAuditContext(ctx: { readonly actor?: string; readonly now?: () => Date }): void {
    this.#audit = { actor: ctx.actor ?? this.#audit.actor, now: ctx.now ?? this.#audit.now };
  }

  /**
   * Appends a record inside the caller's write transaction (run it after the operation's first write, so a
   * deferred transaction already holds the write lock and the head it reads is the latest). The head is the
   * last row of the primary key: one B-tree descent, whatever the log's size.
   */
  #appendAudit(e: AuditEntry): AuditRecord {
    const h = this.#stmts.auditHead.get() as [number, string] | undefined;
    const r = sealAudit(e, h && { seq: h[0], hash: h[1] }, this.#audit.now(), (this.#audit.actor ??= osActor()));
    this.#stmts.auditInsert.run(r.seq, r.at.getTime(), r.actor, r.action, r.subject, r.detail, r.prevHash, r.hash);
    return r;
  }

  appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    return this.#run("appending to the audit log", () => this.#db.transaction(() => this.#appendAudit(entry)).immediate());
  }

  auditHead(): Promise<AuditRecord | undefined> {
    return this.#run("reading the audit log", () => {
      const r = this.#db.prepare("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1").get() as AuditRowDb | undefined;
      return r && toAudit(r);
    });
  }

  async *auditRecords(q: AuditQuery = {}): AsyncIterable<AuditRecord> {
    // Keyset pages, as #logEntries: no statement stays open while the consumer awaits.
    const where = ["seq > ?"];
    const args: unknown[] = [];
    if (q.since) (where.push("at >= ?"), args.push(q.since.getTime()));
    if (q.action !== undefined) (where.push("action = ?"), args.push(q.action));
    if (q.actor !== undefined) (where.push("actor = ?"), args.push(q.actor));
    if (q.subject !== undefined) (where.push("subject = ?"), args.push(q.subject));
    let stmt: Database.Statement;
    try {
      stmt = this.#db.prepare(`SELECT * FROM audit_log WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`);
    } catch (e) {
      throw storeError(e, "reading the audit log");
    }
    let left = q.limit ?? Infinity;
    for (let after = q.afterSeq ?? 0; left > 0; ) {
      let rows: AuditRowDb[];
      try {
        rows = stmt.all(after, ...args, Math.min(AUDIT_PAGE, left)) as AuditRowDb[];
      } catch (e) {
        throw storeError(e, "reading the audit log");
      }
      for (const r of rows) yield toAudit(r);
      if (rows.length < AUDIT_PAGE) return;
      left -= rows.length;
      after = Number(rows[rows.length - 1]!.seq);
    }
  }

  putAuditCheckpoint(cp: AuditCheckpoint): Promise<void> {
    return this.#run("recording an audit checkpoint", () =>
      this.#db.transaction(() => {
        // Another process (two `crl generate` at once) may have checkpointed this very head first: the head is
        // checkpointed, and a second record would only say so twice.
        const put = this.#db
          .prepare("INSERT INTO audit_checkpoints (seq, hash, at, ca_id, cert_der, signature) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING")
          .run(cp.seq, cp.hash, cp.at.getTime(), cp.caId, cp.certificateDer, cp.signature);
        if (put.changes) this.#appendAudit(checkpointAudit(cp));
      }).immediate(),
    );
  }

  auditCheckpoints(): Promise<AuditCheckpoint[]> {
    return this.#run("reading audit checkpoints", () =>
      (this.#db.prepare("SELECT * FROM audit_checkpoints ORDER BY seq").all() as AuditCheckpointRowDb[]).map(toAuditCheckpoint),
    );
  }

  async close(): Promise<void> {
    if (this.#appendedDisclosures && this.#db.open) {
      // What this connection appended goes under the per-resident index before it closes. Should that fail (another
      // writer holds the lock), nothing is lost: readers scan what the index does not cover, and the next append
      // batch indexes it.
      try {
        this.#db.transaction(() => this.#indexDisclosures()).immediate();
        this.#appendedDisclosures = false;
      } catch {
        /* the records stay readable through the unindexed tail */
      }
    }
    const cp = this.#checkpointer;
    this.#checkpointer = undefined;
    await cp?.close();
    return this.#run("closing", () => {
      if (this.#db.open) this.#db.close();
    });
  }

  /**
   * Before a bulk write transaction: once the WAL has grown past #settleFrames, wait for the checkpointer thread to
   * have copied what is committed, so this transaction starts the WAL over (store/checkpointer.ts).
   */
  async #beforeBulk(): Promise<void> {
    if (this.#checkpointer && this.#checkpointer.walFrames > this.#settleFrames) {
      // The wait is for a checkpoint of everything committed, or the WAL cannot start over: commits made since the
      // last kick (bulk writes are copied back every so many, not each) are asked for first.
      if (this.#noticesSinceKick > 0 || this.#issuedSinceKick > 0) {
        this.#noticesSinceKick = 0;
        this.#issuedSinceKick = 0;
        this.#checkpointer.kick();
      }
      await this.#checkpointer.settled();
    }
  }

  /**
   * After a commit of the serving path (disclosure records, liveness checks: `jpki serve` commits one per group of
   * answers, hundreds a second): every APPENDS_PER_CHECKPOINT of them the checkpointer thread copies the WAL back,
   * not this thread. Left to SQLite's automatic checkpoint, the serving thread copied every 16384 frames and
   * waited on two fsyncs inside a commit — tens of milliseconds in which no answer went out and the engine's
   * thread ran dry (bench api: ≈ 8 % more answers a second without it). No wait for the copy here, unlike the
   * bulk writers: each append is small, and the connection's own automatic checkpoint (raised to
   * BULK_AUTOCHECKPOINT) still bounds the WAL should the thread fall behind.
   */
  #afterAppend(): void {
    if (++this.#appendCommits % APPENDS_PER_CHECKPOINT === 0) this.#afterBulk();
  }

  /**
   * Resolves once the checkpointer's thread has copied back everything committed so far, asking for it first when
   * bulk commits are waiting for their turn (ISSUANCES_PER_CHECKPOINT, NOTICES_PER_CHECKPOINT); at once when no
   * thread runs. For a measurement that must not carry one section's copy-back into the next (bench/issue.ts settles
   * between its rounds with it); a writer never needs it, the WAL is bounded without (#beforeBulk).
   */
  async checkpointed(): Promise<void> {
    const cp = this.#checkpointer;
    if (!cp) return;
    if (this.#noticesSinceKick > 0 || this.#issuedSinceKick > 0) {
      this.#noticesSinceKick = 0;
      this.#issuedSinceKick = 0;
      cp.kick();
    }
    await cp.settled();
  }

  /** After a bulk commit: the checkpointer thread copies it back, not this thread (started on first use). */
  #afterBulk(): void {
    this.#startCheckpointer()?.kick();
  }

  /** The checkpointer's thread, started if need be; undefined in memory or when no thread can be made. */
  #startCheckpointer(): WalCheckpointer | undefined {
    if (!this.#checkpointer) {
      if (this.#path === "" || this.#path === ":memory:") return undefined;
      try {
        this.#checkpointer = new WalCheckpointer(this.#path);
        // This connection's own checkpoints only bound the WAL now, should the thread lag or fail.
        this.#db.pragma(`wal_autocheckpoint = ${BULK_AUTOCHECKPOINT}`);
      } catch {
        this.#path = ""; // no thread: this connection checkpoints as before
        return undefined;
      }
    }
    return this.#checkpointer;
  }

  putCa(ca: CaRecord): Promise<void> {
    return this.#run("saving a CA", () => {
      try {
        this.#db.transaction(() => {
          this.#assertNotRetired(ca.id);
          this.#stmts.putCa.run(ca.id, ca.prefectureCode, ca.purpose, ca.certificateDer, ca.encryptedKeyPem, ca.keyId, ca.createdAt.getTime(), ca.keyRef ?? null);
          this.#appendAudit(caCreatedAudit(ca));
        }).immediate();
      } catch (e) {
        if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
          throw new JpkiError("ERR_CA_EXISTS", `CA ${ca.id} already exists in this workspace`, { cause: e });
        }
        throw e;
      }
    });
  }

  getCa(id: string): Promise<CaRecord | undefined> {
    return this.#run("reading a CA", () => ((r) => (r ? toCa(r) : undefined))(this.#stmts.getCa.get(id) as Record<string, unknown> | undefined));
  }

  listCas(): Promise<CaRecord[]> {
    return this.#run("listing CAs", () =>
      (this.#stmts.listCas.all() as Record<string, unknown>[]).map(toCa),
    );
  }

  /**
   * The key references (RFC 7512 URIs) of the CAs whose keys are in a PKCS#11 token, read synchronously: a workspace
   * made before config.json listed its PKCS#11 modules adopts the ones its own SQLite file names, once, when it is
   * opened (workspace/workspace.ts). A SQLite-only question: a PostgreSQL store is shared, never adopted from.
   */
  caKeyRefsSync(): string[] {
    try {
      return (this.#stmts.listCas.all() as Record<string, unknown>[]).flatMap((r) => (typeof r.key_ref === "string" && r.key_ref ? [r.key_ref] : []));
    } catch (e) {
      throw storeError(e, "listing CAs");
    }
  }

  putCaRollover(ca: CaRecord, link: CaLinkRecord): Promise<void> {
    return this.putCaRollovers([{ ca, link }]);
  }

  putCaRollovers(rollovers: ReadonlyArray<{ readonly ca: CaRecord; readonly link: CaLinkRecord }>): Promise<void> {
    return this.#run("saving a CA key rollover", () => {
      const db = this.#db;
      db.transaction(() => {
        for (const { ca, link } of rollovers) {
          if (!db.prepare("SELECT 1 FROM cas WHERE id = ?").get(link.oldCaId)) {
            throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${link.oldCaId} in this workspace: nothing to roll over`);
          }
          const taken = db.prepare("SELECT new_ca_id FROM ca_links WHERE old_ca_id = ?").pluck().get(link.oldCaId) as string | undefined;
          if (taken !== undefined || db.prepare("SELECT 1 FROM cas WHERE id = ?").get(ca.id)) {
            throw new JpkiError("ERR_ROLLOVER_CONFLICT", `CA ${link.oldCaId} was rolled over to ${taken ?? ca.id} by another run: nothing was saved; 'jpki ca list' shows the generations`);
          }
          this.#assertNotRetired(ca.id);
          this.#stmts.putCa.run(ca.id, ca.prefectureCode, ca.purpose, ca.certificateDer, ca.encryptedKeyPem, ca.keyId, ca.createdAt.getTime(), ca.keyRef ?? null);
          db.prepare("INSERT INTO ca_links (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at) VALUES (?, ?, ?, ?, ?)").run(
            link.newCaId,
            link.oldCaId,
            link.oldWithNew ?? null,
            link.newWithOld ?? null,
            link.createdAt.getTime(),
          );
          // Rolled over for a compromised key: the predecessor's OldWithNew, which certifies that key, goes on the
          // predecessor's ARL and full CRL (crl/arl.ts), due from now.
          const pred = link.oldWithNew ? undefined : (db.prepare("SELECT old_ca_id FROM ca_links WHERE new_ca_id = ? AND old_with_new IS NOT NULL").pluck().get(link.oldCaId) as string | undefined);
          if (pred) this.#stmts.bumpRevision.run(pred), this.#stmts.bumpScope.run(pred, ARL_SCOPE);
          // And the old generation's own revision: the OCSP responder polls the revisions, and re-reads which CAs
          // are compromised when one moves (ocsp/responder.ts). Without it a running serve answered the stolen
          // key's serials "good" until its next reload, up to a minute; `ca compromised` bumps it too.
          // Its ARL too: it lists the generation's own certificate from now on (crl/arl.ts arlEntries).
          if (!link.oldWithNew) this.#stmts.bumpRevision.run(link.oldCaId), this.#stmts.bumpScope.run(link.oldCaId, ARL_SCOPE);
          this.#appendAudit(caRolloverAudit(ca, link));
        }
      }).immediate();
    });
  }

  #assertNotRetired(id: string): void {
    const reason = this.#db.prepare("SELECT reason FROM retired_ca_ids WHERE id = ?").pluck().get(id) as string | undefined;
    if (reason !== undefined) throw new JpkiError("ERR_CA_RETIRED", retiredMessage(id, reason), { details: { caId: id } });
  }

  retireCaIds(records: readonly RetiredCaIdRecord[]): Promise<void> {
    return this.#run("retiring CA ids", () => {
      const db = this.#db;
      db.transaction(() => {
        for (const r of records) {
          if (db.prepare("SELECT 1 FROM cas WHERE id = ?").get(r.id)) throw new JpkiError("ERR_CA_EXISTS", `CA ${r.id} is in this store: its id cannot be retired`, { details: { caId: r.id } });
          const put = db.prepare("INSERT INTO retired_ca_ids (id, retired_at, reason) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING").run(r.id, r.retiredAt.getTime(), r.reason);
          if (put.changes) this.#appendAudit(caIdRetiredAudit(r));
        }
      }).immediate();
    });
  }

  listRetiredCaIds(): Promise<RetiredCaIdRecord[]> {
    return this.#run("listing retired CA ids", () =>
      (this.#db.prepare("SELECT id, retired_at, reason FROM retired_ca_ids ORDER BY id").all() as Array<{ id: string; retired_at: Int; reason: string }>).map(toRetiredCaId),
    );
  }

  listCaLinks(): Promise<CaLinkRecord[]> {
    return this.#run("listing CA key rollovers", () => (this.#db.prepare("SELECT * FROM ca_links ORDER BY new_ca_id").all() as Record<string, unknown>[]).map(toCaLink));
  }

  declareCaCompromised(caId: string, at: Date): Promise<CaCompromiseRecord> {
    return this.#run("recording a CA key compromise", () => {
      const db = this.#db;
      return db.transaction((): CaCompromiseRecord => {
        if (!db.prepare("SELECT 1 FROM cas WHERE id = ?").get(caId)) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this workspace`, { details: { caId } });
        const row = db.prepare("SELECT * FROM ca_links WHERE old_ca_id = ?").get(caId) as Record<string, unknown> | undefined;
        if (!row) throw new JpkiError("ERR_CA_ACTIVE", activeCompromiseMessage(caId), { details: { caId } });
        const link = toCaLink(row);
        if (!link.oldWithNew || link.compromisedAt) return { caId, successorCaId: link.newCaId, at: link.compromisedAt ?? link.createdAt, already: true };
        db.prepare("UPDATE ca_links SET compromised_at = ? WHERE old_ca_id = ?").run(at.getTime(), caId);
        // Both ARLs due: the successor's lists NewWithOld (the link that matters), the old one's OldWithNew. Their
        // full CRLs too: without an issuingDistributionPoint they are complete for CA certificates as well, and
        // list the links from now on (crl/arl.ts withLinkEntries).
        // And the predecessor's, if an ordinary rollover made this generation: its OldWithNew certifies the stolen key.
        const pred = db.prepare("SELECT old_ca_id FROM ca_links WHERE new_ca_id = ? AND old_with_new IS NOT NULL").pluck().get(caId) as string | undefined;
        const due = [link.newCaId, caId, ...(pred ? [pred] : [])];
        for (const id of due) this.#stmts.bumpRevision.run(id);
        for (const id of due) this.#stmts.bumpScope.run(id, ARL_SCOPE);
        this.#appendAudit(caCompromisedAudit(link));
        return { caId, successorCaId: link.newCaId, at, already: false };
      }).immediate();
    });
  }

  sharedCertifiedKeys(o: { readonly now: Date }): Promise<SharedCertifiedKey[]> {
    return this.#run("checking for keys certified to more than one resident", () => {
      // The keys held by more than one certificate, a page at a time, from the index alone (a covering scan in key
      // order: no table row read); then those keys' live certificates. Above the empty marker: NULL (none left past
      // version 32) and NO_CERTIFIED_KEY are no key. INDEXED BY: statistics taken while the column was empty
      // would make a scan of the table look cheaper (migration32).
      const keys = this.#db
        .prepare("SELECT certified_key FROM certificates INDEXED BY certificates_certified_key WHERE certified_key > ? GROUP BY certified_key HAVING count(*) > 1 ORDER BY certified_key LIMIT ?")
        .pluck();
      const holders = this.#db
        .prepare(
          `SELECT c.serial, c.ca_id, c.type, c.resident_code, c.not_after, c.der FROM certificates c INDEXED BY certificates_certified_key
           JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial
           WHERE c.certified_key = ? AND k.revoked_at IS NULL AND c.not_after > ? ORDER BY c.serial`,
        )
        .raw();
      const found: SharedCertifiedKey[] = [];
      for (let after: Buffer = NO_CERTIFIED_KEY; ; ) {
        const page = keys.all(after, SHARED_KEYS_PAGE) as Buffer[];
        const rows: KeyHolderRow[] = [];
        for (const key of page) {
          for (const [serial, caId, type, residentCode, notAfter, der] of holders.all(key, o.now.getTime()) as Array<[string, string, CertificateType, string, number, Buffer]>) {
            rows.push({ certifiedKey: key, serial, caId, type, residentCode, notAfter: new Date(Number(notAfter)), der });
          }
        }
        found.push(...sharedKeysAmong(rows));
        if (page.length < SHARED_KEYS_PAGE) return found;
        after = page[page.length - 1]!;
      }
    }).then(async (found) => {
      if (!found.length) return found;
      // one person under codes the registry joined by a resident-code change is no finding (rows.ts peopleApart)
      const successor = this.#db.prepare("SELECT resident_code, successor_code FROM residents WHERE resident_code IN (SELECT value FROM json_each(?)) AND successor_code IS NOT NULL").raw();
      const read = (codes: string[]) => this.#run("reading resident-code changes", () => new Map(successor.all(JSON.stringify(codes)) as Array<[string, string]>));
      return peopleApart(found, await successorsOf(found.flatMap((k) => k.certificates.map((c) => c.residentCode)), read));
    });
  }

  lastCertificateExpiry(caId: string): Promise<Date | undefined> {
    // No index by (ca_id, not_after): it would cost every issuance, while this runs once per CRL run and only
    // for retired generations.
    return this.#run("reading a CA's last certificate expiry", () => {
      const v = this.#db.prepare("SELECT max(not_after) FROM certificates WHERE ca_id = ?").pluck().get(caId) as number | null;
      return v === null ? undefined : new Date(Number(v));
    });
  }

  /** See Store.holdPresence: the file this store holds open is what restore sees (SqliteStore.openElsewhere). */
  async holdPresence(_what: string): Promise<void> {}

  /** See Store.withCaKeysLock: this file lies in one workspace directory, whose lock file keeps its users apart. */
  withCaKeysLock<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  replaceCaKeys(keys: ReadonlyArray<{ id: string; encryptedKeyPem: string }>, o: { readonly ocspSigners?: readonly OcspSignerKey[]; readonly verifierCa?: VerifierCaKey } = {}): Promise<void> {
    const ocspSigners = o.ocspSigners ?? [];
    const verifierCa = o.verifierCa?.encryptedKeyPem !== undefined;
    return this.#run("re-encrypting CA keys", () => {
      const update = this.#db.prepare("UPDATE cas SET key_pem = ? WHERE id = ?");
      const updateOcsp = this.#db.prepare("UPDATE ocsp_responders SET key_pem = ? WHERE ca_id = ? AND serial = ?");
      this.#db.transaction(() => {
        for (const k of keys) {
          if (update.run(k.encryptedKeyPem, k.id).changes !== 1) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${k.id} in this workspace: no key was replaced`);
        }
        for (const k of ocspSigners) {
          if (updateOcsp.run(k.encryptedKeyPem, k.caId, k.serial).changes !== 1) throw ocspSignerRenewed(k.caId);
        }
        if (o.ocspSigners) {
          const listed = new Set(ocspSigners.map((k) => k.caId));
          const added = (this.#stmts.ocspResponders.all() as Array<{ ca_id: string }>).find((r) => !listed.has(r.ca_id));
          if (added) throw ocspSignerAdded(added.ca_id);
        }
        if (o.verifierCa) {
          const now = this.#db.prepare("SELECT key_pem FROM verifier_ca WHERE id = 1").pluck().get() as string | undefined;
          if (now !== o.verifierCa.before) throw verifierCaChanged();
          if (o.verifierCa.encryptedKeyPem !== undefined) this.#db.prepare("UPDATE verifier_ca SET key_pem = ? WHERE id = 1").run(o.verifierCa.encryptedKeyPem);
        }
        if (keys.length || ocspSigners.length || verifierCa) this.#appendAudit(rewrapAudit(keys, ocspSigners, verifierCa));
      })();
    });
  }

  upsertResidents(residents: readonly ResidentRecord[]): Promise<{ inserted: number; updated: number }> {
    return this.#run("saving residents", () =>
      this.#db.transaction(() => {
        let inserted = 0;
        let updated = 0;
        for (const r of residents) {
          if (this.#stmts.residentExists.get(r.residentCode)) updated++;
          else inserted++;
          this.#stmts.upsertResident.run({ residentCode: r.residentCode, municipalityCode: r.municipalityCode, status: r.status, successorCode: r.successorCode ?? null, ...r.fourItems });
        }
        if (residents.length) this.#appendAudit(registryLoadAudit(inserted, updated));
        return { inserted, updated };
      }).immediate(),
    );
  }

  applyToRegistry<T>(decide: RegistryDecide<T>): Promise<T> {
    return this.#run("updating residents", () =>
      this.#db.transaction(() => {
        const read = (code: string) => {
          const r = this.#stmts.getResident.get(code) as (ResidentRow & { notice_sequence: number }) | undefined;
          return r ? { ...toResident(r), noticeSequence: r.notice_sequence } : undefined;
        };
        const registered = (code: string) => (this.#stmts.registeredOf.all(code) as RegisteredRowDb[]).map(toRegistered);
        const d = decide(read, registered);
        for (const code of d.remove) this.#stmts.deleteResident.run(code);
        for (const r of d.put) {
          this.#stmts.upsertResident.run({ residentCode: r.residentCode, municipalityCode: r.municipalityCode, status: r.status, successorCode: r.successorCode ?? null, ...r.fourItems });
          this.#stmts.setResidentSequence.run(r.noticeSequence, r.residentCode);
        }
        // The new code is one nobody held (the registry refuses a change to a code in use): no consent is under it.
        for (const l of d.relink ?? []) {
          this.#db.prepare("UPDATE consents SET resident_code = ? WHERE resident_code = ?").run(l.to, l.from);
          // 住民票コード変更: the certificates are kept, their registered issuance information re-linked.
          this.#stmts.relinkRegistered.run(l.to, l.from);
        }
        // The notices go into the outbox in this transaction: a crash after COMMIT leaves them to deliver.
        for (const n of d.enqueue ?? []) this.#stmts.enqueueOutbox.run(n.noticeId, n.residentCode, n.sequence, n.body, n.createdAt.getTime());
        if (d.put.length || d.remove.length || d.enqueue?.length) this.#appendAudit(d.audit ?? registryAudit(d));
        return d.result;
      }).immediate(),
    );
  }

  pendingOutbox(limit: number): Promise<OutboxNotice[]> {
    return this.#run("reading the registry's outbox", () =>
      (this.#stmts.pendingOutbox.all(limit) as Array<{ notice_id: string; resident_code: string; sequence: number; body: string; created_at: number }>).map((r) => ({
        noticeId: r.notice_id,
        residentCode: r.resident_code,
        sequence: r.sequence,
        body: r.body,
        createdAt: new Date(r.created_at),
      })),
    );
  }

  ackOutbox(noticeIds: readonly string[]): Promise<number> {
    return this.#run("acknowledging delivered notices", () =>
      this.#db.transaction(() => noticeIds.reduce((n, id) => n + this.#stmts.ackOutbox.run(id).changes, 0)).immediate(),
    );
  }

  registeredIssuances(residentCode: string): Promise<RegisteredIssuance[]> {
    return this.#run("reading registered issuance information", () => (this.#stmts.registeredOf.all(residentCode) as RegisteredRowDb[]).map(toRegistered));
  }

  async sweepRegisteredIssuances(expiredBefore: Date, opts?: SweepOptions): Promise<number> {
    const batch = sweepBatchSize(opts);
    const cutoff = expiredBefore.getTime();
    const st = this.#stmts;
    let removed = 0;
    // In key order, a batch per IMMEDIATE transaction: one statement over the whole table held the one write
    // lock for as long as the table takes to scan — every notice batch and CRL publication of every process
    // waited, and past the busy timeout failed. Between batches the event loop gets a turn, so the schedule
    // sharing this thread publishes meanwhile.
    for (let after = ""; ; ) {
      const step = await this.#run("sweeping expired issuance information", () =>
        this.#db.transaction(() => {
          const end = st.sweepBatchEnd.get(after, batch - 1) as string | undefined;
          // Rows of revoked certificates left by notice batches go first, uncounted: registeredIssuances no
          // longer returned them (and PostgreSQL, which deletes them when it revokes, would not count them).
          let n: number;
          if (end === undefined) {
            st.sweepRevokedRegisteredTail.run(after);
            n = st.sweepRegisteredTail.run(after, cutoff).changes;
          } else {
            st.sweepRevokedRegistered.run(after, end);
            n = st.sweepRegistered.run(after, end, cutoff).changes;
          }
          // In the audit log with the rows it deleted, in their transaction (a batch that found none: nothing).
          if (n) this.#appendAudit(registrySweepAudit(expiredBefore, n));
          return { n, end };
        }).immediate(),
      );
      removed += step.n;
      if (step.end === undefined || opts?.signal?.aborted) return removed;
      after = step.end;
      await yieldTurn();
    }
  }

  residentNoticeSequence(residentCode: string): Promise<number> {
    return this.#run("reading a resident's notice sequence", () => (this.#stmts.residentSequence.get(residentCode) as number | undefined) ?? 0);
  }

  getResident(residentCode: string): Promise<ResidentRecord | undefined> {
    return this.#run("reading a resident", () => {
      const r = this.#stmts.getResident.get(residentCode) as ResidentRow | undefined;
      return r ? toResident(r) : undefined;
    });
  }

  getResidentForIssuance(residentCode: string): Promise<ResidentForIssuance | undefined> {
    return this.#residentLookups.get(residentCode);
  }

  /**
   * Issuance reads a resident before signing, outside any transaction (the commit reads it again under its
   * lock). Alone, each read is its own implicit read transaction — WAL read lock, shared-memory header check,
   * unlock — which cost more than the lookup (measured ~7 of ~10 µs); the reads made in one turn of the event
   * loop (an issuance batch's window refill) share one read transaction instead.
   */
  readonly #residentLookups = new Coalescer<ResidentForIssuance>((codes) =>
    this.#run("reading a resident", () =>
      this.#db.transaction(() => {
        const found = new Map<string, ResidentForIssuance>();
        for (const code of codes) {
          const r = this.#stmts.residentForIssuance.get(code) as ResidentForIssuanceRow | undefined;
          if (r) found.set(code, { record: residentOfIssuanceRow(r), registrySequence: r[7], caSequence: r[8] });
        }
        return found;
      }).deferred(),
    ),
  );

  countResidents(): Promise<number> {
    return this.#run("counting residents", () => this.#stmts.countResidents.get() as number);
  }

  async commitIssuances(records: readonly IssuanceRecord[]): Promise<IssuanceCommitResult[]> {
    // A batch's group commit is a bulk write: the checkpointer thread copies it back into the database file
    // (store/checkpointer.ts). Measured (issue bench): an automatic checkpoint at the end of a group kept the
    // main thread blocked in fsync for ~0.2 s, long enough for the signing threads to run out of work.
    const bulk = records.length >= BULK_ISSUANCE_GROUP;
    if (bulk) await this.#beforeBulk();
    const done = await this.#commitIssuances(records);
    // Copied back every ISSUANCES_PER_CHECKPOINT certificates, not after each group: see there why.
    if (bulk && (this.#issuedSinceKick += records.length) >= ISSUANCES_PER_CHECKPOINT) {
      this.#issuedSinceKick = 0;
      this.#afterBulk();
    }
    return done;
  }

  #commitIssuances(records: readonly IssuanceRecord[]): Promise<IssuanceCommitResult[]> {
    return this.#run("committing issued certificates", () =>
      this.#db.transaction(() => {
        const log = this.#revocationLog();
        // a group of certificates mostly names a few partitions again and again: each registered once
        const scopes = new Set<string>();
        const results = records.map((rec): IssuanceCommitResult => {
          const st = this.#stmts;
          if (rec.applicationId) {
            const existing = st.getCertByApplication.get(rec.applicationId) as CertRowDb | undefined;
            if (existing) return { status: "duplicate-application", existing: toCertRow(existing) };
          }
          // What the certificate certifies was read before signing; re-read it here, in the transaction
          // that commits, so a notice or a registry change in between can never leave a stale certificate.
          const items = rec.fourItems;
          const sequence = rec.registrySequence ?? null;
          const check = st.issuanceCheck.get(sequence, sequence, rec.municipalityCode, items.name, items.address, items.birthDate, items.gender, rec.residentCode) as number | undefined;
          if (check === undefined || check === ISSUANCE_CHECK.gone) return { status: "stale", why: "resident-gone" };
          if (check === ISSUANCE_CHECK.behind) return { status: "stale", why: "registry-behind" };
          if (check !== ISSUANCE_CHECK.current) return { status: "stale", why: "registry-changed" };
          // One key, one resident and type: inside the transaction that commits, so two processes (or two records
          // of this group, the first already inserted) certifying one key cannot both succeed.
          const certifiedKey = certifiedKeyOf(rec.der, "hex");
          if (certifiedKey) {
            for (const [serial, residentCode, type, der, reason] of st.certificatesOfKey.all(certifiedKey) as Array<[string, string, CertificateType, Buffer, number | null]>) {
              const why = sameCertifiedKey(der, rec.der) ? keyInUse(rec, { residentCode, type, reason }, (code) => (st.successorOf.get(code) as string | null | undefined) ?? undefined) : undefined;
              if (why) return { status: "key-in-use", serial, why };
            }
          }
          const superseded = st.activeSameType.all(rec.residentCode, rec.type) as string[];
          if (superseded.length) {
            const cas = new Set<string>();
            for (const serial of superseded) {
              const ca = this.#revokeOne(log, serial, rec.residentCode, rec.issuedAt.getTime(), 4, `superseded:${rec.serial}`);
              if (ca) cas.add(ca);
            }
            for (const ca of cas) st.bumpRevision.run(ca);
          }
          const notAfter = rec.notAfter.getTime();
          st.insertCert.run(rec.serial, rec.caId, rec.type, rec.residentCode, rec.municipalityCode, rec.notBefore.getTime(), notAfter, rec.issuedAt.getTime(), rec.der, rec.applicationId ?? null, derIdKey(rec.der, "hex"), certifiedKey ?? "");
          st.insertCertified.run(rec.residentCode, rec.serial, rec.caId, rec.type, rec.municipalityCode, items.name, items.address, items.birthDate, items.gender, notAfter, rec.registrySequence ?? null);
          // 発行情報 registered with the registry side in this same transaction: nothing is issued without it.
          if (st.registerCertified.run(rec.notBefore.getTime(), rec.residentCode, rec.serial).changes !== 1) {
            throw new JpkiError("ERR_INTERNAL", `certificate ${rec.serial}: its issuance information was not registered with the registry side (no certified row to copy it from): nothing of the group was committed`);
          }
          const scope = `${rec.caId}/${rec.municipalityCode}`;
          if (!scopes.has(scope)) {
            scopes.add(scope);
            st.registerScope.run(rec.caId, rec.municipalityCode); // the partition this certificate's distribution point names
          }
          return { status: "committed", superseded };
        });
        log.flush();
        const entry = issuanceAudit(records, results);
        if (entry) this.#appendAudit(entry);
        return results;
      }).immediate(),
    );
  }

  /**
   * A log for one revoking transaction: each block it appends is indexed by the partitions it holds, and each
   * of those partitions' revision is bumped in the same transaction (so it stays due until a CRL covers it).
   */
  #revocationLog(opts: { readonly withoutPartition?: boolean } = {}): RevocationLog {
    const st = this.#stmts;
    return new RevocationLog(st.logInsert, (caId, blockId, municipalities) => {
      for (const m of [...municipalities].sort((a, b) => a - b)) {
        // A carried entry whose partition is not known is logged with municipality "" (0): no partition of it.
        if (m === 0 && opts.withoutPartition) continue;
        st.logIndex.run(caId, m, blockId);
        st.bumpScope.run(caId, municipalityText(m));
      }
    });
  }

  /**
   * Revokes one certificate inside the caller's transaction: its certified row, and its CRL entry into the log. `residentCode` is where the certificate is expected (no lookup by serial then); a
   * certificate already revoked, or unknown, is left alone. Returns its CA when it revoked it.
   */
  #revokeOne(log: RevocationLog, serial: string, residentCode: string | undefined, at: number, reason: number, source: string): string | undefined {
    const st = this.#stmts;
    let row = residentCode === undefined ? undefined : (st.revokeCertified.get(at, reason, source, residentCode, serial) as [string, string, number] | undefined);
    if (!row) {
      const code = st.residentOfSerial.get(serial) as string | undefined;
      if (code !== undefined && code !== residentCode) row = st.revokeCertified.get(at, reason, source, code, serial) as [string, string, number] | undefined;
    }
    if (!row) return undefined;
    const [caId, municipality, notAfter] = row;
    log.add(caId, serial, at, reason, notAfter, municipality);
    st.deleteRegistered.run(serial); // the registry side no longer holds a revoked certificate's 発行情報
    return caId;
  }

  getCertificate(serial: string): Promise<CertificateRow | undefined> {
    return this.#run("reading a certificate", () => {
      const r = this.#stmts.getCert.get(serial) as CertRowDb | undefined;
      return r ? toCertRow(r) : undefined;
    });
  }

  getCertificateOwner(serial: string): Promise<CertificateOwner | undefined> {
    return this.#ownerLookups.get(serial);
  }

  /**
   * The validation API reads each answered certificate's owner (POST /v1/validate): the reads asked in one
   * event-loop turn (the answers of one message from the engine's thread) share one read transaction. Alone,
   * each statement began and ended its own — the WAL read lock taken and let go — ≈ 6 of its 9 µs (bench api).
   */
  readonly #ownerLookups = new Coalescer<CertificateOwner>(async (serials) => {
    try {
      return (this.#ownersRead ??= this.#db.transaction((keys: readonly string[]) => {
        const out = new Map<string, CertificateOwner>();
        for (const serial of keys) {
          const r = this.#stmts.certificateOwner.get(serial) as [string, string, Buffer] | undefined;
          if (r) out.set(serial, { caId: r[0], residentCode: r[1], der: r[2] });
        }
        return out;
      })).deferred(serials);
    } catch (e) {
      throw storeError(e, "reading certificates' owners");
    }
  });

  #ownersRead: Database.Transaction<(keys: readonly string[]) => Map<string, CertificateOwner>> | undefined;

  getCertificateByApplication(applicationId: string): Promise<CertificateRow | undefined> {
    return this.#run("reading a certificate by application", () => {
      const r = this.#stmts.getCertByApplication.get(applicationId) as CertRowDb | undefined;
      return r ? toCertRow(r) : undefined;
    });
  }

  findCertificates(q: CertificateQuery): Promise<CertificateRow[]> {
    return this.#run("searching certificates", () => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.caId) (where.push("c.ca_id = ?"), args.push(q.caId));
      if (q.residentCode) (where.push("k.resident_code = ?"), args.push(q.residentCode)); // certified's key
      if (q.type) (where.push("c.type = ?"), args.push(q.type));
      if (q.status === "valid") where.push("k.revoked_at IS NULL");
      if (q.status === "revoked") where.push("k.revoked_at IS NOT NULL");
      const sql = `${CERT_SELECT} ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY c.issued_at, c.serial LIMIT ?`;
      args.push(q.limit ?? 1000);
      return (this.#db.prepare(sql).all(...args) as CertRowDb[]).map(toCertRow);
    });
  }

  revoke(input: RevokeInput): Promise<CertificateRow> {
    return this.#run("revoking", () => {
      const revoked = this.#db.transaction(() => {
        const row = this.#stmts.getCert.get(input.serial) as CertRowDb | undefined;
        if (!row) throw new JpkiError("ERR_CERT_UNKNOWN", `no certificate with serial ${input.serial} in this workspace: check the serial (hex)`);
        if (row.revoked_at !== null) {
          throw new JpkiError("ERR_CERT_ALREADY_REVOKED", `certificate ${input.serial} was already revoked on ${new Date(Number(row.revoked_at)).toISOString()}`);
        }
        const log = this.#revocationLog();
        if (!this.#revokeOne(log, input.serial, row.resident_code, input.revokedAt.getTime(), input.reason, input.source)) {
          throw new JpkiError("ERR_INTERNAL", `certificate ${input.serial} is neither revoked nor active: the store is inconsistent`);
        }
        log.flush();
        this.#stmts.bumpRevision.run(row.ca_id);
        this.#appendAudit(revokeAudit(input, row.ca_id));
        return toCertRow({ ...row, revoked_at: input.revokedAt.getTime(), reason: input.reason, revocation_source: input.source });
      }).immediate();
      return revoked;
    }).then(async (revoked) => {
      // Reported as done, so it must outlive a power cut: the operator would not know to revoke again.
      await this.syncCommitted();
      return revoked;
    });
  }

  carryRevocations(entries: readonly CarriedRevocation[]): Promise<void> {
    return this.#run("carrying revocations over", () =>
      this.#db.transaction(() => {
        const st = this.#stmts;
        // The log that indexes an entry's partition and makes it due (an entry without one has neither).
        const log = this.#revocationLog({ withoutPartition: true });
        const carried = this.#db.prepare("INSERT INTO carried_revocations (serial, ca_id, revoked_at, reason) VALUES (?, ?, ?, ?)");
        const cas = new Set<string>();
        for (const e of entries) {
          if (!cas.has(e.caId) && !st.getCa.get(e.caId)) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${e.caId} in this store: its CRL entries cannot be carried over`);
          if (st.getCert.get(e.serial)) throw new JpkiError("ERR_INTERNAL", `certificate ${e.serial} is in this store: revoke it rather than carry its CRL entry over`);
          const municipality = carriedMunicipality(e);
          // Carried before: its entry is in the log already (a second one would list the serial twice); the first stands.
          if (st.carriedStatus.get(e.serial)) continue;
          cas.add(e.caId);
          log.add(e.caId, e.serial, e.revokedAt.getTime(), e.reason, e.notAfter.getTime(), municipality);
          carried.run(e.serial, e.caId, e.revokedAt.getTime(), e.reason);
        }
        log.flush();
        for (const ca of cas) st.bumpRevision.run(ca);
      }).immediate(),
    );
  }

  // `known` (crl/reuse.ts) is left aside: the log's pages are local, so reading a block costs no more than reading
  // and hashing the previous CRL's copy of it would.
  crlEntries(caId: string, opts: { expiredBefore: Date; known?: KnownBlocks }): AsyncIterable<EncodedEntries>;
  crlEntries(caId: string, opts: { expiredBefore: Date; withTotal: true; known?: KnownBlocks }): AsyncIterable<EncodedEntries | EntriesTotal>;
  crlEntries(caId: string, opts: { expiredBefore: Date; withTotal?: boolean }): AsyncIterable<EncodedEntries | EntriesTotal> {
    return this.#logEntries(caId, opts.expiredBefore.getTime(), 0, opts.withTotal === true);
  }

  async *deltaCrlEntries(caId: string, baseNumber: bigint, opts: { expiredBefore: Date }): AsyncIterable<EncodedEntries> {
    let mark: bigint | null | undefined;
    try {
      mark = this.#stmts.deltaMarkOf.get(caId, baseNumber) as bigint | null | undefined;
    } catch (e) {
      throw storeError(e, "reading a delta CRL's base");
    }
    if (mark === null || mark === undefined) throw new JpkiError("ERR_INTERNAL", `CRL ${caId} #${baseNumber} is no base a delta CRL can be built on`);
    // The blocks appended after the base's reservation: the revocations the base may miss.
    for await (const c of this.#logEntries(caId, opts.expiredBefore.getTime(), Number(mark), false)) yield c as EncodedEntries;
  }

  /**
   * The CA's log entries in blocks after block id `after`, without certificates expired before `cutoff`. With
   * `withTotal`, first their total, as of the CA's last block now: the log is append-only, so the blocks up to it
   * stay as they are, and the ones appended meanwhile wait for the next CRL (they made the CA due again).
   */
  async *#logEntries(caId: string, cutoff: number, from: number, withTotal: boolean): AsyncIterable<EncodedEntries | EntriesTotal> {
    const pageSize = 16;
    const what = "reading the revocation log";
    let upTo = Number.MAX_SAFE_INTEGER;
    if (withTotal) {
      let totalBytes: number;
      let totalCount: number;
      try {
        upTo = this.#stmts.logMark.get(caId) as number;
        [totalBytes, totalCount] = this.#stmts.logTotal.get(caId, from, upTo, cutoff) as [number, number];
        // Blocks holding a certificate expired before the cutoff keep only the others: counted as they will be
        // listed (read twice, these; blocks of certificates still valid only once).
        for (let after = from; ; ) {
          const rows = this.#stmts.logPartial.all(caId, after, upTo, cutoff, pageSize) as Array<[number, number, number, Buffer, Buffer]>;
          for (const [, count, minNotAfter, der, meta] of rows) {
            const kept = blockEntries(der, count, minNotAfter, meta, cutoff);
            if (kept) (totalBytes += kept.der.length), (totalCount += kept.count);
          }
          if (rows.length < pageSize) break;
          after = rows[rows.length - 1]![0];
        }
      } catch (e) {
        throw storeError(e, what);
      }
      yield { totalBytes, totalCount };
    }
    // Keyset pagination over the log rather than an open cursor: better-sqlite3 forbids other statements on
    // the connection while an iterator is open, and the consumer awaits between chunks.
    let handedOut = 0;
    for (let after = from; ; ) {
      // A consumer told the total writes each block out as it comes (crl/builder.ts streamCrl) and drops it: once a
      // page went that way, the next page's Buffers reuse their memory (store/young-generation.ts).
      if (withTotal && handedOut >= LOG_STREAM_COLLECT_BYTES) (collectYoungGeneration(), (handedOut = 0));
      let rows: Array<[number, number, number, Buffer, Buffer | null]>;
      try {
        rows = this.#stmts.logBlocks.all(cutoff, caId, after, upTo, LOG_STREAM_PAGE) as Array<[number, number, number, Buffer, Buffer | null]>;
      } catch (e) {
        throw storeError(e, what);
      }
      for (const [, count, minNotAfter, der, meta] of rows) {
        // A block holding certificates expired before the cutoff keeps the others (meta is read only for such blocks).
        const kept = blockEntries(der, count, minNotAfter, meta, cutoff);
        handedOut += der.length;
        if (kept) yield kept;
      }
      if (rows.length < LOG_STREAM_PAGE) return;
      after = rows[rows.length - 1]![0];
    }
  }

  async crlPartitionEntries(caId: string, partitions: readonly string[], opts: { expiredBefore: Date }): Promise<Map<string, EncodedEntries[]>> {
    const cutoff = opts.expiredBefore.getTime();
    const out = new Map<number, EncodedEntries[]>();
    for (const p of partitions) out.set(Number.parseInt(p, 10) || 0, []);
    const what = "reading the revocation log of partitions";
    let ids: number[];
    try {
      ids = this.#stmts.partitionBlockIds.all(caId, JSON.stringify([...out.keys()])) as number[];
    } catch (e) {
      throw storeError(e, what);
    }
    // Only the blocks holding an entry of a wanted partition (the index), a page at a time; each block is split
    // into runs of consecutive entries of one partition, which are referenced, not copied.
    for (let i = 0; i < ids.length; i += LOG_PAGE) {
      let rows: Array<[number, number, number, Buffer, Buffer]>;
      try {
        rows = this.#stmts.blocksById.all(JSON.stringify(ids.slice(i, i + LOG_PAGE))) as Array<[number, number, number, Buffer, Buffer]>;
      } catch (e) {
        throw storeError(e, what);
      }
      for (const [, count, minNotAfter, der, meta] of rows) splitBlockByPartition(der, count, minNotAfter, meta, cutoff, out);
    }
    return new Map([...out].map(([m, list]) => [municipalityText(m), list]));
  }

  reserveCrl(caId: string, thisUpdate: Date, nextUpdate: Date, scope: CrlScope = FULL_SCOPE): Promise<CrlReservation> {
    return this.#run("reserving a CRL number", () =>
      this.#db.transaction(() => {
        // One number sequence per CA, shared by its scopes (crl/scope.ts): every scope's numbers only increase.
        const max = this.#stmts.maxCrl.get(caId) as bigint | null;
        const number = (max ?? 0n) + 1n;
        if (scope === DELTA_SCOPE) throw new JpkiError("ERR_INTERNAL", "a delta CRL is reserved with reserveDeltaCrl");
        const revision =
          scope === FULL_SCOPE
            ? ((this.#stmts.revisionOf.get(caId) as number | undefined) ?? 0)
            : ((this.#stmts.scopeRevision.get(caId, scope) as number | undefined) ?? 0);
        // A full CRL records how far the CA's log went (this transaction holds the write lock): deltas on it list what came after.
        const mark = scope === FULL_SCOPE ? (this.#stmts.logMark.get(caId) as number) : null;
        this.#stmts.insertCrl.run(caId, number, thisUpdate.getTime(), nextUpdate.getTime(), revision, scope, mark, null);
        return { number, revision };
      }).immediate(),
    );
  }

  reserveDeltaCrl(caId: string, thisUpdate: Date, nextUpdate: Date): Promise<DeltaCrlReservation | undefined> {
    return this.#run("reserving a delta CRL number", () =>
      this.#db.transaction(() => {
        const st = this.#stmts;
        const base = st.deltaBase.get(caId) as { number: bigint; next_update: bigint; delta_mark: bigint | null } | undefined;
        if (!base || base.delta_mark === null || Number(base.next_update) <= thisUpdate.getTime()) return undefined;
        const number = ((st.maxCrl.get(caId) as bigint | null) ?? 0n) + 1n;
        const revision = (st.revisionOf.get(caId) as number | undefined) ?? 0;
        const next = new Date(Math.min(nextUpdate.getTime(), Number(base.next_update)));
        st.insertCrl.run(caId, number, thisUpdate.getTime(), next.getTime(), revision, DELTA_SCOPE, null, base.number);
        return { number, revision, baseNumber: base.number, nextUpdate: next };
      }).immediate(),
    );
  }

  skipCrlNumbers(caId: string, next: bigint, at: Date): Promise<{ readonly before: bigint; readonly next: bigint }> {
    return this.#run("moving CRL numbers on", () =>
      this.#db.transaction(() => {
        const st = this.#stmts;
        if (!st.getCa.get(caId)) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this store: its CRL numbers cannot be moved on`);
        const before = ((st.maxCrl.get(caId) as bigint | null) ?? 0n) + 1n;
        if (before >= next) return { before, next: before };
        st.burnCrl.run(caId, next - 1n, at.getTime(), at.getTime());
        return { before, next };
      }).immediate(),
    );
  }

  markCrlsDue(caId: string): Promise<void> {
    return this.#run("marking CRLs due", () =>
      this.#db.transaction(() => {
        if (!this.#stmts.getCa.get(caId)) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this store: its CRLs cannot be marked due`);
        this.#markDue(caId);
      }).immediate(),
    );
  }

  /** markCrlsDue's writes, inside the caller's transaction. */
  #markDue(caId: string): void {
    const st = this.#stmts;
    st.bumpRevision.run(caId);
    (this.#markScopesDue ??= this.#db.prepare("UPDATE crl_scopes SET revision = revision + 1 WHERE ca_id = ?")).run(caId);
    // The ARL has no row until published through one; its file may be in place all the same.
    (this.#markArlDue ??= this.#db.prepare("INSERT INTO crl_scopes (ca_id, scope, revision) VALUES (?, 'arl', 1) ON CONFLICT (ca_id, scope) DO NOTHING")).run(caId);
    // With delta CRLs a dirty full CRL waits for its base interval while deltas on the current one carry the
    // revocations: after a restore that kept the backup's full CRL, numbered below what verifiers had seen
    // and lacking what was revoked since, for up to crlBaseIntervalHours. No published full CRL is a delta
    // base any more, so the next full CRL is due at once (the schedule's pendingGoesTo) and deltas follow it.
    (this.#unmarkDeltaBases ??= this.#db.prepare("UPDATE crls SET delta_mark = NULL WHERE ca_id = ? AND scope = ''")).run(caId);
  }

  deltaCrlStatus(): Promise<DeltaCrlStatus[]> {
    return this.#run("reading delta CRL status", () =>
      this.#db.transaction(() => {
        const st = this.#stmts;
        type Row = CrlRowDb & { has_mark: bigint; revision: bigint };
        const bases = new Map((st.latestIn.all(FULL_SCOPE) as Row[]).map((r) => [r.ca_id, r]));
        const deltas = new Map((st.latestIn.all(DELTA_SCOPE) as Row[]).map((r) => [r.ca_id, r]));
        const revisions = new Map((st.revisions.all() as Array<[string, number]>).map(([id, r]) => [id, Number(r)]));
        return (st.listCas.all() as Array<{ id: string }>).map(({ id }) => {
          const b = bases.get(id);
          const d = deltas.get(id);
          return {
            caId: id,
            base: b && toCrlRecord(b),
            deltaReady: b !== undefined && b.has_mark !== 0n,
            delta: d && toCrlRecord(d),
            pending: !d || (revisions.get(id) ?? 0) > Number(d.revision),
          };
        });
      })(),
    );
  }

  publishCrl(rec: PublishedCrlRecord, install: () => void): Promise<boolean> {
    return this.#run("recording a published CRL", () => this.#db.transaction(() => this.#publishOne(rec, install)).immediate());
  }

  publishCrls(crls: ReadonlyArray<{ readonly rec: PublishedCrlRecord; readonly install: () => void }>, settle: () => void): Promise<Array<boolean | { readonly error: unknown }>> {
    return this.#run("recording published CRLs", () =>
      this.#db.transaction(() => {
        // An install that throws has written nothing of its CRL here (#publishOne only reads before it): the others go on.
        const out = crls.map(({ rec, install }) => {
          try {
            return this.#publishOne(rec, guardedInstall(install));
          } catch (e) {
            if (!(e instanceof CrlInstallFailed)) throw e;
            return { error: e.error };
          }
        });
        settle();
        return out;
      }).immediate(),
    );
  }

  /** One CRL's publication, in the caller's write transaction (publishCrl, publishCrls). */
  #publishOne(rec: PublishedCrlRecord, install: () => void): boolean {
    const scope = rec.scope ?? FULL_SCOPE;
    const st = this.#stmts;
    const row = st.crlRow.get(rec.caId, rec.number) as { revision: bigint; state: string; scope: string } | undefined;
    if (!row || row.state !== "reserved" || row.scope !== scope) throw new JpkiError("ERR_INTERNAL", `CRL ${rec.caId} #${rec.number} was not reserved for this scope`);
    const latest = (
      scope === FULL_SCOPE ? st.maxPublished.get(rec.caId) : scope === DELTA_SCOPE ? st.maxPublishedIn.get(rec.caId, scope) : st.scopePublished.get(rec.caId, scope)
    ) as bigint | null | undefined;
    if (latest !== null && latest !== undefined && latest >= rec.number) {
      st.supersedeCrl.run(rec.caId, rec.number);
      return false;
    }
    // The files go into place while this transaction holds the write lock, so two publishers of one CA
    // cannot interleave their renames: the file on disk only ever moves to a higher number.
    install();
    st.publishCrl.run(rec.entries, rec.path, rec.sha256, rec.caId, rec.number);
    // A delta marks nothing clean: the CA stays due for its next complete CRL.
    if (scope === FULL_SCOPE) st.markPublished.run(rec.caId, Number(row.revision));
    else if (scope !== DELTA_SCOPE) st.markScopePublished.run(rec.caId, scope, Number(row.revision), rec.number);
    this.#appendAudit(crlAudit(rec, scope));
    return true;
  }

  syncCommitted(): Promise<void> {
    if (this.#file === "") return Promise.resolve();
    // A sync in flight may have begun before the caller's commits: the caller waits for the next one, which every
    // caller arriving meanwhile shares (a notice run publishes hundreds of CRLs, several CAs at once).
    if (this.#walSync) {
      return (this.#walSyncNext ??= this.#walSync
        .catch(() => undefined)
        .then(() => {
          this.#walSyncNext = undefined;
          return this.syncCommitted();
        }));
    }
    // On the checkpointer's thread while it runs (store/checkpointer.ts: not behind libuv's queue of signatures),
    // else on libuv's pool; a thread that ended without answering leaves the sync to the pool.
    const cp = this.#checkpointer;
    const file = this.#file;
    const sync = (cp ? cp.syncWal().catch((e: unknown) => (e instanceof ThreadGone ? syncWalFile(file) : Promise.reject(e))) : syncWalFile(file))
      .catch((e: unknown) => Promise.reject(storeError(e, "syncing the workspace database")))
      .finally(() => {
        this.#walSync = undefined;
      });
    this.#walSync = sync;
    // A caller that asks for durability is at a pause (a run's CRLs, its end): the notice batches not yet copied back
    // are asked for now, after the sync, rather than left to the connection's close on this thread.
    if (this.#noticesSinceKick > 0) {
      this.#noticesSinceKick = 0;
      this.#afterBulk();
    }
    return sync;
  }


  crlStatus(): Promise<CrlStatus[]> {
    return this.#run("reading CRL status", () => {
      const latest = new Map<string, CrlRecord>();
      for (const r of this.#stmts.latestCrls.all() as CrlRowDb[]) latest.set(r.ca_id, toCrlRecord(r));
      const dirty = new Set(this.#stmts.dirty.all() as string[]);
      return (this.#stmts.listCas.all() as Array<{ id: string }>).map((c) => ({ caId: c.id, latest: latest.get(c.id), dirty: dirty.has(c.id) }));
    });
  }

  ping(): Promise<void> {
    return this.#run("checking that the store answers", () => void this.#stmts.ping.get());
  }

  caRevisions(): Promise<Map<string, number>> {
    return this.#run("reading CA revisions", () => new Map((this.#stmts.revisions.all() as Array<[string, number]>).map(([id, r]) => [id, Number(r)])));
  }

  certificateStatus(serial: string): Promise<CertificateStatusRow | undefined> {
    return this.#run("reading a certificate's status", () => {
      // A certificate the store has no row of may still be one whose CRL entry a restore carried over: revoked.
      const r = (this.#stmts.certStatus.get(serial) ?? this.#stmts.carriedStatus.get(serial)) as [string, number | null, number | null] | undefined;
      if (!r) return undefined;
      return { caId: r[0], revocation: r[1] === null ? undefined : { revokedAt: new Date(Number(r[1])), reason: Number(r[2] ?? 0) } };
    });
  }

  putOcspResponder(rec: OcspResponderRecord, o: { readonly unlessRewrapped?: WrappedKeysSeen } = {}): Promise<void> {
    return this.#run("saving an OCSP signing certificate", () => {
      this.#db.transaction(() => {
        // Read under the write lock (immediate): a rewrap commits before this reads, or after this commits.
        if (o.unlessRewrapped) this.#assertNotRewrapped(o.unlessRewrapped, `the new OCSP signing certificate of CA ${rec.caId} was not stored`, rec.caId);
        this.#stmts.putOcspResponder.run(rec.caId, rec.serial, rec.certificateDer, rec.encryptedKeyPem, rec.notBefore.getTime(), rec.notAfter.getTime());
        this.#appendAudit(ocspAudit(rec));
      }).immediate();
    });
  }

  #assertNotRewrapped(seen: WrappedKeysSeen, refused: string, caId: string): void {
    const cas = (this.#stmts.listCas.all() as Array<Record<string, unknown>>).map((r) => ({ id: r.id as string, encryptedKeyPem: r.key_pem as string }));
    const signers = (this.#stmts.ocspResponders.all() as Array<Record<string, unknown>>).map((r) => ({ caId: r.ca_id as string, serial: r.serial as string, encryptedKeyPem: r.key_pem as string }));
    const [changed] = rewrappedKeys(seen, cas, signers);
    if (changed) throw keysRewrapped(changed.what, refused, { caId });
  }

  ocspResponders(): Promise<OcspResponderRecord[]> {
    return this.#run("reading OCSP signing certificates", () => (this.#stmts.ocspResponders.all() as Array<Record<string, unknown>>).map(toOcspResponder));
  }

  crlScopeStatus(): Promise<CrlScopeStatus[]> {
    return this.#run("reading CRL status per scope", () =>
      (this.#stmts.scopeStatus.all() as Array<CrlRowDb & { dirty: bigint; number: bigint | null }>).map((r) => ({
        caId: r.ca_id,
        scope: r.scope,
        dirty: r.dirty !== 0n,
        latest: r.number === null ? undefined : toCrlRecord(r),
      })),
    );
  }

  latestCrl(caId: string, scope: CrlScope = FULL_SCOPE): Promise<CrlRecord | undefined> {
    return this.#run("reading the latest CRL", () => {
      const r = this.#stmts.latestCrl.get(caId, scope) as CrlRowDb | undefined;
      return r ? toCrlRecord(r) : undefined;
    });
  }

  loadNoticeContext(keys: NoticeContextKeys): Promise<NoticeContext> {
    return this.#run("reading notice context", () => this.#noticeContext(keys));
  }

  /**
   * `unrevoked`, when given, receives what revoking each unrevoked certificate read needs besides its key (CA,
   * partition, not_after), so a batch committing in this same transaction need not read it back.
   */
  #noticeContext(keys: NoticeContextKeys, unrevoked?: Map<string, UnrevokedCertificate>): NoticeContext {
    // Set-based: one statement per kind of fact for the whole batch (json_each expands the keys), instead
    // of five point queries per resident; the per-statement crossing dominated at national scale.
    const st = this.#stmts;
    const ids = JSON.stringify(keys.noticeIds);
    // A held resident-code change may be applied by this batch (its gap filled): the notices held under its
    // new code must then be in the context too, or they would wait for ever. Follow such changes.
    // Every code is in exactly one frontier, so the frontiers' rows are all the held notices of the batch's codes
    // (each resident's in sequence order), without reading them again.
    const codeSet = new Set(keys.residentCodes);
    const registryCodes = new Set(keys.registryCodes);
    const held = new Map<string, StoredNotice[]>();
    // Applied changes are followed too: a notice still filed under an old code is the person's under the new one.
    const codeChanges = new Map<string, string>();
    const firstSize = codeSet.size;
    let firstList: string | undefined;
    for (let frontier = [...codeSet]; frontier.length; ) {
      const next: string[] = [];
      const list = JSON.stringify(frontier);
      firstList ??= list;
      for (const r of st.batchHeld.all(list) as NoticeRowDb[]) {
        const list = held.get(r.resident_code) ?? [];
        list.push(toStoredNotice(r));
        held.set(r.resident_code, list);
        if (r.kind !== "resident-code-change") continue;
        const to = (JSON.parse(r.body) as { newResidentCode?: string }).newResidentCode;
        registryCodes.add(r.resident_code);
        if (to) registryCodes.add(to);
        if (to && !codeSet.has(to)) (codeSet.add(to), next.push(to));
      }
      for (const [from, body] of st.batchCodeChanges.all(list) as Array<[string, string]>) {
        const to = (JSON.parse(body) as { newResidentCode?: string }).newResidentCode;
        if (!to) continue;
        codeChanges.set(from, to);
        if (!codeSet.has(to)) (codeSet.add(to), next.push(to));
      }
      frontier = next;
    }
    // Written once: the same list as the first frontier's unless following changes added codes (the set only grows).
    const codes = firstList !== undefined && codeSet.size === firstSize ? firstList : JSON.stringify([...codeSet]);
    const known = new Map<string, { status: NoticeStatus; body: string; receivedAt: Date; appliedAt?: Date }>();
    for (const [id, status, body, receivedAt, appliedAt] of st.batchNoticeStatus.all(ids) as Array<[string, NoticeStatus, string, number | bigint, number | bigint | null]>) {
      known.set(id, { status, body, receivedAt: new Date(Number(receivedAt)), ...(appliedAt === null ? {} : { appliedAt: new Date(Number(appliedAt)) }) });
    }
    const lastSequence = new Map<string, number>();
    for (const [code, last] of st.batchLastSeq.all(codes) as Array<[string, number]>) lastSequence.set(code, last);
    const certificates = new Map<string, CertifiedRow[]>();
    // One read gives both: the unrevoked certificates, and which codes were ever certified.
    const everCertified = new Set<string>();
    // The items are NULL but on an unrevoked signature certificate (batchCertified).
    type Certified = [
      serial: string, caId: string, type: CertificateType, residentCode: string, name: string | null, address: string | null, birthDate: string | null, gender: string | null,
      revokedAt: number | null, municipality: string, notAfter: number, issuedAtSequence: number | null,
    ];
    for (const [serial, caId, type, residentCode, name, address, birthDate, gender, revokedAt, municipality, notAfter, issuedAtSequence] of st.batchCertified.all(codes) as Certified[]) {
      everCertified.add(residentCode);
      if (revokedAt !== null) continue;
      unrevoked?.set(serial, { caId, municipality, notAfter });
      const list = certificates.get(residentCode) ?? [];
      // Built directly, one object each (through itemsOf's row object and a spread of the sequence, three more), of
      // one shape per type: issuedAtSequence is there, undefined where the store has none.
      const seq = issuedAtSequence ?? undefined;
      list.push(
        type === "signature"
          ? { serial, caId, type, residentCode, fourItems: { name: name!, address: address!, birthDate: birthDate!, gender: gender as Gender }, issuedAtSequence: seq }
          : { serial, caId, type, residentCode, issuedAtSequence: seq },
      );
      certificates.set(residentCode, list);
    }
    // The registry's record only where the decision looks at it: a code the CA knows nothing of (is it a
    // resident at all?), and the codes of a resident-code change (is the new code someone's?). Most notices
    // are for certificate holders: their registry rows are not read.
    const wanted = [...codeSet].filter((c) => registryCodes.has(c) || !(everCertified.has(c) || lastSequence.has(c)));
    const residents = new Map<string, number>();
    const successors = new Map<string, string>();
    if (wanted.length) {
      for (const [code, seq, successor] of st.batchResidents.all(JSON.stringify(wanted)) as Array<[string, number, string | null]>) {
        residents.set(code, seq);
        if (successor !== null) successors.set(code, successor);
      }
    }

    return { known, lastSequence, held, certificates, residents, successors, everCertified, codeChanges };
  }

  async commitNoticeBatch<T extends { readonly commit: NoticeCommit }>(keys: NoticeContextKeys, decide: (ctx: NoticeContext) => T): Promise<T & { readonly revoked: number }> {
    await this.#beforeBulk();
    const done = await this.#run("committing a notice batch", () =>
      // IMMEDIATE: the write lock is taken before the context is read, so no other writer can change what
      // this batch decides from between the read and the commit.
      this.#db.transaction(() => {
        const unrevoked = new Map<string, UnrevokedCertificate>();
        const decided = decide(this.#noticeContext(keys, unrevoked));
        const b = decided.commit;
        const st = this.#stmts;
        const at = b.at.getTime();
        let revoked = 0;
        for (const r of b.relinks) {
          st.relinkCerts.run(r.to, r.from);
          st.relinkCertified.run(r.to, r.from);
          st.relinkSeq.run(r.to, r.from);
          st.relinkHeld.run(r.to, r.from);
          st.relinkDisclosuresIndexed.run(r);
          st.relinkDisclosuresTail.run(r);
          st.relinkDisclosureIndex.run(r);
        }
        const log = this.#revocationLog();
        for (const r of b.revocations) {
          // The certificate was read under r.residentCode; this batch's relinks may have moved it since.
          let code = r.residentCode;
          if (code !== undefined) for (const l of b.relinks) if (l.from === code) code = l.to;
          const u = code === undefined ? undefined : unrevoked.get(r.serial);
          if (u && st.revokeKnown.run(at, r.reason, r.source, code, r.serial).changes === 1) {
            log.add(u.caId, r.serial, at, r.reason, u.notAfter, u.municipality);
            // Its registered issuance information (発行情報) is not deleted here: registeredOf no longer returns
            // it, and sweepRegisteredIssuances removes it. Deleting it cost two random B-tree pages per
            // revocation (the table by serial and its resident index), about a fifth of a notice's CPU
            // across the committing and checkpointing threads, measured at 1M residents.
            revoked++;
          } else if (this.#revokeOne(log, r.serial, code, at, r.reason, r.source)) {
            // not where the context saw it, or named twice (then already revoked, and left alone)
            revoked++;
          }
        }
        log.flush();
        for (const n of b.notices) st.insertNotice.run(n.noticeId, n.residentCode, n.sequence, n.kind, n.status, n.body, at, n.status === "applied" ? at : null, n.revocations);
        for (const q of b.sequences) st.setSeq.run(q.residentCode, q.last);
        for (const ca of b.dirtyCas) st.bumpRevision.run(ca);
        const entry = noticeBatchAudit(b, revoked);
        if (entry) this.#appendAudit(entry);
        return { ...decided, revoked };
      }).immediate(),
    );
    // Copied back every NOTICES_PER_CHECKPOINT notices, not after each batch: see there why.
    if ((this.#noticesSinceKick += done.commit.notices.length) >= NOTICES_PER_CHECKPOINT) {
      this.#noticesSinceKick = 0;
      this.#afterBulk();
    }
    return done;
  }

  listHeldNotices(limit = 1000, after?: HeldNoticeKey): Promise<StoredNotice[]> {
    return this.#run("listing held notices", () =>
      ((after ? this.#stmts.listHeldAfter.all(after.residentCode, after.sequence, limit) : this.#stmts.listHeld.all(limit)) as NoticeRowDb[]).map(toStoredNotice),
    );
  }

  getNotice(noticeId: string): Promise<StoredNotice | undefined> {
    return this.#run("reading a notice", () => {
      const r = this.#stmts.getNotice.get(noticeId) as NoticeRowDb | undefined;
      return r ? toStoredNotice(r) : undefined;
    });
  }

  dirtyCas(): Promise<string[]> {
    return this.#run("listing CAs awaiting a CRL", () => this.#stmts.dirty.all() as string[]);
  }

  revocationSummary(): Promise<Array<{ serial: string; caId: string; reason: number; source: string }>> {
    return this.#run("summarising revocations", () =>
      (this.#stmts.revocationSummary.all() as Array<[string, string, number, string]>).map(([serial, caId, reason, source]) => ({ serial, caId, reason, source })),
    );
  }

  // ---- Registered signature verifiers (署名検証者) ----

  putVerifier(v: VerifierRecord): Promise<void> {
    return this.#run("registering a verifier", () => {
      try {
        this.#db.transaction(() => {
          this.#db.prepare("INSERT INTO verifiers (id, name, kind, token_sha256, cert_sha256, cert_not_after, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(...verifierValues(v));
          this.#appendAudit(verifierAudit(v));
        }).immediate();
      } catch (e) {
        if (String((e as { code?: string }).code).startsWith("SQLITE_CONSTRAINT")) {
          throw new JpkiError("ERR_VERIFIER_INVALID", `verifier ${v.id} or one of its credentials is already registered: register it again for new credentials`, { cause: e });
        }
        throw e;
      }
    });
  }

  getVerifier(id: string): Promise<VerifierRecord | undefined> {
    return this.#run("reading a verifier", () => {
      const r = this.#db.prepare("SELECT * FROM verifiers WHERE id = ?").get(id) as VerifierRowDb | undefined;
      return r ? toVerifier(r) : undefined;
    });
  }

  listVerifiers(): Promise<VerifierRecord[]> {
    return this.#run("listing verifiers", () => ((this.#verifierList ??= this.#db.prepare("SELECT * FROM verifiers ORDER BY id")).all() as VerifierRowDb[]).map(toVerifier));
  }

  /** Prepared once: `jpki serve` lists the verifiers every second to notice revocations. */
  #verifierList: Database.Statement | undefined;
  #fetchInsert: Database.Statement | undefined;
  #disclosureInsert: Database.Statement | undefined;
  #statusCheckInsert: Database.Statement | undefined;
  #statusCertificates: Database.Statement | undefined;

  revokeVerifier(id: string, at: Date): Promise<VerifierRecord> {
    return this.#run("revoking a verifier", () =>
      this.#db.transaction(() => {
        const r = this.#db.prepare("SELECT * FROM verifiers WHERE id = ?").get(id) as VerifierRowDb | undefined;
        if (!r) throw new JpkiError("ERR_VERIFIER_UNKNOWN", `no registered verifier ${id}: see 'jpki verifier list'`);
        if (r.revoked_at !== null) throw new JpkiError("ERR_VERIFIER_REVOKED", `verifier ${id} was already revoked on ${new Date(Number(r.revoked_at)).toISOString()}`);
        this.#db.prepare("UPDATE verifiers SET revoked_at = ? WHERE id = ?").run(at.getTime(), id);
        this.#appendAudit({ action: "verifier.revoke", subject: id, detail: { at } });
        return toVerifier({ ...r, revoked_at: at.getTime() });
      }).immediate(),
    );
  }

  initVerifierCa(ca: VerifierCaRecord): Promise<VerifierCaRecord> {
    return this.#run("saving the verifier CA", () =>
      this.#db.transaction(() => {
        const made = this.#db.prepare("INSERT INTO verifier_ca (id, cert_der, key_pem, created_at) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING").run(ca.certificateDer, ca.encryptedKeyPem, ca.createdAt.getTime());
        if (made.changes === 1) this.#appendAudit({ action: "verifier-ca.create", subject: "verifier-ca", detail: { certificateSha256: auditDigest(ca.certificateDer) } });
        return toVerifierCa(this.#db.prepare("SELECT * FROM verifier_ca WHERE id = 1").get() as { cert_der: Buffer; key_pem: string; created_at: number });
      }).immediate(),
    );
  }

  getVerifierCa(): Promise<VerifierCaRecord | undefined> {
    return this.#run("reading the verifier CA", () => {
      const r = this.#db.prepare("SELECT * FROM verifier_ca WHERE id = 1").get() as { cert_der: Buffer; key_pem: string; created_at: number } | undefined;
      return r ? toVerifierCa(r) : undefined;
    });
  }

  recordVerifierFetches(fetches: readonly VerifierFetch[], opts?: WriteDeadline): Promise<void> {
    if (!fetches.length) return Promise.resolve();
    // Written by jpki serve's serving thread every second (server/access.ts flush): SQLite's own busy handler slept
    // inside the call while another process held the write lock (a notice ingest, a CRL publication, a backup), and
    // every request of the server waited with it, up to BUSY_TIMEOUT_MS (20 s). Retried without blocking instead.
    return this.#withoutBlockingWait("recording verifier fetches", () => {
      const ins = (this.#fetchInsert ??= this.#db.prepare("INSERT INTO verifier_fetches (verifier_id, scope, path, status, at, count, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
      this.#db.transaction(() => {
        for (const f of fetches) ins.run(...verifierFetchValues(f));
      }).immediate();
    }, opts?.deadline);
  }

  listVerifierFetches(q: { verifierId?: string; limit?: number; newest?: boolean } = {}): Promise<VerifierFetch[]> {
    return this.#run("reading verifier fetches", () => {
      const limit = q.limit ?? 1000;
      const order = q.newest ? "DESC" : "ASC";
      const rows = (
        q.verifierId === undefined
          ? this.#db.prepare(`SELECT * FROM verifier_fetches ORDER BY id ${order} LIMIT ?`).all(limit)
          : this.#db.prepare(`SELECT * FROM verifier_fetches WHERE verifier_id = ? ORDER BY id ${order} LIMIT ?`).all(q.verifierId, limit)
      ) as VerifierFetchRowDb[];
      return rows.map(toVerifierFetch);
    });
  }

  async appendDisclosures(records: readonly DisclosureAppend[], opts?: WriteDeadline): Promise<ReadonlyArray<DisclosureOwner | undefined>> {
    if (!records.length) return [];
    const ins = (this.#disclosureInsert ??= this.#db.prepare(
      "INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ));
    const owner = this.#stmts.certificateOwner;
    // Made once: better-sqlite3 builds a transaction function's wrapper and controllers on each call of
    // transaction(), ≈ 5 % of a disclosure group's cost (groups of ~7 under the bench's load).
    const write = (this.#appendDisclosuresTx ??= this.#db.transaction((group: readonly DisclosureAppend[]) => {
      let newest = 0;
      const owners: Array<DisclosureOwner | undefined> = [];
      for (const d of group) {
        let o: DisclosureOwner | undefined;
        if (d.tbs) {
          const r = owner.get(d.serial) as [string, string, Buffer] | undefined;
          if (r && storedTbsIs(r[2], d.tbs)) o = { caId: r[0], residentCode: r[1] };
        }
        owners.push(o);
        const values = disclosureValues(d);
        if (o) [values[2], values[3]] = [o.caId, o.residentCode]; // issuer, resident_code
        newest = Number(ins.run(...values).lastInsertRowid);
      }
      for (const e of queryAudits([], group)) this.#appendAudit(e);
      this.#indexDisclosures(DISCLOSURES_PER_INDEX, newest);
      return owners;
    }));
    const owners = await this.#withoutBlockingWait("recording disclosures", () => write.immediate(records), opts?.deadline);
    this.#appendedDisclosures = true;
    this.#afterAppend();
    return owners;
  }

  #appendDisclosuresTx: Database.Transaction<(group: readonly DisclosureAppend[]) => Array<DisclosureOwner | undefined>> | undefined;

  /** Whether this connection appended disclosure records: it indexes what is left when it closes. */
  #appendedDisclosures = false;

  /**
   * Brings disclosures_by_resident up to the newest disclosure record, in the caller's transaction, when at least
   * `atLeast` records are above the mark: those records, sorted by resident, so one resident's go onto the same
   * index pages. The appends call it in their own transaction (DISCLOSURES_PER_INDEX), so no append is ever
   * answered as failed for the index's sake. `newest`: the id the caller's transaction just inserted, the newest
   * (it holds the write lock), which spares reading max(id).
   */
  #indexDisclosures(atLeast = 1, newest?: number): void {
    const st = (this.#disclosureIndexStmts ??= {
      through: this.#db.prepare(DISCLOSURES_INDEXED_THROUGH).pluck(),
      newest: this.#db.prepare("SELECT coalesce(max(id), 0) FROM disclosures").pluck(),
      index: this.#db.prepare(
        "INSERT INTO disclosures_by_resident (resident_code, id) SELECT resident_code, id FROM disclosures WHERE id > ? AND id <= ? AND resident_code IS NOT NULL ORDER BY resident_code, id",
      ),
      mark: this.#db.prepare("UPDATE disclosure_index_state SET indexed_through = ? WHERE id = 1"),
    });
    const from = st.through.get() as number;
    const to = newest || (st.newest.get() as number);
    if (to - from < atLeast) return;
    st.index.run(from, to);
    st.mark.run(to);
  }

  #disclosureIndexStmts: { through: Database.Statement; newest: Database.Statement; index: Database.Statement; mark: Database.Statement } | undefined;

  /**
   * Runs a short write transaction that another process may be holding the write lock against — `jpki serve
   * --workers` writing the disclosure log and liveness history from each worker — without SQLite's busy
   * handler: that one sleeps inside the call (1, 2, 5, 10 … ms) and so stops the worker's event loop, every
   * request on it waiting. Here the lock is tried at once and, while another writer holds it, tried again
   * after an asynchronous pause (requests go on; their records gather for the next write), until the
   * connection's usual busy timeout has passed, then ERR_WORKSPACE_LOCKED as before — or, given a `writeBy`
   * deadline (WriteDeadline, performance.now()'s clock), until then, then ERR_STORE_UNRESPONSIVE without writing:
   * the API has answered 503 meanwhile, and the write must not land after that answer.
   */
  // (The two pragmas are compiled on each call on purpose: SQLite applies PRAGMA busy_timeout when the statement
  // is prepared, not when it runs, so a prepared one run again changes nothing. Through exec, which compiles, runs
  // and finalizes in one native call: db.pragma() builds a Statement object and reads back rows for each, 5.8 µs a
  // pair here against 1.2 — per disclosure group of the validation API.)
  async #withoutBlockingWait<T>(what: string, f: () => T, writeBy?: number): Promise<T> {
    const deadline = performance.now() + BUSY_TIMEOUT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      if (writeBy !== undefined && performance.now() >= writeBy) throw new JpkiError("ERR_STORE_UNRESPONSIVE", `the store's write lock was held elsewhere past the deadline while ${what}: nothing was written`);
      try {
        this.#db.exec("PRAGMA busy_timeout = 0");
        try {
          return f();
        } finally {
          this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
        }
      } catch (e) {
        if ((e as { code?: string }).code !== "SQLITE_BUSY" || performance.now() >= deadline) throw storeError(e, what);
      }
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  listDisclosures(q: { residentCode: string; limit?: number }): Promise<DisclosureRecord[]> {
    return this.#run("reading disclosures", () => {
      // The per-resident index, and the newest records it does not cover yet (#indexDisclosures), one snapshot.
      const rows = this.#db
        .prepare(
          `SELECT d.* FROM disclosures_by_resident r JOIN disclosures d ON d.id = r.id WHERE r.resident_code = @resident
           UNION ALL SELECT * FROM disclosures WHERE id > (${DISCLOSURES_INDEXED_THROUGH}) AND resident_code = @resident
           ORDER BY id DESC LIMIT @limit`,
        )
        .all({ resident: q.residentCode, limit: q.limit ?? 1000 }) as DisclosureRowDb[];
      return rows.reverse().map(toDisclosure);
    });
  }

  // ---- Liveness checks (POST /v1/status) and the registry's consents ----

  carriedRevocations(serials: readonly string[]): Promise<Map<string, CarriedStatus>> {
    return this.#run("reading carried-over revocations", () => {
      const out = new Map<string, CarriedStatus>();
      for (const serial of new Set(serials)) {
        const r = this.#stmts.carriedStatus.get(serial) as [string, number, number] | undefined;
        if (r) out.set(serial, { caId: r[0], revokedAt: new Date(Number(r[1])), reason: Number(r[2]) });
      }
      return out;
    });
  }

  certificatesForStatus(q: { readonly serials: readonly string[]; readonly certificateIds: readonly string[] }): Promise<CertificateRow[]> {
    if (!q.serials.length && !q.certificateIds.length) return Promise.resolve([]);
    return this.#run("reading certificates for a liveness check", () => {
      // Prepared once: POST /v1/status reads a batch per request (its prepare was ≈ 1 % of the serving thread, bench api).
      const st = (this.#statusCertificates ??= this.#db.prepare(`${CERT_SELECT} WHERE c.serial IN (SELECT value FROM json_each(?)) OR c.der_sha256_prefix IN (SELECT unhex(value) FROM json_each(?))`));
      // Only well-formed ids are looked up, by their first 8 octets (migration 23); a row found by its prefix is
      // one of them only if its whole digest is.
      const ids = new Set(wellFormedCertificateIds(q.certificateIds));
      const serials = new Set(q.serials);
      const rows = st.all(JSON.stringify(q.serials), JSON.stringify([...ids].map((id) => certificateIdKey(id, "hex")))) as CertRowDb[];
      return rows.filter((r) => serials.has(r.serial) || ids.has(hash("sha256", r.der, "hex"))).map(toCertRow);
    });
  }

  async recordStatusChecks(checks: readonly StatusCheckRecord[], disclosures: readonly DisclosureRecord[], opts?: WriteDeadline): Promise<void> {
    if (!checks.length && !disclosures.length) return;
    const ins = (this.#statusCheckInsert ??= this.#db.prepare(
      "INSERT INTO status_checks (id, verifier_id, at, ca_id, serial, certificate_id, status, reason, revoked_at, replaced_by_ca_id, replaced_by_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ));
    const disc = (this.#disclosureInsert ??= this.#db.prepare(
      "INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ));
    const write = this.#db.transaction(() => {
      // Ids given here, not by SQLite's max(rowid) + 1: a restore may have moved the next id above the rows.
      let id = this.#nextStatusCheckId();
      for (const c of checks) ins.run(id++, ...statusCheckValues(c));
      for (const d of disclosures) disc.run(...disclosureValues(d));
      for (const e of queryAudits(checks, disclosures)) this.#appendAudit(e);
      if (disclosures.length) this.#indexDisclosures(DISCLOSURES_PER_INDEX);
    });
    await this.#withoutBlockingWait("recording liveness checks", () => write.immediate(), opts?.deadline);
    if (disclosures.length) this.#appendedDisclosures = true;
    this.#afterAppend();
  }

  /** The next liveness-check id (Store.nextStatusCheckId), read in the caller's transaction. */
  #nextStatusCheckId(): number {
    return Number(((this.#statusCheckNext ??= this.#db.prepare(NEXT_STATUS_CHECK_ID)).get() as { n: number }).n);
  }

  /**
   * The next liveness-check id of the store file at `path`, read only — neither migrated nor written (a restore
   * reads the store it is about to move aside) — or undefined when there is no such file or it cannot be read.
   */
  /**
   * Whether another connection (another process: jpki serve, watch, a running command) has the store at `path`
   * open: an exclusive lock is asked for without waiting, and every open connection to a WAL database holds the
   * lock that refuses it. False when no file is there. Reads nothing, writes nothing.
   */
  static openElsewhere(path: string): boolean {
    let db: Database.Database | undefined;
    try {
      db = new (betterSqlite3())(path, { fileMustExist: true });
    } catch {
      return false;
    }
    try {
      db.pragma("busy_timeout = 0");
      db.pragma("locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE");
      db.exec("COMMIT");
      return false;
    } catch (e) {
      return (e as { code?: string }).code === "SQLITE_BUSY" || (e as { code?: string }).code === "SQLITE_LOCKED";
    } finally {
      db.close();
    }
  }

  /**
   * The municipality of each certificate among `serials` (hex, as CRLs list them) that the SQLite store at `path`
   * issued, keyed `<ca>/<serial>`, read only; empty when there is no store to read. A restore looks there for the
   * partition of a revocation the replaced workspace published on its full CRL only (backup/restore.ts).
   */
  static certificateMunicipalitiesOf(path: string, serials: readonly string[]): Map<string, string> {
    const out = new Map<string, string>();
    if (!serials.length) return out;
    let db: Database.Database | undefined;
    try {
      db = new (betterSqlite3())(path, { readonly: true, fileMustExist: true });
      const rows = db
        .prepare("SELECT ca_id, serial, municipality_code FROM certificates WHERE serial IN (SELECT value FROM json_each(?))")
        .all(JSON.stringify(serials)) as Array<{ ca_id: string; serial: string; municipality_code: string }>;
      for (const r of rows) out.set(`${r.ca_id}/${r.serial}`, r.municipality_code);
    } catch {
      // no store there, or not one of ours: nothing known
    } finally {
      db?.close();
    }
    return out;
  }

  /**
   * The CA ids the SQLite store at `path` holds and has retired, read only (a restore reads the store it replaces:
   * backup/restore.ts), or undefined when there is no store to read. A store from before retired ids has none.
   */
  static caIdsOf(path: string): { readonly cas: readonly string[]; readonly retired: readonly RetiredCaIdRecord[] } | undefined {
    let db: Database.Database | undefined;
    try {
      db = new (betterSqlite3())(path, { readonly: true, fileMustExist: true });
      const cas = db.prepare("SELECT id FROM cas ORDER BY id").pluck().all() as string[];
      let retired: RetiredCaIdRecord[] = [];
      try {
        retired = (db.prepare("SELECT id, retired_at, reason FROM retired_ca_ids ORDER BY id").all() as Array<{ id: string; retired_at: Int; reason: string }>).map(toRetiredCaId);
      } catch {
        // no such table: a store from before SQLite schema 26
      }
      return { cas, retired };
    } catch {
      return undefined;
    } finally {
      db?.close();
    }
  }

  static nextStatusCheckIdOf(path: string): number | undefined {
    let db: Database.Database | undefined;
    try {
      db = new (betterSqlite3())(path, { readonly: true, fileMustExist: true }); // a missing file throws: undefined
      return Number((db.prepare(NEXT_STATUS_CHECK_ID).get() as { n: number }).n);
    } catch {
      return undefined;
    } finally {
      db?.close();
    }
  }

  #statusCheckNext: Database.Statement | undefined;

  nextStatusCheckId(): Promise<number> {
    return this.#run("reading the next liveness-check id", () => this.#nextStatusCheckId());
  }

  skipStatusCheckIds(next: number): Promise<{ readonly before: number; readonly next: number }> {
    if (!Number.isSafeInteger(next) || next < 1) return Promise.reject(new JpkiError("ERR_USAGE", `a liveness-check id is a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`));
    return this.#run("moving liveness-check ids on", () =>
      this.#db
        .transaction(() => {
          const before = this.#nextStatusCheckId();
          if (before >= next) return { before, next: before };
          this.#setStatusCheckNext(next);
          return { before, next };
        })
        .immediate(),
    );
  }

  counterNoticeIdKey(): Promise<Buffer> {
    return this.#run("reading the counter notice id key", () => {
      let hex = this.#counterNoticeIdKeyHex();
      if (hex === undefined) {
        // Whoever inserts first sets it for good: a second process reads the first one's.
        this.#db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING").run(COUNTER_NOTICE_ID_KEY, randomBytes(32).toString("hex"));
        hex = this.#counterNoticeIdKeyHex()!;
      }
      return Buffer.from(hex, "hex");
    });
  }

  /** The counter notice id key as it is in meta (hex), or undefined when none was made yet. */
  #counterNoticeIdKeyHex(): string | undefined {
    return this.#db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(COUNTER_NOTICE_ID_KEY) as string | undefined;
  }

  /** Records the floor of the next liveness-check id in meta (kept there, not as a row any listing would see). */
  #setStatusCheckNext(next: number): void {
    this.#db.prepare(`INSERT INTO meta (key, value) VALUES ('${STATUS_CHECK_NEXT_KEY}', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(String(next));
  }

  listStatusChecks(q: { readonly verifierId: string; readonly since?: Date; readonly after?: number; readonly limit?: number }): Promise<StoredStatusCheck[]> {
    return this.#run("reading liveness checks", () => {
      const limit = q.limit ?? 100;
      const after = q.after ?? 0;
      if (!q.since) return (this.#db.prepare("SELECT * FROM status_checks WHERE verifier_id = ? AND id > ? ORDER BY id LIMIT ?").all(q.verifierId, after, limit) as StatusCheckRowDb[]).map(toStatusCheck);
      // With since, the cheaper of two exact ways. First the next SINCE_SCAN checks by id from the cursor: the page
      // when enough of them are that recent (a since long ago: nearly all are) or when they are all there are.
      // Otherwise the checks from since on, through (verifier_id, at, id) (28): the index holds the id, so only the
      // page's rows are read, however many came before — with only (verifier_id, id), a recent since read every
      // check of the verifier after the cursor (0.4–0.6 s at 3M, on the serving thread: a review helper's repro).
      const since = q.since.getTime();
      const recent: StatusCheckRowDb[] = [];
      let scanned = 0;
      for (const r of this.#db.prepare("SELECT * FROM status_checks WHERE verifier_id = ? AND id > ? ORDER BY id LIMIT ?").iterate(q.verifierId, after, SINCE_SCAN) as IterableIterator<StatusCheckRowDb>) {
        scanned++;
        if (Number(r.at) >= since && recent.push(r) >= limit) break;
      }
      const rows =
        recent.length >= limit || scanned < SINCE_SCAN
          ? recent
          : (this.#db.prepare("SELECT * FROM status_checks INDEXED BY status_checks_verifier_at WHERE verifier_id = ? AND at >= ? AND id > ? ORDER BY id LIMIT ?").all(q.verifierId, since, after, limit) as StatusCheckRowDb[]);
      return rows.map(toStatusCheck);
    });
  }

  grantConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord> {
    return this.#run("recording a consent", () =>
      this.#db.transaction(() => {
        const made = this.#db.prepare("INSERT INTO consents (resident_code, verifier_id, granted_at) VALUES (?, ?, ?) ON CONFLICT (resident_code, verifier_id) WHERE withdrawn_at IS NULL DO NOTHING").run(c.residentCode, c.verifierId, c.at.getTime());
        if (made.changes === 1) this.#appendAudit({ action: "consent.grant", subject: c.verifierId, detail: { at: c.at } });
        return toConsent(this.#db.prepare("SELECT * FROM consents WHERE resident_code = ? AND verifier_id = ? AND withdrawn_at IS NULL").get(c.residentCode, c.verifierId) as ConsentRowDb);
      }).immediate(),
    );
  }

  withdrawConsent(c: { readonly residentCode: string; readonly verifierId: string; readonly at: Date }): Promise<ConsentRecord> {
    return this.#run("withdrawing a consent", () =>
      this.#db.transaction(() => {
        const r = this.#db.prepare("UPDATE consents SET withdrawn_at = ? WHERE resident_code = ? AND verifier_id = ? AND withdrawn_at IS NULL RETURNING *").get(c.at.getTime(), c.residentCode, c.verifierId) as ConsentRowDb | undefined;
        if (!r) throw new JpkiError("ERR_CONSENT_UNKNOWN", `resident ${c.residentCode} holds no live consent for verifier ${c.verifierId}: see 'jpki registry consent list'`);
        this.#appendAudit({ action: "consent.withdraw", subject: c.verifierId, detail: { at: c.at } });
        return toConsent(r);
      }).immediate(),
    );
  }

  listConsents(q: { readonly residentCode?: string; readonly verifierId?: string }): Promise<ConsentRecord[]> {
    return this.#run("reading consents", () => {
      const rows = this.#db
        .prepare("SELECT * FROM consents WHERE (? IS NULL OR resident_code = ?) AND (? IS NULL OR verifier_id = ?) ORDER BY id")
        .all(q.residentCode ?? null, q.residentCode ?? null, q.verifierId ?? null, q.verifierId ?? null) as ConsentRowDb[];
      return rows.map(toConsent);
    });
  }

  liveConsents(verifierId: string, residentCodes: readonly string[]): Promise<Set<string>> {
    if (!residentCodes.length) return Promise.resolve(new Set());
    return this.#run("reading consents", () => {
      const codes = this.#db
        .prepare("SELECT resident_code FROM consents WHERE verifier_id = ? AND withdrawn_at IS NULL AND resident_code IN (SELECT value FROM json_each(?))")
        .pluck()
        .all(verifierId, JSON.stringify(residentCodes)) as string[];
      return new Set(codes);
    });
  }

  // ---- Moving a store (store/copy.ts): dump and load. Kept apart, at the end, on purpose: they read and
  // write every table this backend has, and only through the columns its other methods use. ----

  /** Statements of dump and load, prepared on first use (most runs never copy). */
  #copyStmts: ReturnType<SqliteStore["prepareCopy"]> | undefined;

  private prepareCopy() {
    const db = this.#db;
    // Keyset pages in key order (BINARY: byte order, as PostgreSQL's COLLATE "C"): the first page, then the next after a key.
    const pages = (table: string, key: string) => ({
      first: db.prepare(`SELECT * FROM ${table} ORDER BY ${key} LIMIT ?`),
      after: db.prepare(`SELECT * FROM ${table} WHERE ${key} > ? ORDER BY ${key} LIMIT ?`),
    });
    return {
      count: Object.fromEntries(
        (
          [
            ["cas", "cas"],
            ["caLinks", "ca_links"],
            ["retiredCaIds", "retired_ca_ids"],
            ["residents", "residents"],
            ["certificates", "certificates"],
            ["revocationOrder", "revocation_log"],
            ["notices", "notices"],
            ["residentSequences", "resident_sequences"],
            ["crlState", "crl_state"],
            ["crlScopes", "crl_scopes"],
            ["crls", "crls"],
            ["ocspResponders", "ocsp_responders"],
            ["verifierCa", "verifier_ca"],
            ["verifiers", "verifiers"],
            ["verifierFetches", "verifier_fetches"],
            ["disclosures", "disclosures"],
            ["consents", "consents"],
            ["statusChecks", "status_checks"],
            ["registryOutbox", "registry_outbox"],
            ["auditLog", "audit_log"],
            ["auditCheckpoints", "audit_checkpoints"],
          ] as const
        ).map(([kind, table]) => [kind, db.prepare(table === "revocation_log" ? "SELECT coalesce(sum(entries), 0) FROM revocation_log" : `SELECT count(*) FROM ${table}`).pluck()]),
      ) as Record<DumpKind, Database.Statement>,
      cas: pages("cas", "id"),
      caLinks: pages("ca_links", "new_ca_id"),
      retiredCaIds: pages("retired_ca_ids", "id"),
      residents: pages("residents", "resident_code"),
      // A certificate with its four items and revocation (certified), as the services read it.
      certificates: {
        first: db.prepare(`${CERT_SELECT} ORDER BY c.serial LIMIT ?`),
        after: db.prepare(`${CERT_SELECT} WHERE c.serial > ? ORDER BY c.serial LIMIT ?`),
      },
      // The log in CRL order: per CA, block after block (its index is (ca_id, id)).
      logFirst: db.prepare("SELECT ca_id, id, der, meta FROM revocation_log ORDER BY ca_id, id LIMIT ?").raw(),
      logAfter: db.prepare("SELECT ca_id, id, der, meta FROM revocation_log WHERE (ca_id, id) > (?, ?) ORDER BY ca_id, id LIMIT ?").raw(),
      // Dumping the order: whether a carried-over entry (no revoked certificate of its CA) answers OCSP here.
      carriedCa: db.prepare("SELECT ca_id FROM carried_revocations WHERE serial = ?").pluck(),
      insertCarried: db.prepare("INSERT INTO carried_revocations (serial, ca_id, revoked_at, reason) VALUES (?, ?, ?, ?)"),
      notices: pages("notices", "notice_id"),
      residentSequences: pages("resident_sequences", "resident_code"),
      crlState: pages("crl_state", "ca_id"),
      ocspResponders: pages("ocsp_responders", "ca_id"),
      crlScopesFirst: db.prepare("SELECT * FROM crl_scopes ORDER BY ca_id, scope LIMIT ?").safeIntegers(),
      crlScopesAfter: db.prepare("SELECT * FROM crl_scopes WHERE (ca_id, scope) > (?, ?) ORDER BY ca_id, scope LIMIT ?").safeIntegers(),
      verifierCa: db.prepare("SELECT * FROM verifier_ca"),
      verifiers: pages("verifiers", "id"),
      verifierFetches: pages("verifier_fetches", "id"),
      disclosures: pages("disclosures", "id"),
      consents: pages("consents", "id"),
      statusChecks: pages("status_checks", "id"),
      registryOutbox: pages("registry_outbox", "id"),
      auditLog: pages("audit_log", "seq"),
      auditCheckpoints: pages("audit_checkpoints", "seq"),
      // Loading the order: the revoked certificate it names, and the serials already placed in the log.
      revokedBySerial: db.prepare(
        "SELECT k.ca_id, k.revoked_at, k.reason, k.not_after, k.municipality_code FROM certificates c JOIN certified k ON k.resident_code = c.resident_code AND k.serial = c.serial WHERE c.serial = ?",
      ).raw(),
      countRevoked: db.prepare("SELECT count(*) FROM certified WHERE revoked_at IS NOT NULL").pluck(),
      crlsFirst: db.prepare("SELECT * FROM crls ORDER BY ca_id, number LIMIT ?").safeIntegers(),
      crlsAfter: db.prepare("SELECT * FROM crls WHERE (ca_id, number) > (?, ?) ORDER BY ca_id, number LIMIT ?").safeIntegers(),
      insert: {
        cas: db.prepare("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at, key_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        caLinks: db.prepare("INSERT INTO ca_links (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at, compromised_at) VALUES (?, ?, ?, ?, ?, ?)"),
        retiredCaIds: db.prepare("INSERT INTO retired_ca_ids (id, retired_at, reason) VALUES (?, ?, ?)"),
        residents: db.prepare(
          `INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status, notice_sequence, successor_code)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        certificates: db.prepare(
          `INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix, certified_key)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        certified: db.prepare(
          `INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source, registry_sequence)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        log: db.prepare("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES (?, ?, ?, ?, ?)"),
        notices: db.prepare(
          `INSERT INTO notices (notice_id, resident_code, sequence, kind, status, body, received_at, applied_at, revocations)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ),
        residentSequences: db.prepare("INSERT INTO resident_sequences (resident_code, last_sequence) VALUES (?, ?)"),
        crlState: db.prepare("INSERT INTO crl_state (ca_id, revision, published_revision) VALUES (?, ?, ?)"),
        ocspResponders: db.prepare("INSERT INTO ocsp_responders (ca_id, serial, cert_der, key_pem, not_before, not_after) VALUES (?, ?, ?, ?, ?, ?)"),
        crlScopes: db.prepare("INSERT INTO crl_scopes (ca_id, scope, revision, published_revision, published_number) VALUES (?, ?, ?, ?, ?)"),
        logIndex: db.prepare("INSERT OR IGNORE INTO revocation_log_partition (ca_id, municipality, block_id) VALUES (?, ?, ?)"),
        crls: db.prepare(
          "INSERT INTO crls (ca_id, number, this_update, next_update, entries, path, sha256, revision, state, scope, base_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        verifierCa: db.prepare("INSERT INTO verifier_ca (id, cert_der, key_pem, created_at) VALUES (1, ?, ?, ?)"),
        verifiers: db.prepare("INSERT INTO verifiers (id, name, kind, token_sha256, cert_sha256, cert_not_after, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        verifierFetches: db.prepare("INSERT INTO verifier_fetches (verifier_id, scope, path, status, at, count, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
        disclosures: db.prepare(
          "INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        consents: db.prepare("INSERT INTO consents (resident_code, verifier_id, granted_at, withdrawn_at) VALUES (?, ?, ?, ?)"),
        statusChecks: db.prepare(
          "INSERT INTO status_checks (id, verifier_id, at, ca_id, serial, certificate_id, status, reason, revoked_at, replaced_by_ca_id, replaced_by_serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        registryOutbox: db.prepare("INSERT INTO registry_outbox (notice_id, resident_code, sequence, body, created_at) VALUES (?, ?, ?, ?, ?)"),
        auditLog: db.prepare("INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
        auditCheckpoints: db.prepare("INSERT INTO audit_checkpoints (seq, hash, at, ca_id, cert_der, signature) VALUES (?, ?, ?, ?, ?, ?)"),
      },
    };
  }

  get #copy(): ReturnType<SqliteStore["prepareCopy"]> {
    return (this.#copyStmts ??= this.prepareCopy());
  }

  #counts(): Record<DumpKind, number> {
    const c = this.#copy.count;
    return Object.fromEntries(DUMP_KINDS.map((k) => [k, Number(c[k].get())])) as Record<DumpKind, number>;
  }

  async *dump(opts: DumpOptions = {}): AsyncIterable<DumpBatch> {
    const size = opts.chunkSize ?? 1000;
    const db = this.#db;
    // The write lock for the whole dump: one snapshot, and no writer can commit something the copy would miss
    // (they wait busy_timeout, then fail with ERR_WORKSPACE_LOCKED). Readers go on. Keyset pages rather than
    // open iterators: the consumer awaits between chunks and may use this connection meanwhile.
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      throw storeError(e, "starting a dump");
    }
    try {
      const read = <T>(f: () => T): T => {
        try {
          return f();
        } catch (e) {
          throw storeError(e, "dumping the store");
        }
      };
      const st = read(() => this.#copy);
      const counterKey = read(() => this.#counterNoticeIdKeyHex());
      yield { kind: "header", source: this.kind, counts: read(() => this.#counts()), nextStatusCheckId: read(() => this.#nextStatusCheckId()), ...(counterKey !== undefined ? { counterNoticeIdKey: counterKey } : {}) };
      const paged = function* <R, K>(p: { first: Database.Statement; after: Database.Statement }, key: (r: R) => K, map: (r: R) => unknown) {
        let rows = read(() => p.first.all(size) as R[]);
        while (rows.length) {
          yield rows.map(map);
          if (rows.length < size) return;
          const last = key(rows[rows.length - 1]!);
          rows = read(() => p.after.all(last, size) as R[]);
        }
      };
      for (const records of paged<Record<string, unknown>, unknown>(st.cas, (r) => r.id, toCa)) yield { kind: "cas", records: records as CaRecord[] };
      for (const records of paged<Record<string, unknown>, unknown>(st.caLinks, (r) => r.new_ca_id, toCaLink)) yield { kind: "caLinks", records: records as CaLinkRecord[] };
      for (const records of paged<{ id: string; retired_at: Int; reason: string }, string>(st.retiredCaIds, (r) => r.id, toRetiredCaId)) yield { kind: "retiredCaIds", records: records as RetiredCaIdRecord[] };
      for (const records of paged<ResidentRow & { notice_sequence: number }, string>(st.residents, (r) => r.resident_code, (r) => ({
        ...toResident(r),
        noticeSequence: Number(r.notice_sequence),
      }))) {
        yield { kind: "residents", records: records as DumpResident[] };
      }
      for (const records of paged<CertRowDb, string>(st.certificates, (r) => r.serial, toCertRow)) yield { kind: "certificates", records: records as CertificateRow[] };
      // The CRL order: each CA's log, block after block, entry after entry (the serial read back from its DER).
      let order: DumpRevocationOrder[] = [];
      // An entry with no revoked certificate of its CA is one a restore carried over: it travels as the log lists it.
      for (let blocks = read(() => st.logFirst.all(LOG_PAGE) as Array<[string, number, Buffer, Buffer]>); blocks.length; ) {
        for (const [caId, , der, meta] of blocks) {
          for (const [i, e] of read(() => decodeEntries(der)).entries()) {
            const cert = read(() => st.revokedBySerial.get(e.serial) as [string, number | null] | undefined);
            if (cert && cert[1] !== null && cert[0] === caId) order.push({ caId, serial: e.serial });
            else order.push(carriedOrderEntry(caId, e, meta, i, read(() => st.carriedCa.get(e.serial)) === caId));
            if (order.length === size) (yield { kind: "revocationOrder", records: order }, (order = []));
          }
        }
        if (blocks.length < LOG_PAGE) break;
        const [caId, id] = blocks[blocks.length - 1]!;
        blocks = read(() => st.logAfter.all(caId, id, LOG_PAGE) as Array<[string, number, Buffer, Buffer]>);
      }
      if (order.length) yield { kind: "revocationOrder", records: order };
      for (const records of paged<NoticeRowDb, string>(st.notices, (r) => r.notice_id, toStoredNotice)) yield { kind: "notices", records: records as StoredNotice[] };
      for (const records of paged<{ resident_code: string; last_sequence: number }, string>(st.residentSequences, (r) => r.resident_code, (r) => ({
        residentCode: r.resident_code,
        lastSequence: Number(r.last_sequence),
      }))) {
        yield { kind: "residentSequences", records: records as DumpResidentSequence[] };
      }
      for (const records of paged<{ ca_id: string; revision: number; published_revision: number }, string>(st.crlState, (r) => r.ca_id, (r) => ({
        caId: r.ca_id,
        revision: Number(r.revision),
        publishedRevision: Number(r.published_revision),
      }))) {
        yield { kind: "crlState", records: records as DumpCrlState[] };
      }
      type ScopeRow = { ca_id: string; scope: string; revision: bigint; published_revision: bigint; published_number: bigint | null };
      let scopes = read(() => st.crlScopesFirst.all(size) as ScopeRow[]);
      while (scopes.length) {
        yield {
          kind: "crlScopes",
          records: scopes.map((r): DumpCrlScope => ({
            caId: r.ca_id,
            scope: r.scope,
            revision: Number(r.revision),
            publishedRevision: Number(r.published_revision),
            publishedNumber: r.published_number === null ? undefined : r.published_number,
          })),
        };
        if (scopes.length < size) break;
        const last = scopes[scopes.length - 1]!;
        scopes = read(() => st.crlScopesAfter.all(last.ca_id, last.scope, size) as ScopeRow[]);
      }
      let crls = read(() => st.crlsFirst.all(size) as Array<CrlRowDb & { revision: bigint }>);
      while (crls.length) {
        yield { kind: "crls", records: crls.map(toDumpCrl) };
        if (crls.length < size) break;
        const last = crls[crls.length - 1]!;
        crls = read(() => st.crlsAfter.all(last.ca_id, last.number, size) as Array<CrlRowDb & { revision: bigint }>);
      }
      for (const records of paged<Record<string, unknown>, unknown>(st.ocspResponders, (r) => r.ca_id, toOcspResponder)) {
        yield { kind: "ocspResponders", records: records as OcspResponderRecord[] };
      }
      const vca = read(() => st.verifierCa.all() as Array<{ cert_der: Buffer; key_pem: string; created_at: number }>);
      if (vca.length) yield { kind: "verifierCa", records: vca.map(toVerifierCa) };
      for (const records of paged<VerifierRowDb, string>(st.verifiers, (r) => r.id, toVerifier)) yield { kind: "verifiers", records: records as VerifierRecord[] };
      for (const records of paged<VerifierFetchRowDb & { id: number }, number>(st.verifierFetches, (r) => r.id, toVerifierFetch)) {
        yield { kind: "verifierFetches", records: records as VerifierFetch[] };
      }
      for (const records of paged<DisclosureRowDb & { id: number }, number>(st.disclosures, (r) => r.id, toDisclosure)) {
        yield { kind: "disclosures", records: records as DisclosureRecord[] };
      }
      for (const records of paged<ConsentRowDb & { id: number }, number>(st.consents, (r) => r.id, toConsent)) yield { kind: "consents", records: records as ConsentRecord[] };
      for (const records of paged<StatusCheckRowDb, number>(st.statusChecks, (r) => Number(r.id), toStatusCheck)) {
        yield { kind: "statusChecks", records: records as StoredStatusCheck[] };
      }
      type OutboxRow = { id: number; notice_id: string; resident_code: string; sequence: number; body: string; created_at: number };
      const toOutbox = (r: OutboxRow): OutboxNotice => ({ noticeId: r.notice_id, residentCode: r.resident_code, sequence: r.sequence, body: r.body, createdAt: new Date(r.created_at) });
      for (const records of paged<OutboxRow, number>(st.registryOutbox, (r) => r.id, toOutbox)) yield { kind: "registryOutbox", records: records as OutboxNotice[] };
      for (const records of paged<AuditRowDb, number>(st.auditLog, (r) => Number(r.seq), toAudit)) yield { kind: "auditLog", records: records as AuditRecord[] };
      for (const records of paged<AuditCheckpointRowDb, number>(st.auditCheckpoints, (r) => Number(r.seq), toAuditCheckpoint)) {
        yield { kind: "auditCheckpoints", records: records as AuditCheckpoint[] };
      }
      yield { kind: "end" };
      const note = opts.retire?.();
      if (note) {
        try {
          this.#retire(note);
          db.exec("COMMIT");
        } catch (e) {
          throw storeError(e, "closing the store to writers");
        }
      }
    } finally {
      // Read only unless retired (committed above): ending it either way changes nothing.
      if (db.open && db.inTransaction) db.exec("ROLLBACK");
    }
  }

  /**
   * Closes the store to writers, inside the dump's write transaction: the note in meta, and on every table a
   * trigger that aborts any insert, update or delete with it. A connection opened before (prepared statements
   * are re-prepared on the schema change) or waiting for the lock now fails on its first write.
   */
  #retire(note: string): void {
    const db = this.#db;
    const text = `this jpki store is retired, its writes refused: ${note}`.replace(/'/g, "''");
    db.prepare("INSERT INTO meta (key, value) VALUES ('retired', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(note);
    for (const table of RETIRED_TABLES) {
      for (const op of ["INSERT", "UPDATE", "DELETE"]) {
        db.exec(`CREATE TRIGGER IF NOT EXISTS jpki_retired_${table}_${op.toLowerCase()} BEFORE ${op} ON ${table} BEGIN SELECT RAISE(ABORT, '${text}'); END`);
      }
    }
  }

  retirement(): Promise<string | undefined> {
    return this.#run("reading whether the store is retired", () => (this.#db.prepare("SELECT value FROM meta WHERE key = 'retired'").pluck().get() as string | undefined) ?? undefined);
  }

  /** Nothing to confirm: a copy into SQLite is built under a temporary name and put in place only once verified (copy.ts). */
  async confirmLoad(): Promise<void> {}

  async load(batches: AsyncIterable<DumpBatch>): Promise<DumpCounts> {
    const db = this.#db;
    // One write transaction from the emptiness check to the last row: a copy killed midway leaves the file as
    // empty as it found it (the WAL's uncommitted frames are ignored on the next open).
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      throw storeError(e, "starting a load");
    }
    let committed = false;
    try {
      const st = this.#copy;
      const held = Object.entries(this.#counts()).filter(([, n]) => n > 0);
      if (held.length) {
        throw new JpkiError("ERR_STORE_NOT_EMPTY", `the target store already holds ${held.map(([k, n]) => `${n} ${k}`).join(", ")}: a copy goes into an empty store only`);
      }
      const check = new DumpStreamCheck();
      const ins = st.insert;
      // The revocation log is rebuilt in the order the dump gives (the source's CRL order): consecutive entries
      // of a CA go into one block, up to LOAD_BLOCK entries. Each revoked certificate must come exactly once.
      // The partition index is rebuilt with the log; the partitions' freshness comes from the dump (crlScopes).
      const log = new RevocationLog(ins.log, (caId, blockId, municipalities) => {
        for (const m of municipalities) ins.logIndex.run(caId, m, blockId);
      });
      let logCa: string | undefined;
      let logOpen = 0;
      let placed = 0;
      // The serials placed so far, on disk rather than in memory (a store may hold millions of revocations).
      db.exec("CREATE TEMP TABLE jpki_load_placed (serial TEXT PRIMARY KEY) WITHOUT ROWID");
      const place = db.prepare("INSERT OR IGNORE INTO jpki_load_placed (serial) VALUES (?)");
      let nextStatusCheckId: number | undefined;
      let counterKey: string | undefined;
      for await (const batch of batches) {
        if (batch.kind === "header") ({ nextStatusCheckId, counterNoticeIdKey: counterKey } = batch);
        const b = check.accept(batch);
        if (!b) continue;
        try {
          switch (b.kind) {
            case "cas":
              for (const r of b.records) ins.cas.run(r.id, r.prefectureCode, r.purpose, r.certificateDer, r.encryptedKeyPem, r.keyId, r.createdAt.getTime(), r.keyRef ?? null);
              break;
            case "caLinks":
              for (const r of b.records) ins.caLinks.run(r.newCaId, r.oldCaId, r.oldWithNew ?? null, r.newWithOld ?? null, r.createdAt.getTime(), r.compromisedAt?.getTime() ?? null);
              break;
            case "retiredCaIds":
              for (const r of b.records) ins.retiredCaIds.run(r.id, r.retiredAt.getTime(), r.reason);
              break;
            case "residents":
              for (const r of b.records) {
                const f = r.fourItems;
                ins.residents.run(r.residentCode, r.municipalityCode, f.name, f.address, f.birthDate, f.gender, r.status, r.noticeSequence, r.successorCode ?? null);
              }
              break;
            case "certificates":
              for (const r of b.records) {
                const f = r.fourItems;
                const v = r.revocation;
                ins.certificates.run(
                  r.serial, r.caId, r.type, r.residentCode, r.municipalityCode,
                  r.notBefore.getTime(), r.notAfter.getTime(), r.issuedAt.getTime(), r.der, r.applicationId ?? null, derIdKey(r.der), certifiedKeyColumn(r.der),
                );
                ins.certified.run(
                  r.residentCode, r.serial, r.caId, r.type, r.municipalityCode, f.name, f.address, f.birthDate, f.gender, r.notAfter.getTime(),
                  v ? v.revokedAt.getTime() : null, v ? v.reason : null, v ? v.source : null, r.registrySequence ?? null,
                );
              }
              break;
            case "revocationOrder":
              for (const r of b.records) {
                const row = st.revokedBySerial.get(r.serial) as [string, number | null, number | null, number, string] | undefined;
                if (r.carried) {
                  // A restore's carried-over entry: as the source's log lists it, for a certificate this store has no row of.
                  const c = r.carried;
                  if (row) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump carries ${r.serial}'s CRL entry over, but also holds that certificate: nothing was loaded`);
                  if (place.run(r.serial).changes === 0) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} twice among the CRL entries: nothing was loaded`);
                  if (r.caId !== logCa || logOpen === LOAD_BLOCK) (log.flush(), (logCa = r.caId), (logOpen = 0));
                  log.add(r.caId, r.serial, c.revokedAt.getTime(), c.reason, c.notAfter.getTime(), carriedMunicipality({ serial: r.serial, ...(c.municipality === undefined ? {} : { municipality: c.municipality }) }));
                  logOpen++;
                  if (c.recorded) st.insertCarried.run(r.serial, r.caId, c.revokedAt.getTime(), c.reason);
                  continue;
                }
                if (!row || row[1] === null || row[0] !== r.caId) {
                  throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} among ${r.caId}'s CRL entries, but it is not a certificate of that CA it revoked: nothing was loaded`);
                }
                if (place.run(r.serial).changes === 0) throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump lists ${r.serial} twice among the CRL entries: nothing was loaded`);
                placed++;
                if (r.caId !== logCa || logOpen === LOAD_BLOCK) (log.flush(), (logCa = r.caId), (logOpen = 0));
                const [caId, revokedAt, reason, notAfter, municipality] = row;
                log.add(caId, r.serial, revokedAt, reason ?? 0, notAfter, municipality);
                logOpen++;
              }
              break;
            case "notices":
              for (const r of b.records) {
                ins.notices.run(r.noticeId, r.residentCode, r.sequence, r.kind, r.status, r.body, r.receivedAt.getTime(), r.appliedAt?.getTime() ?? null, r.revocations);
              }
              break;
            case "residentSequences":
              for (const r of b.records) ins.residentSequences.run(r.residentCode, r.lastSequence);
              break;
            case "crlState":
              for (const r of b.records) ins.crlState.run(r.caId, r.revision, r.publishedRevision);
              break;
            case "crlScopes":
              for (const r of b.records) ins.crlScopes.run(r.caId, r.scope, r.revision, r.publishedRevision, r.publishedNumber ?? null);
              break;
            case "crls":
              for (const r of b.records) {
                ins.crls.run(r.caId, r.number, r.thisUpdate.getTime(), r.nextUpdate.getTime(), r.entries ?? null, r.path ?? null, r.sha256 ?? null, r.revision, r.state, r.scope, r.baseNumber ?? null);
              }
              break;
            case "ocspResponders":
              for (const r of b.records) ins.ocspResponders.run(r.caId, r.serial, r.certificateDer, r.encryptedKeyPem, r.notBefore.getTime(), r.notAfter.getTime());
              break;
            case "verifierCa":
              for (const r of b.records) ins.verifierCa.run(r.certificateDer, r.encryptedKeyPem, r.createdAt.getTime());
              break;
            case "verifiers":
              for (const r of b.records) ins.verifiers.run(...verifierValues(r));
              break;
            case "verifierFetches":
              for (const r of b.records) ins.verifierFetches.run(...verifierFetchValues(r));
              break;
            case "disclosures":
              for (const r of b.records) ins.disclosures.run(...disclosureValues(r));
              break;
            case "consents":
              for (const r of b.records) ins.consents.run(r.residentCode, r.verifierId, r.grantedAt.getTime(), r.withdrawnAt?.getTime() ?? null);
              break;
            case "statusChecks":
              // with their ids: a verifier's paging cursor goes on working against the copy
              for (const r of b.records) ins.statusChecks.run(r.id, ...statusCheckValues(r));
              break;
            case "registryOutbox":
              // in dump order: the ids keep the source's delivery order
              for (const r of b.records) ins.registryOutbox.run(r.noticeId, r.residentCode, r.sequence, r.body, r.createdAt.getTime());
              break;
            case "auditLog":
              // as stored, seq and hashes included: the copy's chain is the source's
              for (const r of b.records) ins.auditLog.run(r.seq, r.at.getTime(), r.actor, r.action, r.subject, r.detail, r.prevHash, r.hash);
              break;
            case "auditCheckpoints":
              for (const r of b.records) ins.auditCheckpoints.run(r.seq, r.hash, r.at.getTime(), r.caId, r.certificateDer, r.signature);
              break;
          }
        } catch (e) {
          throw storeError(e, `loading ${b.kind}`);
        }
      }
      const counts = check.finish();
      log.flush();
      const revoked = Number(st.countRevoked.get());
      if (placed !== revoked) {
        throw new JpkiError("ERR_STORE_COPY_MISMATCH", `the dump revokes ${revoked} certificates but orders ${placed} CRL entries: nothing was loaded`);
      }
      db.exec("DROP TABLE temp.jpki_load_placed");
      // The source's next id, where a restore moved it above its rows: the copy hands out none it could have.
      if (nextStatusCheckId !== undefined && nextStatusCheckId > this.#nextStatusCheckId()) this.#setStatusCheckNext(nextStatusCheckId);
      // The source's counter notice id key, or none: the target (holding no facts, so no ids) had none of its own to keep.
      db.prepare("DELETE FROM meta WHERE key = ?").run(COUNTER_NOTICE_ID_KEY);
      if (counterKey !== undefined) {
        if (!/^[0-9a-f]{64}$/.test(counterKey)) throw new JpkiError("ERR_STORE_COPY_MISMATCH", "the dump's counter notice id key is not 32 bytes of hex: nothing was loaded");
        db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(COUNTER_NOTICE_ID_KEY, counterKey);
      }
      // The registry side's copy of the issuance information is not a kind of its own in a dump: in one store
      // it is exactly the unrevoked certificates' (every transaction that issues or revokes keeps it so).
      db.exec(REGISTER_UNREVOKED);
      this.#indexDisclosures();
      db.exec("COMMIT");
      committed = true;
      return counts;
    } catch (e) {
      throw storeError(e, "loading a dump");
    } finally {
      if (!committed && db.open && db.inTransaction) db.exec("ROLLBACK");
    }
  }
}

/** Every table a dump reads: what a retired store refuses to write. */
const RETIRED_TABLES = ["cas", "ca_links", "retired_ca_ids", "residents", "certificates", "certified", "revocation_log", "revocation_log_partition", "notices", "resident_sequences", "crl_state", "crl_scopes", "crls", "ocsp_responders", "verifier_ca", "verifiers", "verifier_fetches", "disclosures", "consents", "status_checks", "registry_issuances", "registry_outbox", "audit_log", "audit_checkpoints", "carried_revocations"] as const;

/**
 * Log blocks read per page, and bytes handed out between two young-generation collections, when a CRL streams from
 * the log (#logEntries). Small on purpose: every page's Buffers (better-sqlite3 copies each BLOB into a new one) land
 * in memory the last collection freed only if that collection came before them; what does not fit there is fresh
 * memory, and a first touch of a page costs ≈ 13 µs on these virtual machines (a minor fault). 16 blocks of ≈ 460 KB
 * a page and a collection per 4 MiB took 4,470 faults and ≈ 88 ms to read a 1M-entry CRL's 46 MB; 4 blocks and one
 * per MiB (a collection after every page, ≈ 0.2 ms with nothing else young) ≈ 1,750 faults and ≈ 55 ms. Smaller
 * still (1 or 2 blocks) faulted more again, collections no longer keeping pace.
 */
const LOG_STREAM_PAGE = 4;
const LOG_STREAM_COLLECT_BYTES = 1 << 20;
/** Log blocks read per page when dumping the CRL order. */
const LOG_PAGE = 16;
/** Entries per log block a load writes (as migration 7 did): the source's block boundaries are not kept, its order is. */
const LOAD_BLOCK = MIGRATION_BLOCK;

