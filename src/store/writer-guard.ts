/**
 * The writer guard (書き込みガード): a store upgraded by a newer jpki refuses the rows an older jpki, still running
 * from before the upgrade, would write without the columns the newer code relies on being filled at insert.
 *
 * Why: an upgrade that adds such a column (SQLite 23 `der_sha256_prefix`, SQLite 29 / PostgreSQL 26
 * `certified_key`) fills it for the rows it finds, but a process of the previous release that had the store open
 * before keeps inserting certificates with the column NULL. A certificate without `certified_key` escapes the
 * key-in-use check of every later issuance (one key certified to two residents, or for both types), and one
 * without `der_sha256_prefix` is never found by certificate id (a verifier's liveness check says unknown). Nothing
 * told the operator. Now the insert fails, in the old process, with a message that says what to do.
 *
 * The guard (SQLite version 32, PostgreSQL 29): SQLite, a CHECK constraint named {@link WRITER_GUARD_MESSAGE}
 * in the certificates table's definition (version 33; version 32 had a BEFORE INSERT trigger raising it, which cost
 * every insert a statement journal); PostgreSQL, a CHECK constraint added NOT VALID, named
 * {@link PG_WRITER_GUARD_CONSTRAINT} (the name is what an old jpki's message shows; the migrations say why each).
 * For the condition to be exactly "an older writer", NULL must never be what the current code writes: a DER with
 * no key to read (never one of ours: test rows, a damaged import) is stored as {@link NO_CERTIFIED_KEY}.
 *
 * The current code never trips it; should it meet it (a store upgraded again, by a still newer jpki that relies
 * on a column this one leaves empty), both stores map it to ERR_STORE_UPGRADED ({@link writerGuardRefused}).
 */
import { JpkiError } from "../errors.js";
import { certifiedKeyOf } from "./rows.js";

/**
 * `certificates.certified_key` of a certificate whose DER has no public key to read (rows.ts certifiedKeyOf
 * gives null): the empty byte string. Never a key (those are 8 octets) and never looked up (a lookup asks for the
 * keys certifiedKeyOf gives), so NULL in that column only ever means "written by a jpki from before the column".
 */
export const NO_CERTIFIED_KEY: Buffer = Buffer.alloc(0);

/** What an insert stores in `certificates.certified_key`: the key (certifiedKeyOf), or NO_CERTIFIED_KEY. */
export function certifiedKeyColumn(der: Uint8Array): Buffer {
  return certifiedKeyOf(der) ?? NO_CERTIFIED_KEY;
}

/** How the SQLite guard's message begins (what isSqliteWriterGuard recognises). */
const MESSAGE_HEAD = "jpki writer guard:";

/**
 * The SQLite guard's message: the name of its CHECK constraint (the version 32 trigger raised it). An old jpki shows
 * it as its store failure's text (it maps SQLite errors to "store failure while …: <message>"), after SQLite's
 * "CHECK constraint failed: ". No value of the row: the four items never reach a message. The
 * migration wrote it into each store's schema: a later wording reaches new stores only, so its head stays.
 */
export const WRITER_GUARD_MESSAGE =
  `${MESSAGE_HEAD} this store was upgraded by a newer jpki, which relies on every certificate row having its certified key and certificate id; ` +
  "this process is an older jpki that writes them without: its write was refused, nothing of it was stored. Stop this process and run the new release";

/**
 * The PostgreSQL constraint's name (at most 63 octets, an identifier's limit): an old jpki's message names the
 * constraint a row breaks (and never the server's text, which quotes the row), so the name is the message.
 */
export const PG_WRITER_GUARD_CONSTRAINT = "store_upgraded_by_newer_jpki_stop_this_process_run_new_release";

/**
 * The comment the constraint carries (pg_description; pg_dump keeps it), in the SQLite message's words: PostgreSQL
 * has no certificate id column to guard (its index is on an expression of the DER).
 */
export const PG_WRITER_GUARD_COMMENT =
  `${MESSAGE_HEAD} this store was upgraded by a newer jpki, which relies on every certificate row having its certified key (certified_key); ` +
  "a process that inserts one without is an older jpki: its write was refused, nothing of it was stored. Stop that process and run the new release";

/**
 * The PostgreSQL relink guard's message (migration 35: a relink of the disclosure log by a jpki from before its
 * per-resident index, 34), raised under {@link PG_WRITER_GUARD_CONSTRAINT}'s name: an old jpki shows the name only,
 * the server's log the sentence. No code of the relink: the message never names a resident.
 */
export const PG_RELINK_GUARD_MESSAGE =
  `${MESSAGE_HEAD} this store was upgraded by a newer jpki, which keeps the disclosure log's per-resident index (disclosures_by_resident) and moves it with every relink; ` +
  "a process that moves disclosure records to another resident code without it is an older jpki: its notice batch was refused, nothing of it was stored. Stop that process and run the new release";

/**
 * Whether `e`, a SQLite error, is the writer guard refusing an insert: its CHECK constraint, named by the message
 * (SQLite 33: "CHECK constraint failed: jpki writer guard: …"), or a trigger raising it (SQLite 32, and the form a
 * still newer jpki's guard may take).
 */
export function isSqliteWriterGuard(e: unknown): boolean {
  const x = e as { code?: unknown; message?: unknown };
  if (typeof x?.message !== "string") return false;
  if (x.code === "SQLITE_CONSTRAINT_CHECK") return x.message.startsWith(`CHECK constraint failed: ${MESSAGE_HEAD}`);
  return x.code === "SQLITE_CONSTRAINT_TRIGGER" && x.message.startsWith(MESSAGE_HEAD);
}

/** Whether `e`, a PostgreSQL server error, is the writer guard's constraint refusing a row (23514 check_violation). */
export function isPgWriterGuard(e: unknown): boolean {
  const x = e as { code?: unknown; constraint?: unknown };
  return x?.code === "23514" && x.constraint === PG_WRITER_GUARD_CONSTRAINT;
}

/** ERR_STORE_UPGRADED: what this jpki says when the guard refused one of its own writes while `what`. */
export function writerGuardRefused(what: string, cause: unknown): JpkiError {
  return new JpkiError(
    "ERR_STORE_UPGRADED",
    `the store was upgraded by a newer jpki while this process had it open, and refused its write while ${what} (a certificate without a column the newer schema relies on; nothing of it was stored): stop this process and run the new release`,
    { cause, details: { reason: "writer-guard" } },
  );
}
