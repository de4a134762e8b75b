/**
 * `jpki backup DEST` (issue 13, point 4): a consistent online backup of a workspace — its store, taken while
 * other processes go on issuing, ingesting and publishing, and its published files — with a manifest of hashes
 * (backup/manifest.ts).
 *
 * Layout of DEST (directories 0700, files 0600: the store holds the encrypted CA keys and personal data):
 *   manifest.json            what the backup is, and every other file with its size and SHA-256
 *   store/jpki.db            SQLite: a copy made with SQLite's online backup API (one consistent snapshot)
 *   store/jpki.pgdump        PostgreSQL: `pg_dump -Fc` of the store's database (backup/postgres-tools.ts)
 *   workspace/config.json    the workspace's configuration
 *   workspace/counter-admin.key  the municipality's administrative key for the counter's IC cards, when `jpki card
 *                            issue` made one: the only key that unblocks a card's PIN or renews it. Lost with the
 *                            disk, every card issued until then could never be unblocked or renewed again (and the
 *                            next `card issue` silently made a new key). Found by a helper: backups left it out.
 *   workspace/ca/…           CA certificates as published
 *   workspace/crl/…, arl/…   the published CRL tree: current files, history links, PEM copies
 *   workspace/bridge/…       the Bridge CA (ca/bridge.ts), when there is one: its encrypted key, its state (ARL
 *                            numbering, cross-certificates) and its exported certificates
 * Issued certificates written by the CLI (certs/), rejected input records (rejects/) and the counter's notice
 * spool (spool/) are not backed up: the store holds every certificate, rejects are the inputs' business, and
 * spooled notices describe registry changes made after whatever backup is restored (they stay in the workspace).
 *
 * Order: the store's snapshot first, then the files. A CRL published in between is in the files and not in the
 * store; never the reverse (a store that names a file the backup lacks). A restore then counts the files' CRL
 * numbers too (backup/crl-numbers.ts). The manifest records the highest CRL numbers the store's snapshot holds.
 *
 * Atomic: everything is written into a temporary sibling of DEST (`.DEST.partial-<pid>~@<namespace>-<random>`,
 * staging.ts's ownerTag), fsynced, and renamed to DEST only when the manifest is written; a crash leaves no
 * directory named DEST, so nothing that looks like a complete backup. What a killed backup left (a whole copy of
 * the store) is removed by the next backup into the same parent directory, by the rule of every staging directory
 * (store/staging-dir.ts): never a live backup's, here or in another container sharing the directory.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, constants, existsSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, realpathSync, renameSync, rmSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve, sep } from "node:path";
import { JpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { storeRetired } from "../store/retirement.js";
import { writeFailure } from "../store/files.js";
import { holdStagingDir, sweepStagingDirs } from "../store/staging-dir.js";
import { ownerTag, syncDir } from "../store/staging.js";
import { VERSION } from "../version.js";
import { checkOutputDir, refuseSpecial } from "../workspace/paths.js";
import { COUNTER_ADMIN_KEY_FILE, Workspace, workspacePaths } from "../workspace/workspace.js";
import { BACKUP_FORMAT, MANIFEST_NAME, hashFile, type BackupManifest, type ManifestCrlNumber, type ManifestFile } from "./manifest.js";
import { authenticateManifest } from "./authentication.js";
import { strongKeyWrapParams, unlockPrivateKey } from "../pki/keys.js";
import type { KeyWrapParams } from "../pki/key-wrap.js";

export const STORE_FILES = { sqlite: "store/jpki.db", postgres: "store/jpki.pgdump" } as const;
/** The workspace files a backup holds, relative to the workspace root: config.json and these trees. */
export const BACKED_UP_TREES = ["ca", "crl", "arl", "bridge"] as const;
/** The single files a backup holds besides config.json, when the workspace has them (relative to its root). */
export const BACKED_UP_FILES = [COUNTER_ADMIN_KEY_FILE] as const;

export interface BackupProgress {
  readonly phase: "store" | "files" | "manifest";
  /** files copied so far (phase "files") */
  readonly done: number;
}

export interface BackupOptions {
  readonly workspaceDir: string;
  /** the backup directory to create (must not exist; its parent must) */
  readonly dest: string;
  /** a PostgreSQL workspace's connection string */
  readonly storeUrl?: string;
  readonly clock?: Clock;
  readonly onProgress?: (p: BackupProgress) => void;
  /**
   * The CA passphrase: the manifest is then authenticated under it (backup/authentication.ts), after it was checked
   * to open one of the workspace's CA keys (ERR_PASSPHRASE_WRONG otherwise: a backup no restore could check).
   * Without it the manifest carries hashes only.
   */
  readonly passphrase?: string;
}

export interface BackupReport {
  readonly dest: string;
  readonly manifest: BackupManifest;
  readonly bytes: number;
  /** partial directories of killed backups removed from DEST's parent before this one began (names) */
  readonly swept: readonly string[];
}

/**
 * The passphrase opens a CA key of the workspace (one kept in software: a token's has none to try), so that a
 * backup is never authenticated under a mistyped passphrase no restore could check it with. Returns that key's
 * key-wrap parameters when they are the strong ones: the manifest's key is then derived from the KEK this check
 * derived (authentication.ts), not by a PBKDF2 of its own.
 */
async function assertOpensCaKey(ws: Workspace, passphrase: string): Promise<KeyWrapParams | undefined> {
  if (!passphrase) throw new JpkiError("ERR_PASSPHRASE_MISSING", "an empty passphrase authenticates nothing: give the CA passphrase, or none for a backup with hashes only");
  const probe = (await ws.store.listCas()).find((r) => !r.keyRef);
  if (!probe) return undefined;
  await unlockPrivateKey(probe.encryptedKeyPem, passphrase, `the key of CA ${probe.id} (the backup's manifest is authenticated under the CA passphrase)`);
  return strongKeyWrapParams(probe.encryptedKeyPem);
}

/**
 * A backup's partial directory: `.<DEST>.partial-<pid>~@<namespace>-<random>` (ownerTag), or an earlier version's
 * `.<DEST>.partial-<pid>-<random>`, whose namespace nobody can tell. The latter is removed only when its pid runs
 * nowhere here AND nothing in it was written for a day (staging-dir.ts): a pid-only name may be a live backup in
 * another container sharing the directory (its pid means nothing here), or a live one of an earlier version here
 * that touches nothing while pg_dump runs. Any DEST's: backups are named by date, so a killed one's name never recurs.
 */
const PARTIAL = /^\..+\.partial-(\d+)(?:~@([0-9a-f]{16}))?-[0-9a-f]{8}$/;

/** Removes the partial directories in `parent` that no backup is writing any more; returns their names. */
export function sweepStalePartials(parent: string, opts: { readonly now?: number; readonly staleMs?: number } = {}): string[] {
  return sweepStagingDirs(parent, PARTIAL, opts);
}

function ownerDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
}

/** Copies one file (0600, fsynced), hashing what it writes; undefined when the source vanished (a pruned history link). */
export function copyHashed(from: string, to: string): { size: number; sha256: string } | undefined {
  let src: number;
  try {
    // Non-blocking, judged by the descriptor: a FIFO at a copied name (counter-admin.key, config.json, a file
    // swapped in after the tree was listed) hung the backup for ever; a device was read without end.
    src = openSync(from, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    if (!fstatSync(src).isFile()) throw new JpkiError("ERR_FILE_UNUSABLE", `${from}: is not a regular file, so it cannot be backed up: put the file itself there`, { details: { path: from } });
    ownerDir(dirname(to));
    const dst = openSync(to, "wx", 0o600);
    try {
      const h = createHash("sha256");
      const buf = Buffer.allocUnsafe(1 << 20);
      let size = 0;
      for (;;) {
        const n = readSync(src, buf, 0, buf.length, null);
        if (n === 0) break;
        for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off);
        h.update(buf.subarray(0, n));
        size += n;
      }
      fsyncSync(dst);
      return { size, sha256: h.digest("hex") };
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
}

/** Regular files under `dir`, as path segments relative to it; staged temporaries (dot files) are skipped. */
export function regularFiles(dir: string, rel: string[] = []): string[][] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: string[][] = [];
  for (const n of names) {
    if (n.startsWith(".")) continue;
    const p = join(dir, n);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) out.push(...regularFiles(p, [...rel, n]));
    else if (st.isFile()) out.push([...rel, n]);
  }
  return out;
}

/** The SQLite store's online backup into `file`, and what the manifest records of it (read from the copy). */
async function backupSqlite(db: string, file: string): Promise<{ schemaVersion: number; crlNumbers: ManifestCrlNumber[] }> {
  const { default: Database } = await import("better-sqlite3");
  const src = new Database(db, { readonly: true, fileMustExist: true });
  try {
    src.pragma("busy_timeout = 20000");
    // SQLite's backup API copies pages in steps and starts over when another connection writes between two
    // steps; after the first step we ask for every remaining page in one step, which holds one read
    // transaction throughout: in WAL mode writers go on, and the copy is that transaction's snapshot.
    await src.backup(file, { progress: () => 0x7fffffff });
  } finally {
    src.close();
  }
  const copy = new Database(file, { fileMustExist: true });
  try {
    // The copy keeps the source's WAL mode; a backup file is one self-contained file (no -wal, no -shm).
    copy.pragma("journal_mode = DELETE");
    const check = copy.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new JpkiError("ERR_WORKSPACE_CORRUPT", `the store's backup copy fails SQLite's quick_check (${String(check)}): the store itself may be damaged`);
    // The copy is the snapshot: a move that retired the store after the workspace was opened shows here.
    const retired = copy.prepare("SELECT value FROM meta WHERE key = 'retired'").pluck().get() as string | undefined;
    if (retired !== undefined) throw storeRetired(retired);
    const schemaVersion = copy.pragma("user_version", { simple: true }) as number;
    const rows = copy.prepare("SELECT ca_id, scope, max(number) AS highest FROM crls GROUP BY ca_id, scope ORDER BY ca_id, scope").safeIntegers().all() as Array<{ ca_id: string; scope: string; highest: bigint }>;
    return { schemaVersion, crlNumbers: rows.map((r) => ({ caId: r.ca_id, scope: r.scope, highest: r.highest.toString() })) };
  } finally {
    copy.close();
  }
}

/**
 * Takes a backup of the workspace at `workspaceDir` into the new directory `dest` (see the header). ERR_BACKUP_EXISTS
 * when `dest` exists; ERR_FILE_UNUSABLE when it is under /proc, /sys or /dev or its parent is no writable directory,
 * ERR_FILE_NOT_FOUND when the parent is missing; ERR_STORE_RETIRED when its store is one a move left
 * (store/retirement.ts); the workspace's own errors when it cannot be opened.
 */
export async function takeBackup(opts: BackupOptions): Promise<BackupReport> {
  const clock = opts.clock ?? systemClock;
  const started = clock.now().getTime();
  const dest = opts.dest;
  // Checked as every command's output directory is (workspace/paths.ts), before anything is opened or written:
  // under /proc, mkdirSync's recursive mode spun for ever (mkdir gives ENOENT though the parent exists), /sys
  // failed with EPERM as an internal error, and /dev took a whole backup.
  refuseSpecial(resolve(dest), dest, "backup directory");
  if (existsSync(dest)) throw new JpkiError("ERR_BACKUP_EXISTS", `${dest} already exists: name a new directory for the backup (a backup never adds to or replaces another)`, { details: { path: dest } });
  const parent = checkOutputDir(dirname(dest), "the backup's parent directory");
  // Opening checks the workspace is one (config, store reachable, schema ours) before anything is written.
  const ws = await Workspace.openAsync(opts.workspaceDir, { clock, ...(opts.storeUrl !== undefined ? { storeUrl: opts.storeUrl } : {}) });
  const paths = ws.paths;
  const kind = ws.config.store;
  let retired: string | undefined;
  let keyWrap: KeyWrapParams | undefined;
  try {
    retired = await ws.store.retirement();
    if (opts.passphrase !== undefined) keyWrap = await assertOpensCaKey(ws, opts.passphrase);
  } finally {
    await ws.close();
  }
  // A store 'jpki store copy' moved the workspace away from (a move stopped before config.json named the new one,
  // or a JPKI_STORE still naming the old database): no longer the workspace's truth, and a backup of it would be a
  // stale one that looks current. Refused here, before anything is copied, and again in the snapshot the backup
  // copies (backupSqlite, dumpPostgres), where a move's retirement may have landed meanwhile.
  if (retired !== undefined) throw storeRetired(retired);
  // A backup inside a tree it copies (ca/, crl/, arl/, bridge/) would be copied by every later backup, each
  // holding the ones before, and put back by a restore among the published files. Found by a helper.
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const destReal = join(real(parent), basename(dest));
  for (const t of BACKED_UP_TREES) {
    const tree = real(join(paths.root, t));
    if (destReal === tree || destReal.startsWith(tree + sep)) {
      throw new JpkiError("ERR_USAGE", `${dest} is inside the workspace's ${t}/, which a backup copies: put backups outside ${t}/ (e.g. beside the workspace)`, { details: { path: dest } });
    }
  }

  // A killed backup's partial directory holds a whole copy of the store: removed once no backup writes it.
  const swept = sweepStalePartials(parent);
  const tmp = join(parent, `.${basename(dest)}.partial-${ownerTag()}-${randomBytes(4).toString("hex")}`);
  // Not recursive: the parent exists (checked above), so one mkdir either makes it or fails; never the retry loop.
  mkdirSync(tmp, { mode: 0o700 });
  chmodSync(tmp, 0o700);
  const release = holdStagingDir(tmp);
  try {
    const files: ManifestFile[] = [];
    opts.onProgress?.({ phase: "store", done: 0 });
    const storeRel = STORE_FILES[kind];
    const storeFile = join(tmp, ...storeRel.split("/"));
    ownerDir(dirname(storeFile));
    let meta: { schemaVersion: number; crlNumbers: ManifestCrlNumber[] };
    let takenAt: Date;
    if (kind === "sqlite") {
      takenAt = clock.now();
      meta = await backupSqlite(paths.db, storeFile);
    } else {
      if (!opts.storeUrl) throw new JpkiError("ERR_USAGE", `the workspace ${paths.root} uses a PostgreSQL store: set JPKI_STORE to its connection string`);
      const { dumpPostgres } = await import("./postgres-tools.js");
      takenAt = clock.now();
      meta = await dumpPostgres(opts.storeUrl, storeFile);
    }
    chmodSync(storeFile, 0o600);
    files.push({ path: storeRel, ...hashFile(storeFile) });

    opts.onProgress?.({ phase: "files", done: 0 });
    const copies: string[][] = [["config.json"], ...BACKED_UP_FILES.map((f) => [f]), ...BACKED_UP_TREES.flatMap((t) => regularFiles(join(paths.root, t), [t]))];
    let done = 0;
    for (const rel of copies) {
      const r = copyHashed(join(paths.root, ...rel), join(tmp, "workspace", ...rel));
      if (r) files.push({ path: ["workspace", ...rel].join("/"), ...r });
      if (++done % 100 === 0) opts.onProgress?.({ phase: "files", done });
    }
    if (!files.some((f) => f.path === "workspace/config.json")) throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.config} vanished while it was backed up`);

    opts.onProgress?.({ phase: "manifest", done });
    const unauthenticated: BackupManifest = {
      format: BACKUP_FORMAT,
      jpkiVersion: VERSION,
      store: kind,
      schemaVersion: meta.schemaVersion,
      takenAt: takenAt.toISOString(),
      durationMs: Math.max(0, clock.now().getTime() - started),
      crlNumbers: meta.crlNumbers,
      files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    };
    const manifest: BackupManifest =
      opts.passphrase !== undefined ? { ...unauthenticated, authentication: await authenticateManifest(unauthenticated, opts.passphrase, keyWrap) } : unauthenticated;
    const fd = openSync(join(tmp, MANIFEST_NAME), "wx", 0o600);
    try {
      writeSync(fd, JSON.stringify(manifest, null, 2) + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    syncTree(tmp);
    renameSync(tmp, dest);
    syncDir(parent);
    return { dest, manifest, bytes: files.reduce((s, f) => s + f.size, 0), swept };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeFailure(e, `the backup ${dest}`, parent) ?? e;
  } finally {
    release();
  }
}

export { writeFailure };

/** fsyncs every directory of a tree, so the renamed directory's entries survive a crash with it. */
function syncTree(dir: string): void {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (lstatSync(p).isDirectory()) syncTree(p);
  }
  syncDir(dir);
}
