/**
 * Store upgrades that fill a new column for every row of a large table (SQLite versions 23 and 29, PostgreSQL
 * version 26): done in pages that commit on their own rather than in the one transaction of the upgrade. At a
 * national store (200M certificates) one transaction held the store locked ≈ 1.5 h, grew SQLite's WAL by
 * ≈ 100 GB (measured at 200,000 certificates: 3.6–6.0 s and 95 MB), and a process killed near the end started
 * the whole fill over. In pages: each commits its rows together with how far the fill has come (a mark in the
 * store's meta table), so a restart after a kill -9 goes on from the last committed page; SQLite's WAL is
 * checkpointed between pages. The schema version is recorded only by the transaction that finishes the fill, so
 * no process takes a half-filled column for a complete one: one that opens the store meanwhile runs the upgrade
 * too — it waits for the lock the pages take, and goes on where they are (SQLite), or waits for the migration lock
 * and then finds the version reached (PostgreSQL) — or gets ERR_WORKSPACE_LOCKED saying an upgrade is in progress.
 */
import { JpkiError } from "../errors.js";

/** How far a fill has come, for a progress line. `total` is an estimate while rows are added meanwhile. */
export interface UpgradeProgress {
  /** what is being filled, for a person: "certified keys" */
  readonly what: string;
  readonly done: number;
  readonly total: number;
  /** "filling" after each page; "indexing" once filled, while the column's index is built; "done" once committed */
  readonly stage: "filling" | "indexing" | "done";
}

export interface UpgradeOptions {
  /** Called after each committed page of a fill, before its index is built, and once it is recorded done. */
  readonly onProgress?: (p: UpgradeProgress) => void;
  /**
   * @internal rows per page (FILL_PAGE_ROWS), and ids per page of PostgreSQL's disclosure log catch-up (its
   * DISCLOSURES_PER_PAGE); tests lower it to span many pages with few rows.
   */
  readonly pageRows?: number;
  /**
   * @internal test hook: called inside each page's transaction once its rows are written, before it commits, with
   * the page's number in this run of the fill (1, 2, …) and the schema version the fill leads to. A test kills the
   * process (or throws) here. PostgreSQL awaits a promise it returns; SQLite, whose open is synchronous, does not.
   */
  readonly inPage?: (page: number, version: number) => void | Promise<void>;
}

/**
 * Rows per page. A page of certificates (≈ 1.3 KB each) rewrites ≈ 3,000–4,000 table pages: ≈ 15 MB of WAL, a
 * fraction of a second of lock; the mark costs one meta row a page.
 */
export const FILL_PAGE_ROWS = 10_000;

/** The rows per page `opts` asks for, checked. */
export function pageRowsOf(opts: UpgradeOptions | undefined): number {
  const n = opts?.pageRows ?? FILL_PAGE_ROWS;
  if (!Number.isSafeInteger(n) || n < 1) throw new JpkiError("ERR_USAGE", `pageRows must be a whole number of rows ≥ 1, not ${n}`);
  return n;
}

/** The meta key holding how far the fill of schema version `version` has come (removed when it is done). */
export function fillMarkKey(version: number): string {
  return `upgrade.${version}.fill`;
}

/** The error of a process that waited for another one's upgrade longer than the store's lock timeout. */
export function upgradeInProgress(from: number | undefined, to: number, cause: unknown): JpkiError {
  const versions = from === undefined ? `to schema version ${to}` : `from schema version ${from} to ${to}`;
  return new JpkiError(
    "ERR_WORKSPACE_LOCKED",
    `the store is being upgraded (${versions}) by another jpki process, or another process holds it: retry when that finishes`,
    { cause, details: { reason: "upgrade-in-progress" } },
  );
}
