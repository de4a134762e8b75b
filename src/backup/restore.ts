/**
 * `jpki restore SRC` (issue 13, point 4): puts a backup (backup/backup.ts) back as a workspace, so that nothing
 * the workspace handed out after the backup was taken is handed out again.
 *
 * 1. The backup is checked against its manifest before anything is touched: a file missing, added or changed
 *    is ERR_BACKUP_CORRUPT (exit 21) naming it. A backup of a newer schema is ERR_BACKUP_UNSUPPORTED. With the CA
 *    passphrase, the manifest's authentication is checked too (manifest.ts authenticateBackup): a rewritten
 *    manifest is ERR_BACKUP_CORRUPT, one without authentication ERR_BACKUP_UNAUTHENTICATED unless accepted.
 * 2. A target that holds a workspace (config.json or jpki.db), or a PostgreSQL database with tables, is refused
 *    (ERR_BACKUP_TARGET_LIVE) unless `force`. Every jpki process on it must be stopped first: a restore is no
 *    online operation (there is no workspace lock to take, types.ts "Concurrency contract"). A store another
 *    process has open (SQLite), or a database with tables another client is connected to (PostgreSQL), is
 *    refused even with `force` (ERR_WORKSPACE_LOCKED).
 * 3. The CRL numbers in the files the target still publishes are read before they are moved away.
 * 4. The backup's files are staged inside the workspace root (`.restore-<pid>~@<namespace>-<random>`,
 *    {@link sweepStaleStages}); a SQLite store is
 *    staged there too and its CRL numbering moved on (crl-numbers.ts) before it is put in place, so no process
 *    can ever see the restored store with its old numbering; the Bridge CA's ARL numbering, kept in
 *    bridge/state.json, moves the same way. A PostgreSQL dump is restored (pg_restore's script, run by psql) in
 *    one transaction that also marks the store as a restore not finished (PostgresStore.restorePendingStatement);
 *    its numbering is then moved on, and the mark removed last (finishRestore). Until then every jpki process is
 *    refused the store, and one that had opened the database before is refused any CRL number: a restore killed
 *    in between leaves a store nobody numbers a CRL from, and run again it completes.
 * 5. Revocations the target's previous CRLs list (crl/, and the crl/ of every earlier restore's
 *    before-restore-<time>/) and the backup's do not (made after the backup) are made
 *    again in the restored store when it has the certificate unrevoked — a restore never un-revokes a
 *    certificate. When it does not know the certificate (issued after the backup), the CRL entry is carried
 *    over into the CA's revocation log (Store.carryRevocations), so later full CRLs list it still (and its
 *    municipality partition's, when a partition CRL listed it or the store being replaced — SQLite: also those
 *    earlier restores moved aside — holds the certificate), and reported; once only (an earlier restore may
 *    have carried it into the backup's store already).
 * 6. The restore is recorded in the restored store's audit log ({@link recordRestore}, the one place).
 * 7. The target's previous config.json, store file, ca/, crl/, arl/ and bridge/ move to `before-restore-<UTC time>/` in
 *    the root (nothing is deleted: the newer CRLs there list revocations the restored store has lost), and the
 *    staged ones take their place. A restore killed during that swap leaves its before-restore-<time>/ marked
 *    (SWAP_MARKER); run again, the restore counts the files there as the target's (steps 3 and 5).
 *
 * What else is numbered, and why only CRL numbers move (issue 13 asks to check):
 * - certificate serials, OCSP signing certificate serials: 128 random bits (pki/serial.ts), never sequential;
 *   the store's primary key refuses a repeat all the same. Nothing to move.
 * - verifier ids, notice ids from outside: random or the registry's; counter notice ids are a keyed function of
 *   (resident, sequence) (registry/counter.ts counterNoticeId; the key is in the store's meta, which the backup
 *   holds) and per-resident notice sequences must stay consecutive —
 *   the CA side holds a notice until the one before it arrives, so jumping a sequence would hold every later
 *   notice forever. They go back with the store: the registry and CA sides of one store regress together; a CA
 *   side in another store that already has a sequence refuses the repeat (ERR_NOTICE_STALE / ERR_NOTICE_CONFLICT)
 *   instead of applying a different notice under it. Guarded, not moved.
 * - registry outbox ids, verifier fetch / disclosure ids: internal row order, never shown outside. Not moved.
 * - liveness-check ids (`status_checks.id`): a verifier's paging cursor (GET /v1/status/history). Ids given out
 *   after the backup came again, and a verifier paging from a cursor past them would never see those checks. So
 *   they move on as CRL numbers do (Store.skipStatusCheckIds), past the larger of what can be known and what can
 *   be bounded: the next id of the store being replaced, when it can be read, and the backup's next id plus
 *   MIN_STATUS_CHECK_GAP + elapsed seconds × MAX_STATUS_CHECKS_PER_SECOND (statusCheckIdGap). Ids are JSON
 *   numbers, exact up to 2^53: a year-old backup costs 3 × 10^13 of them, 0.4 % of that room.
 */
import { X509Certificate, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { JpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { BRIDGE_ID, parseStateArlNumber } from "../ca/bridge-id.js";
import { activeGeneration, caGeneration, caId, nextFreeGeneration, parseCaId } from "../ca/ids.js";
import { writeFileAtomic } from "../store/files.js";
import { holdStagingDir, sweepStagingDirs } from "../store/staging-dir.js";
import { ownerTag, syncDir } from "../store/staging.js";
import { MAX_CRL_NUMBER, type CaRecord, type CarriedRevocation, type RetiredCaIdRecord, type Store } from "../store/types.js";
import { checkInputDir } from "../workspace/paths.js";
import { workspacePaths } from "../workspace/workspace.js";
import { BACKED_UP_FILES, BACKED_UP_TREES, STORE_FILES, copyHashed, writeFailure } from "./backup.js";
import { decodeEntries } from "../profile/crl-entry.js";
import { crlNumberGap, listedRevocations, publishedCrlNumbers, type ListedRevocation } from "./crl-numbers.js";
import { authenticateBackup, verifyBackup, type BackupManifest } from "./manifest.js";

/** Liveness-check ids moved on by a restore, at least this many past the backup's next id. */
export const MIN_STATUS_CHECK_GAP = 1_000_000;
/**
 * A rate of liveness checks no workspace reaches (the in-process rate measured on 2 cores is ≈ 20,000 items a
 * second): the bound on the ids handed out between the backup and the restore.
 */
export const MAX_STATUS_CHECKS_PER_SECOND = 1_000_000;

/** How far past the backup's next liveness-check id a restore moves, for a backup taken `elapsedMs` ago (a clock behind it counts as no time). */
export function statusCheckIdGap(elapsedMs: number): number {
  return MIN_STATUS_CHECK_GAP + Math.max(0, Math.ceil(elapsedMs / 1000)) * MAX_STATUS_CHECKS_PER_SECOND;
}

/** How a restore moved the liveness-check ids (a verifier's paging cursor). */
export interface RestoredStatusCheckIds {
  /** the next id in the backup's store */
  readonly atBackup: number;
  /** the next id of the store the restore replaced, when it had one that could be read */
  readonly replaced: number | undefined;
  /** the id the next liveness check gets */
  readonly next: number;
}

export interface RestoreProgress {
  readonly phase: "verify" | "files" | "store" | "numbers" | "swap";
  /** phase "swap": how many files and trees were moved so far (reported before each move, from 0) */
  readonly moved?: number;
}

/**
 * The file in before-restore-<time>/ that says its restore did not finish swapping: the target's files are
 * (partly) there and not in the workspace. Written before the first move, removed after the last.
 */
export const SWAP_MARKER = ".restore-incomplete";

export interface RestoreOptions {
  /** the backup directory */
  readonly source: string;
  /** the workspace to restore into (made when missing) */
  readonly workspaceDir: string;
  /** a PostgreSQL backup's target database (the CLI: JPKI_STORE) */
  readonly storeUrl?: string;
  /** replace a live workspace (and a PostgreSQL database's tables) */
  readonly force?: boolean;
  readonly clock?: Clock;
  /** a CRL number gap the operator asks for, used when larger than the computed one */
  readonly crlGap?: bigint;
  readonly onProgress?: (p: RestoreProgress) => void;
  /** the CA passphrase the backup was taken with: its manifest's authentication is checked (manifest.ts authenticateBackup) */
  readonly passphrase?: string;
  /** with a passphrase, restore a backup whose manifest is not authenticated (one taken without the passphrase) */
  readonly acceptUnauthenticated?: boolean;
}

/** How one CA's CRL numbering moved. */
export interface RestoredCrlNumbering {
  readonly caId: string;
  /** the highest number the backup's store held (any scope), if any */
  readonly highestAtBackup: string | undefined;
  /** the highest number known anywhere: the backup's store, its CRL files, the target's previous CRL files */
  readonly highestKnown: string;
  /** the number the next CRL of any scope gets */
  readonly next: string;
}

export interface RestoreReport {
  readonly source: string;
  readonly workspace: string;
  readonly store: BackupManifest["store"];
  /** whether the manifest was authenticated under the passphrase given (false: checked by its hashes only) */
  readonly authenticated: boolean;
  readonly takenAt: string;
  readonly restoredAt: string;
  /** the safety gap the numbering moved past (decimal) */
  readonly crlGap: string;
  readonly crlNumbers: readonly RestoredCrlNumbering[];
  /** CAs whose CRL files the target published but the backup does not know (made after the backup): their ids must not be made again */
  readonly unknownCas: readonly string[];
  /**
   * CA ids the backup has no CA of, retired in the restored store (Store.retireCaIds) so that no CA is made under
   * them again (ca/free-ids.ts): the unknownCas that are CA ids ("crls"), the CAs of the store the restore
   * replaced ("store"), and the ids that store had retired ("retired"; a second restore from the same backup
   * finds no CRL file of them any more: the first moved them to before-restore-<time>/). `next` is the id the
   * next `jpki ca rollover` (or, with no CA of that prefecture and purpose left, `jpki ca init`) of that prefecture
   * and purpose makes, passing over the retired ones.
   */
  readonly retiredCaIds: ReadonlyArray<{ readonly id: string; readonly why: "crls" | "store" | "retired"; readonly next: string; readonly by: "rollover" | "init" }>;
  /** CRL files whose numbers could not be read (the time gap covers them) */
  readonly unreadableCrlFiles: readonly string[];
  /**
   * Certificates the target's previous CRLs listed as revoked and the restored store held unrevoked (revoked
   * after the backup): revoked again, with the date and reason the CRL gave, source "restore". A revocation is
   * never undone by a restore.
   */
  readonly reRevoked: ReadonlyArray<{ readonly caId: string; readonly serial: string; readonly reason: number }>;
  /**
   * Serials the target's previous CRLs listed as revoked that the restored store does not know (issued after the
   * backup). Of a CA the store holds (`carriedOver`), the CRL entry — serial, date, reason — is carried over
   * into its revocation log (Store.carryRevocations): every later full CRL of the CA lists it, a delta on a base
   * from before the restore, and the partition CRL of its municipality (known from the partition CRL that listed
   * it, or the replaced store's certificate); OCSP answers
   * it revoked. Of a CA it does not hold, nothing can list it. Their
   * certificates must be dealt with by hand (reissued to their residents, whose registry does not know them).
   */
  readonly revokedUnknown: ReadonlyArray<{ readonly caId: string; readonly serial: string; readonly carriedOver: boolean }>;
  /** where the target's previous files went, when it had any */
  readonly previous: string | undefined;
  readonly statusCheckIds: RestoredStatusCheckIds;
  /**
   * The card administrative key, when the backup holds one: `restored` when put in place (the target had none);
   * else the target's was kept, and `backupCopy` names where the backup's went when the two differ.
   */
  readonly counterAdminKey?: { readonly restored: boolean; readonly backupCopy?: string };
}

/** What the audit log records of a restore. */
export interface RestoreAuditEvent {
  readonly action: "restore";
  readonly at: Date;
  readonly source: string;
  readonly takenAt: string;
  readonly crlGap: string;
  readonly crlNumbers: readonly RestoredCrlNumbering[];
  readonly reRevoked: RestoreReport["reRevoked"];
  readonly revokedUnknown: RestoreReport["revokedUnknown"];
  readonly statusCheckIds?: RestoredStatusCheckIds;
  readonly retiredCaIds?: readonly string[];
}

/**
 * The one place a restore is recorded in the audit log: called with the restored store, after its numbering
 * moved on and before it is put in place (SQLite) or used (PostgreSQL), so the record is part of what is restored.
 */
export async function recordRestore(store: Store, event: RestoreAuditEvent): Promise<void> {
  // Serials and CA ids only: the log never holds the four items (audit-log.ts). The re-revocations appended
  // their own records before this one (Store.revoke does, as every write does); this one says why.
  await store.appendAudit({
    action: "store.restore",
    subject: "",
    detail: {
      source: event.source,
      takenAt: event.takenAt,
      crlGap: event.crlGap,
      crlNumbers: event.crlNumbers.map((c) => ({ ca: c.caId, highestKnown: c.highestKnown, next: c.next })),
      reRevoked: event.reRevoked.length,
      revokedUnknown: event.revokedUnknown.map((r) => ({ ca: r.caId, serial: r.serial, carriedOver: r.carriedOver })),
      ...(event.retiredCaIds?.length ? { retiredCaIds: event.retiredCaIds } : {}),
      ...(event.statusCheckIds ? { statusCheckIds: { atBackup: event.statusCheckIds.atBackup, replaced: event.statusCheckIds.replaced ?? null, next: event.statusCheckIds.next } } : {}),
    },
  });
}

function max(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  return a === undefined ? b : b === undefined || a >= b ? a : b;
}

/**
 * Refuses a CA's (or the Bridge's) numbering that the gap would move past MAX_CRL_NUMBER: its next number is the
 * highest known + gap + 1. `backup` is the highest the backup holds (its store and files), `target` the highest
 * in the files of the workspace being replaced; the error names whichever is too high.
 */
function assertWithinCeiling(id: string, known: { backup?: bigint; target?: bigint }, gap: bigint, source: string, root: string): void {
  const ceiling = MAX_CRL_NUMBER - gap - 1n;
  const tooHigh = (v: bigint | undefined) => v !== undefined && v > ceiling;
  if (!tooHigh(known.backup) && !tooHigh(known.target)) return;
  const inBackup = tooHigh(known.backup);
  const where = inBackup ? `the backup ${source}` : `the CRL files of ${root}`;
  const file = id === BRIDGE_ID ? (inBackup ? "workspace/bridge/state.json or workspace/arl/bridge.crl" : "arl/bridge.crl") : `the CRLs of ${id}`;
  throw new JpkiError(
    inBackup ? "ERR_BACKUP_CORRUPT" : "ERR_WORKSPACE_CORRUPT",
    `${where} numbers ${id === BRIDGE_ID ? "the Bridge's ARLs" : `the CRLs of CA ${id}`} up to ${max(known.backup, known.target)} (${file}): moved on by the safety gap (${gap}) that would pass ${MAX_CRL_NUMBER}, the most a store keeps. Only an altered file holds a number that high; nothing was restored`,
    { details: { caId: id } },
  );
}

function ownerDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/**
 * A new before-restore-<time>/ directory. Two restores in one second (a restore run again at once after it
 * failed) would otherwise share one: rename() silently replaced the first one's config.json and failed with
 * ENOTEMPTY on its ca/, half-way through the swap. Found by a helper.
 */
function previousDir(root: string, at: Date): string {
  for (let i = 1; ; i++) {
    const p = join(root, `before-restore-${stamp(at)}${i > 1 ? `-${i}` : ""}`);
    try {
      mkdirSync(p, { mode: 0o700 });
      return p;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

/**
 * A restore's staging directory in the workspace root: `.restore-<pid>~@<namespace>-<random>` (staging.ts's
 * ownerTag), or an earlier version's `.restore-<pid>-<random>` (namespace unknown). The ~@ keeps an earlier
 * version's sweep, which read the pid alone, off this version's directories during a rolling upgrade.
 */
const STAGE = /^\.restore-(\d+)(?:~@([0-9a-f]{16}))?-[0-9a-f]+$/;

/**
 * Removes the staging directories in the workspace `root` that no restore is using any more (store/staging-dir.ts's
 * sweep, by staging.ts's one rule): each holds a whole copy of the store. Returns the names removed.
 */
export function sweepStaleStages(root: string, opts: { readonly now?: number; readonly staleMs?: number } = {}): string[] {
  return sweepStagingDirs(root, STAGE, opts);
}

/** `<ca>/<serial>` of every entry the CAs' revocation logs hold, expired or not (what their full CRLs list). */
async function loggedSerials(store: Store, caIds: ReadonlySet<string>): Promise<Set<string>> {
  const out = new Set<string>();
  for (const caId of caIds) {
    for await (const chunk of store.crlEntries(caId, { expiredBefore: new Date(0) })) for (const e of decodeEntries(chunk.der)) out.add(`${caId}/${e.serial}`);
  }
  return out;
}

/** The before-restore-<time>/ directories of restores killed while they swapped the files (SWAP_MARKER). */
function interruptedSwaps(root: string): string[] {
  return previousRestores(root).filter((d) => existsSync(join(d, SWAP_MARKER)));
}

/** Every before-restore-<time>/ directory, oldest first. */
function previousRestores(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith("before-restore-"))
    .sort()
    .map((n) => join(root, n));
}

/** Whether `id` is a CA id as ca/ids.ts spells it (a stray file name under crl/ is none). */
function canonicalCaId(id: string): boolean {
  try {
    const p = parseCaId(id);
    return caId(p.prefectureCode, p.purpose, p.generation) === id;
  } catch {
    return false;
  }
}

/** What the next rollover (or init) of each retired id's prefecture and purpose makes, passing over every taken id. */
function nextAfterRetired(cas: readonly CaRecord[], takenIds: readonly string[], retired: ReadonlyArray<{ readonly id: string; readonly why: RestoreReport["retiredCaIds"][number]["why"] }>): RestoreReport["retiredCaIds"] {
  const taken = new Set(takenIds);
  return retired.map(({ id, why }) => {
    const { prefectureCode, purpose } = parseCaId(id);
    const active = activeGeneration(cas, prefectureCode, purpose);
    const next = nextFreeGeneration(prefectureCode, purpose, active ? caGeneration(active.id) + 1 : 1, (x) => (taken.has(x) ? "taken" : undefined));
    return { id, why, next: next.id, by: active ? ("rollover" as const) : ("init" as const) };
  });
}

/** Restores the backup at `opts.source` into `opts.workspaceDir` (see the header). */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreReport> {
  const clock = opts.clock ?? systemClock;
  // As every command's input directory: a file or a FIFO was "not found", a path under /proc a corrupt backup.
  const source = checkInputDir(opts.source, "backup");
  opts.onProgress?.({ phase: "verify" });
  const manifest = verifyBackup(source);
  const { authenticated } = await authenticateBackup(source, manifest, { ...(opts.passphrase !== undefined ? { passphrase: opts.passphrase } : {}), acceptUnauthenticated: Boolean(opts.acceptUnauthenticated) });
  const current = manifest.store === "sqlite" ? (await import("../store/sqlite.js")).SCHEMA_VERSION : (await import("../store/postgres.js")).PG_SCHEMA_VERSION;
  if (manifest.schemaVersion > current) {
    throw new JpkiError("ERR_BACKUP_UNSUPPORTED", `the backup's ${manifest.store} store has schema version ${manifest.schemaVersion}, newer than this jpki's (${current}; it was made by jpki ${manifest.jpkiVersion}): restore it with that jpki or a newer one`);
  }
  const paths = workspacePaths(opts.workspaceDir);
  const pg = manifest.store === "postgres" ? await import("./postgres-tools.js") : undefined;
  if (pg && !opts.storeUrl) {
    throw new JpkiError("ERR_USAGE", "the backup is of a PostgreSQL store: set JPKI_STORE to the database to restore it into (an empty one, or pass --force to replace what it holds)");
  }
  const liveFiles = existsSync(paths.config) || existsSync(paths.db);
  const target = pg ? await pg.postgresRestoreTarget(opts.storeUrl!) : undefined;
  const liveDatabase = target?.hasRecords ?? false;
  if ((liveFiles || liveDatabase) && !opts.force) {
    const what = liveFiles ? `${paths.root} holds a workspace` : "the PostgreSQL database JPKI_STORE names holds tables";
    // A restore killed while it swapped the files left a workspace half of each: said so, since the operator who
    // reruns it is finishing that restore, not replacing a workspace in use.
    const killed = interruptedSwaps(paths.root).map((d) => basename(d));
    const why = killed.length ? ` (a restore into it was interrupted while it moved the files: ${killed.join(", ")} holds what it moved aside; running the restore again with --force finishes it)` : "";
    throw new JpkiError("ERR_BACKUP_TARGET_LIVE", `${what}${why}: stop every jpki process on it and pass --force to replace it with the backup (its files are kept in before-restore-<time>/)`, {
      details: { path: paths.root },
    });
  }

  // --force replaces a workspace, never one in use: a jpki serve still running on it went on with the store
  // moved aside — issuing and revoking into before-restore-<time>/, publishing that store's lower CRL numbers
  // into the restored crl/ (found by a helper). PostgreSQL: see the header (stop every process first).
  if (!pg && liveFiles && (await import("../store/sqlite.js")).SqliteStore.openElsewhere(paths.db)) {
    throw new JpkiError("ERR_WORKSPACE_LOCKED", `the store of ${paths.root} is open in another process (jpki serve, watch, or a command still running): stop every jpki process on it, then restore; nothing was changed`, {
      details: { path: paths.db },
    });
  }
  // The same on PostgreSQL: a store in use is one another client is connected to. (Checked here, once: a process
  // that connects after this point is not kept out by this check, but the restored store refuses it until the
  // restore has moved its numbering on: restorePendingStatement.)
  if (liveDatabase && target!.otherSessions.length) {
    const n = target!.otherSessions.length;
    const shown = target!.otherSessions.slice(0, 5).join(", ") + (n > 5 ? `, and ${n - 5} more` : "");
    throw new JpkiError(
      "ERR_WORKSPACE_LOCKED",
      `the PostgreSQL database JPKI_STORE names has ${n} other client${n === 1 ? "" : "s"} connected (${shown}): stop every jpki process on it (on every host; "jpki serve HOST pid PID" names its host), close other sessions (psql), then restore; nothing was changed. Where they come from: SELECT pid, usename, application_name, client_addr FROM pg_stat_activity WHERE datname = current_database(), as a superuser (another role's address shows only to those)`,
      { details: { sessions: n } },
    );
  }
  // Read before anything moves: what the target published last may be newer than anything in the backup.
  // A restore that died while it swapped the files left part of the target in before-restore-<time>/ (marked
  // SWAP_MARKER): those files are the target's as much as the ones still in place. Found by a helper: run
  // again after a kill mid-swap, the restore no longer saw the target's CRLs, and un-revoked what they listed.
  const interrupted = interruptedSwaps(paths.root);
  const targetNumbers = publishedCrlNumbers(paths.root);
  const targetRevocations = listedRevocations(paths.root);
  for (const d of interrupted) {
    const n = publishedCrlNumbers(d);
    for (const [ca, v] of n.highest) if (v > (targetNumbers.highest.get(ca) ?? -1n)) targetNumbers.highest.set(ca, v);
    targetNumbers.unreadable.push(...n.unreadable.map((f) => `${d.slice(paths.root.length + 1)}/${f}`));
  }
  // The revocations of every earlier restore's directory too, finished or not: a restore run again before any
  // CRL was generated (crl/ holds the backup's files then) replaced the store that carried what the moved CRLs
  // listed, and nothing listed it any more. Found in review. (Their numbers the time gap covers: published
  // before the earlier restore, which moved past them.) A revocation is never undone, so an old file is no risk.
  for (const d of [...interrupted, ...previousRestores(paths.root).filter((d) => !interrupted.includes(d)).reverse()]) {
    for (const [k, v] of listedRevocations(d)) {
      const known = targetRevocations.get(k);
      if (!known) targetRevocations.set(k, v);
      else if (known.municipality === undefined && v.municipality !== undefined) targetRevocations.set(k, { ...known, municipality: v.municipality });
    }
  }
  // The liveness-check ids of the store being replaced, read only, while it is still there (moved aside, or
  // dropped by pg_restore, below): ids it handed out after the backup must not come again.
  let replacedStatusCheckNext = pg
    ? liveDatabase
      ? await (await import("../store/postgres.js")).PostgresStore.nextStatusCheckIdAt(opts.storeUrl!)
      : undefined
    : (await import("../store/sqlite.js")).SqliteStore.nextStatusCheckIdOf(paths.db);
  // And its CA ids, held and retired: none of them is made again (ca/free-ids.ts), and the restored store learns them.
  const replacedCaIds: Array<{ readonly cas: readonly string[]; readonly retired: readonly RetiredCaIdRecord[] } | undefined> = [];
  if (pg && liveDatabase) replacedCaIds.push(await (await import("../store/postgres.js")).PostgresStore.caIdsAt(opts.storeUrl!));
  if (!pg) {
    const { SqliteStore } = await import("../store/sqlite.js");
    for (const p of [paths.db, ...interrupted.map((d) => join(d, "jpki.db"))]) replacedCaIds.push(SqliteStore.caIdsOf(p));
    for (const d of interrupted) {
      const n = SqliteStore.nextStatusCheckIdOf(join(d, "jpki.db"));
      if (n !== undefined && n > (replacedStatusCheckNext ?? 0)) replacedStatusCheckNext = n;
    }
  }
  ownerDir(paths.root);
  // A staging directory of a restore that was killed holds a whole copy of the store: removed once nobody uses it.
  sweepStaleStages(paths.root);
  const stage = join(paths.root, `.restore-${ownerTag()}-${randomBytes(4).toString("hex")}`);
  ownerDir(stage);
  const release = holdStagingDir(stage);
  try {
    opts.onProgress?.({ phase: "files" });
    // Copied and hashed again: a backup changed since it was verified is refused all the same.
    for (const f of manifest.files) {
      const parts = f.path.split("/");
      if (parts[0] !== "workspace" && f.path !== STORE_FILES.sqlite) continue;
      const to = parts[0] === "workspace" ? join(stage, "ws", ...parts.slice(1)) : join(stage, "jpki.db");
      const r = copyHashed(join(source, ...parts), to);
      if (!r || r.sha256 !== f.sha256 || r.size !== f.size) {
        throw new JpkiError("ERR_BACKUP_CORRUPT", `${f.path} in the backup ${source} changed while it was restored: nothing was restored`, { details: { file: f.path } });
      }
    }
    if (!existsSync(join(stage, "ws", "config.json"))) {
      throw new JpkiError("ERR_BACKUP_CORRUPT", `the backup ${source} holds no workspace/config.json: nothing was restored`, { details: { file: "workspace/config.json" } });
    }
    const stagedNumbers = publishedCrlNumbers(join(stage, "ws"));
    // Revocations published after the backup: on the target's CRLs, not on the backup's (those the store has).
    const backupRevocations = listedRevocations(join(stage, "ws"));
    const newer: ListedRevocation[] = [...targetRevocations].filter(([k]) => !backupRevocations.has(k)).map(([, v]) => v);

    const restoredAt = clock.now();
    const computed = crlNumberGap(restoredAt.getTime() - Date.parse(manifest.takenAt));
    const gap = opts.crlGap !== undefined && opts.crlGap > computed ? opts.crlGap : computed;
    const atBackup = new Map<string, bigint>();
    for (const c of manifest.crlNumbers) {
      const v = BigInt(c.highest);
      if (v > (atBackup.get(c.caId) ?? -1n)) atBackup.set(c.caId, v);
    }

    // Every sequence the restore moves on must stay within the stores' ceiling past the gap. Checked before anything
    // changes (on PostgreSQL the database is replaced before the numbers are moved): only an altered file or
    // backup holds a number that high, and moving past it wrote a Bridge state every later 'ca bridge' refused, or
    // failed a CA's move as a store error after the database was replaced. The target's files of a CA the backup
    // does not know count too (which CAs the store knows is read only once it is restored): move such a file aside.
    for (const id of new Set([...atBackup.keys(), ...stagedNumbers.highest.keys(), ...targetNumbers.highest.keys()])) {
      assertWithinCeiling(id, { backup: max(atBackup.get(id), stagedNumbers.highest.get(id)), target: targetNumbers.highest.get(id) }, gap, source, paths.root);
    }

    // The Bridge CA numbers its ARL in its own state file, not the store (ca/bridge.ts): moved the same way.
    let bridge: RestoredCrlNumbering | undefined;
    const bridgeState = join(stage, "ws", "bridge", "state.json");
    if (existsSync(bridgeState)) {
      const state = JSON.parse(readFileSync(bridgeState, "utf8")) as { arlNumber?: unknown };
      const atBackupArl = parseStateArlNumber(state.arlNumber);
      if (atBackupArl === undefined) {
        throw new JpkiError("ERR_BACKUP_CORRUPT", `workspace/bridge/state.json in the backup ${source} has no ARL number (decimal digits, at most ${MAX_CRL_NUMBER}): nothing was restored`, {
          details: { file: "workspace/bridge/state.json" },
        });
      }
      assertWithinCeiling(BRIDGE_ID, { backup: max(atBackupArl, stagedNumbers.highest.get(BRIDGE_ID)), target: targetNumbers.highest.get(BRIDGE_ID) }, gap, source, paths.root);
      const highest = [atBackupArl, stagedNumbers.highest.get(BRIDGE_ID), targetNumbers.highest.get(BRIDGE_ID)].reduce<bigint>((m, v) => (v !== undefined && v > m ? v : m), 0n);
      // arlNumber is the last number reserved: the next ARL takes arlNumber + 1
      writeFileAtomic(bridgeState, `${JSON.stringify({ ...state, arlNumber: (highest + gap).toString() }, null, 1)}\n`);
      bridge = { caId: BRIDGE_ID, highestAtBackup: atBackupArl.toString(), highestKnown: highest.toString(), next: (highest + gap + 1n).toString() };
    }

    // A revocation the target published on its full CRL only (`crl generate` without --partitions, or a restore
    // before the schedule reached its partition) names no partition, and carried over without one, no partition
    // CRL ever listed it: a verifier following the certificate's distribution point found it good. Found by a
    // helper (kill/restore drills). The store being replaced issued the certificate and knows its municipality:
    // read it there while it is still in place (SQLite: also the stores earlier restores moved aside).
    const unplaced = newer.filter((r) => r.municipality === undefined).map((r) => r.serial);
    const placed = new Map<string, string>();
    if (unplaced.length) {
      const found: Array<Map<string, string>> = [];
      if (pg) {
        if (liveDatabase) found.push(await (await import("../store/postgres.js")).PostgresStore.certificateMunicipalitiesAt(opts.storeUrl!, unplaced));
      } else {
        const { SqliteStore } = await import("../store/sqlite.js");
        for (const p of [paths.db, ...previousRestores(paths.root).reverse().map((d) => join(d, "jpki.db"))]) found.push(SqliteStore.certificateMunicipalitiesOf(p, unplaced));
      }
      for (const m of found) for (const [k, v] of m) if (!placed.has(k) && /^\d{6}$/.test(v)) placed.set(k, v);
    }

    opts.onProgress?.({ phase: "store" });
    let store: Store;
    let finish: (() => Promise<void>) | undefined;
    if (pg) {
      const { PostgresStore } = await import("../store/postgres.js");
      // The tables and the mark that this restore is not done with them commit together: whatever stops the
      // restore from here on, no jpki process numbers a CRL from the backup's sequence (RFC 5280 §5.2.3).
      // The partitions read from the database replaced go in the mark too: a restore stopped after this commit and
      // run again finds the backup's tables there, which lack the certificates (PostgresStore.certificateMunicipalitiesAt).
      const finalSql = PostgresStore.restorePendingStatement(JSON.stringify({ source, startedAt: restoredAt.toISOString(), ...(placed.size ? { partitions: Object.fromEntries(placed) } : {}) }));
      const dump = manifest.files.find((f) => f.path === STORE_FILES.postgres);
      if (!dump) throw new JpkiError("ERR_BACKUP_CORRUPT", `the backup ${source} lists no ${STORE_FILES.postgres}: nothing was restored`, { details: { file: STORE_FILES.postgres } });
      await pg.restorePostgres(opts.storeUrl!, join(source, ...STORE_FILES.postgres.split("/")), { clean: liveDatabase, finalSql, expect: { sha256: dump.sha256, size: dump.size, name: dump.path } });
      const restored = await PostgresStore.open(opts.storeUrl!, { restoring: true });
      store = restored;
      finish = () => restored.finishRestore();
    } else {
      const { SqliteStore } = await import("../store/sqlite.js");
      store = SqliteStore.open(join(stage, "jpki.db"), { create: false });
    }
    const crlNumbers: RestoredCrlNumbering[] = [];
    const reRevoked: Array<{ caId: string; serial: string; reason: number }> = [];
    const revokedUnknown: Array<{ caId: string; serial: string; carriedOver: boolean }> = [];
    let known: Set<string>;
    let statusCheckIds: RestoredStatusCheckIds;
    let retiredCaIds: RestoreReport["retiredCaIds"] = [];
    try {
      opts.onProgress?.({ phase: "numbers" });
      const cas = await store.listCas();
      known = new Set(cas.map((c) => c.id));
      const caNotAfter = new Map(cas.map((c) => [c.id, new Date(new X509Certificate(c.certificateDer).validTo)]));
      for (const ca of cas) {
        const highest = [atBackup.get(ca.id), stagedNumbers.highest.get(ca.id), targetNumbers.highest.get(ca.id)].reduce<bigint>((m, v) => (v !== undefined && v > m ? v : m), 0n);
        const moved = await store.skipCrlNumbers(ca.id, highest + gap + 1n, restoredAt);
        // The restored crl/ and arl/ files carry the backup's numbers, below those verifiers have seen (a
        // provider following them refuses a number that goes back: ERR_PUBLIC_CRL_ROLLBACK). Every scope is
        // made due, so the schedule or 'crl generate' publishes each anew above the gap. Found by a helper:
        // nothing was due after a restore, and partitions kept their old numbers until their nextUpdate neared.
        await store.markCrlsDue(ca.id);
        crlNumbers.push({ caId: ca.id, highestAtBackup: atBackup.get(ca.id)?.toString(), highestKnown: highest.toString(), next: moved.next.toString() });
      }
      if (bridge) crlNumbers.push(bridge);
      const carried: CarriedRevocation[] = [];
      for (const r of newer) {
        const cert = known.has(r.caId) ? await store.getCertificate(r.serial) : undefined;
        if (!cert && caNotAfter.has(r.caId)) {
          // Issued after the backup: the store has no row to revoke, but a verifier has seen the entry. It goes
          // on as the CRL listed it, until its CA's notAfter (no certificate of the CA outlives it:
          // ca/validity.ts), since the certificate's own is not known.
          // Its partition too, when a partition CRL listed it (a verifier following the certificate's
          // distribution point reads that one, not the full CRL).
          const municipality = r.municipality ?? placed.get(`${r.caId}/${r.serial}`);
          carried.push({ caId: r.caId, serial: r.serial, revokedAt: r.revokedAt, reason: r.reason, notAfter: caNotAfter.get(r.caId)!, ...(municipality !== undefined ? { municipality } : {}) });
          revokedUnknown.push({ caId: r.caId, serial: r.serial, carriedOver: true });
        } else if (!cert || cert.caId !== r.caId) revokedUnknown.push({ caId: r.caId, serial: r.serial, carriedOver: false });
        else if (!cert.revocation) {
          await store.revoke({ serial: r.serial, revokedAt: r.revokedAt, reason: r.reason, source: "restore" });
          reRevoked.push({ caId: r.caId, serial: r.serial, reason: r.reason });
        }
      }
      // Not twice: a backup taken after an earlier restore holds that restore's carried entries in its store while
      // its crl/ (the files of the backup then restored) does not list them, so they come back as "newer". Carried
      // again, every later CRL listed the serial twice (crlEntries lists each revocation once; RFC 5280 readers,
      // crl-index.ts among them, refuse a CRL that does not).
      const inLog = await loggedSerials(store, new Set(carried.map((c) => c.caId)));
      const toCarry = carried.filter((c) => !inLog.has(`${c.caId}/${c.serial}`));
      if (toCarry.length) await store.carryRevocations(toCarry);
      const idsAtBackup = await store.nextStatusCheckId();
      const wanted = Math.max(idsAtBackup + statusCheckIdGap(restoredAt.getTime() - Date.parse(manifest.takenAt)), replacedStatusCheckNext ?? 0);
      statusCheckIds = { atBackup: idsAtBackup, replaced: replacedStatusCheckNext, next: (await store.skipStatusCheckIds(wanted)).next };
      // CRLs the target published under a CA the backup does not hold (made after it): that id is retired, so
      // no later 'ca rollover' or 'ca init' makes a second CA under it that numbers CRLs from 1 again under the
      // same issuer name and URL (RFC 5280 §5.2.3). Found by an audit: the report asked the operator to remember.
      // The replaced store's CAs and retired ids are retired too: a CA made after the backup may have issued
      // certificates naming its URLs with no CRL published yet, and a second restore from the same backup finds
      // no CRL file of an id the first one retired (it moved them to before-restore-<time>/).
      const already = new Set((await store.listRetiredCaIds()).map((r) => r.id));
      const retire = new Map<string, { record: RetiredCaIdRecord; why: RestoreReport["retiredCaIds"][number]["why"] }>();
      const add = (record: RetiredCaIdRecord, why: RestoreReport["retiredCaIds"][number]["why"]) => {
        if (!known.has(record.id) && !already.has(record.id) && !retire.has(record.id) && canonicalCaId(record.id)) retire.set(record.id, { record, why });
      };
      const restoredNote = `not in the backup ${source} (taken ${manifest.takenAt}) restored ${restoredAt.toISOString()}`;
      for (const id of [...new Set([...targetNumbers.highest.keys(), ...stagedNumbers.highest.keys()])].sort()) {
        add({ id, retiredAt: restoredAt, reason: `CRLs up to #${max(targetNumbers.highest.get(id), stagedNumbers.highest.get(id))} were published under it by a CA ${restoredNote}` }, "crls");
      }
      for (const r of replacedCaIds) for (const id of r?.cas ?? []) add({ id, retiredAt: restoredAt, reason: `a CA of the store the restore replaced, ${restoredNote}` }, "store");
      for (const r of replacedCaIds) for (const x of r?.retired ?? []) add(x, "retired");
      const retired = [...retire.values()].sort((x, y) => (x.record.id < y.record.id ? -1 : 1));
      await store.retireCaIds(retired.map((r) => r.record));
      retiredCaIds = nextAfterRetired(cas, [...known, ...already, ...retire.keys()], retired.map((r) => ({ id: r.record.id, why: r.why })));
      await recordRestore(store, { action: "restore", at: restoredAt, source, takenAt: manifest.takenAt, crlGap: gap.toString(), crlNumbers, reRevoked, revokedUnknown, statusCheckIds, retiredCaIds: retired.map((r) => r.record.id) });
      // Last: the store's numbering is past every number known and bounded, the revocations made since are back.
      await finish?.();
    } finally {
      await store.close();
    }

    let moved = 0;
    const move = (from: string, to: string) => {
      opts.onProgress?.({ phase: "swap", moved: moved++ });
      renameSync(from, to);
    };
    let previous: string | undefined;
    const replaced = ["config.json", ...BACKED_UP_TREES, "jpki.db", "jpki.db-wal", "jpki.db-shm"].filter((n) => existsSync(join(paths.root, n)));
    // Marked before the first move and unmarked after the last: a restore killed in between leaves the target's
    // files there, and the next restore reads them (interruptedSwaps).
    const marker = replaced.length ? join((previous = previousDir(paths.root, restoredAt)), SWAP_MARKER) : undefined;
    if (marker) {
      writeFileAtomic(marker, `${JSON.stringify({ pid: process.pid, source, startedAt: restoredAt.toISOString() })}\n`);
      syncDir(paths.root);
    }
    for (const n of replaced) move(join(paths.root, n), join(previous!, n));
    for (const n of ["config.json", ...BACKED_UP_TREES]) if (existsSync(join(stage, "ws", n))) move(join(stage, "ws", n), join(paths.root, n));
    // The card administrative key (backup.ts): put back where the target has none (a new disk). One the target has
    // stays, never moved aside: cards personalised after the backup are locked under it, and `card issue` makes
    // the key once, so it is the backup's too — unless the backup is another workspace's or the key was made
    // again; then the backup's is kept beside it, for the cards issued under that one (reported).
    let counterAdminKey: RestoreReport["counterAdminKey"];
    for (const n of BACKED_UP_FILES) {
      const staged = join(stage, "ws", n);
      if (!existsSync(staged)) continue;
      const at = join(paths.root, n);
      if (!existsSync(at)) {
        move(staged, at);
        counterAdminKey = { restored: true };
      } else if (!readFileSync(staged).equals(readFileSync(at))) {
        const aside = `${at}.from-backup-${stamp(restoredAt)}`;
        move(staged, aside);
        counterAdminKey = { restored: false, backupCopy: aside };
      } else counterAdminKey = { restored: false };
    }
    if (!pg) {
      // A clean close leaves no -wal; should one be there, it belongs with its database.
      for (const n of ["jpki.db-wal", "jpki.db-shm"]) if (existsSync(join(stage, n))) move(join(stage, n), join(paths.root, n));
      move(join(stage, "jpki.db"), paths.db);
    }
    for (const d of ["ca", "crl", "arl", "certs", "rejects"]) ownerDir(join(paths.root, d));
    syncDir(paths.root);
    // The restored store moved past everything the interrupted swaps' files held, and re-revoked what they listed.
    for (const f of [...(marker ? [marker] : []), ...interrupted.map((d) => join(d, SWAP_MARKER))]) rmSync(f, { force: true });
    syncDir(paths.root);
    const unknownCas = [...new Set([...targetNumbers.highest.keys(), ...stagedNumbers.highest.keys()])].filter((id) => !known.has(id) && !(id === BRIDGE_ID && bridge)).sort();
    return {
      source,
      workspace: paths.root,
      store: manifest.store,
      authenticated,
      takenAt: manifest.takenAt,
      restoredAt: restoredAt.toISOString(),
      crlGap: gap.toString(),
      crlNumbers,
      unknownCas,
      retiredCaIds,
      reRevoked,
      revokedUnknown,
      unreadableCrlFiles: [...targetNumbers.unreadable, ...stagedNumbers.unreadable.map((f) => `(backup) ${f}`)],
      previous,
      statusCheckIds: statusCheckIds!,
      ...(counterAdminKey ? { counterAdminKey } : {}),
    };
  } catch (e) {
    // Staging fills the workspace's filesystem first: the target is left as it was.
    throw writeFailure(e, `the restore of ${source}`, paths.root) ?? e;
  } finally {
    rmSync(stage, { recursive: true, force: true });
    release();
  }
}
