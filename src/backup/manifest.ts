/**
 * A backup's manifest (manifest.json): every file of the backup with its size and SHA-256, and what the
 * backup is of — jpki version, store kind and schema version, when it was taken, and the highest CRL number of
 * every CA and scope at that moment (what a restore moves numbering past, backup/restore.ts).
 *
 * The manifest is what `jpki restore` checks before it touches anything: a file missing, a file added, or a
 * file whose size or SHA-256 differs is ERR_BACKUP_CORRUPT naming the file. That guards against damage (a
 * truncated copy, bit rot, a file added or lost by a sync tool); against someone who can rewrite manifest.json
 * too, a backup taken with the CA passphrase carries an HMAC of the manifest under a key derived from it
 * (`authentication`, backup/authentication.ts), checked by authenticateBackup. Keep backups where only the
 * operator can write all the same (they hold the encrypted CA keys and personal data: files 0600, directories 0700).
 */
import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readSync, readdirSync } from "node:fs";
import { join, posix } from "node:path";
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";
import { checkInputDir } from "../workspace/paths.js";
import { isManifestAuthentication, manifestAuthenticates, type ManifestAuthentication } from "./authentication.js";

export const MANIFEST_NAME = "manifest.json";
export const BACKUP_FORMAT = "jpki-backup/1";

/** One file of a backup, its path relative to the backup directory with "/" separators. */
export interface ManifestFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** The highest CRL number of a CA's scope ("" full, "delta", "arl", a municipality code) when the backup was taken. */
export interface ManifestCrlNumber {
  readonly caId: string;
  readonly scope: string;
  /** decimal: CRL numbers go up to 20 octets (RFC 5280 §5.2.3), beyond what JSON numbers hold */
  readonly highest: string;
}

export interface BackupManifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly jpkiVersion: string;
  readonly store: "sqlite" | "postgres";
  /** the store's schema version (SQLite user_version, or the PostgreSQL store's migration count) */
  readonly schemaVersion: number;
  /** when the store's snapshot was taken (ISO 8601, UTC) */
  readonly takenAt: string;
  /** how long the backup took, in milliseconds */
  readonly durationMs: number;
  readonly crlNumbers: readonly ManifestCrlNumber[];
  readonly files: readonly ManifestFile[];
  /** the HMAC of the rest under the CA passphrase, when the backup was taken with it (backup/authentication.ts) */
  readonly authentication?: ManifestAuthentication;
}

/** SHA-256 (hex) and size of a file, read in 1 MiB blocks: a store backup may be gigabytes. */
export function hashFile(path: string): { size: number; sha256: string } {
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  return { size, sha256: h.digest("hex") };
}

/**
 * Every entry under `root` as a relative "/" path, except the manifest: regular files as "file", anything else
 * (a symbolic link, a FIFO, a directory's odd cousin) as what it is, so the check can refuse it by name.
 */
export function listTree(root: string): Array<{ path: string; kind: "file" | "other" }> {
  const out: Array<{ path: string; kind: "file" | "other" }> = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p, r);
      else if (r !== MANIFEST_NAME) out.push({ path: r, kind: st.isFile() ? "file" : "other" });
    }
  };
  walk(root, "");
  return out;
}

function corrupt(message: string, file: string, cause?: unknown): JpkiError {
  return new JpkiError("ERR_BACKUP_CORRUPT", `${message}: the backup was not restored (nothing was changed)`, {
    details: { file },
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** A manifest path is relative, "/"-separated, normalised, and stays inside the backup. */
function safeRelative(p: unknown): p is string {
  return typeof p === "string" && p !== "" && !p.startsWith("/") && !p.includes("\\") && posix.normalize(p) === p && !p.split("/").includes("..") && p !== MANIFEST_NAME;
}

/** Reads and validates manifest.json's shape; ERR_BACKUP_CORRUPT (file manifest.json) when it is missing or malformed. */
export function readManifest(dir: string): BackupManifest {
  let raw: unknown;
  try {
    // Opened without blocking and read only when it is a regular file: a FIFO named manifest.json hung
    // `restore` and `restore --verify-only` for ever (found by a helper); a symbolic link is no file of the backup.
    raw = JSON.parse(readRegularFile(join(dir, MANIFEST_NAME), { noFollow: true }).bytes.toString("utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw corrupt(`${dir} has no readable ${MANIFEST_NAME} (${code === "ELOOP" ? "a symbolic link" : code === NOT_REGULAR ? "not a regular file" : (code ?? "not JSON")})`, MANIFEST_NAME, e);
  }
  const m = raw as Partial<BackupManifest>;
  const bad = (what: string) => corrupt(`${MANIFEST_NAME} in ${dir} is malformed: ${what}`, MANIFEST_NAME);
  if (typeof m !== "object" || m === null) throw bad("not an object");
  if (m.format !== BACKUP_FORMAT) throw bad(`format is ${JSON.stringify(m.format)}, not ${BACKUP_FORMAT}`);
  if (m.store !== "sqlite" && m.store !== "postgres") throw bad("store is neither sqlite nor postgres");
  if (!Number.isInteger(m.schemaVersion) || m.schemaVersion! < 1) throw bad("schemaVersion");
  if (typeof m.takenAt !== "string" || Number.isNaN(Date.parse(m.takenAt))) throw bad("takenAt");
  if (typeof m.jpkiVersion !== "string") throw bad("jpkiVersion");
  if (!Array.isArray(m.crlNumbers) || !m.crlNumbers.every((c) => typeof c?.caId === "string" && typeof c.scope === "string" && /^\d+$/.test(String(c.highest)))) throw bad("crlNumbers");
  if (!Array.isArray(m.files)) throw bad("files");
  if (m.authentication !== undefined && !isManifestAuthentication(m.authentication)) throw bad("authentication");
  const seen = new Set<string>();
  for (const f of m.files) {
    if (!safeRelative(f?.path) || !Number.isSafeInteger(f.size) || f.size < 0 || typeof f.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(f.sha256)) {
      throw bad(`file entry ${JSON.stringify(f?.path ?? f)}`);
    }
    if (seen.has(f.path)) throw bad(`${f.path} is listed twice`);
    seen.add(f.path);
  }
  return m as BackupManifest;
}

/**
 * Checks a backup directory against its manifest: the same files, no more, no fewer, each of its size and
 * SHA-256. Returns the manifest; ERR_BACKUP_CORRUPT (details.file: the first file that fails) otherwise.
 * `dir` missing is ERR_FILE_NOT_FOUND, and a file or a path under /proc, /sys or /dev ERR_FILE_UNUSABLE: a
 * wrong path, not a damaged backup (exit 21). Reads only.
 */
export function verifyBackup(dir: string): BackupManifest {
  checkInputDir(dir, "backup");
  const manifest = readManifest(dir);
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  const present = listTree(dir);
  for (const p of present) {
    if (!listed.has(p.path)) throw corrupt(`${p.path} is in the backup ${dir} but not in its manifest`, p.path);
    if (p.kind !== "file") throw corrupt(`${p.path} in the backup ${dir} is not a regular file`, p.path);
  }
  const have = new Set(present.map((p) => p.path));
  for (const f of manifest.files) {
    if (!have.has(f.path)) throw corrupt(`${f.path} is listed in the manifest of ${dir} but missing`, f.path);
  }
  for (const f of manifest.files) {
    const h = hashFile(join(dir, ...f.path.split("/")));
    if (h.size !== f.size) throw corrupt(`${f.path} in the backup ${dir} is ${h.size} bytes, the manifest says ${f.size}`, f.path);
    if (h.sha256 !== f.sha256) throw corrupt(`${f.path} in the backup ${dir} does not match its SHA-256 in the manifest`, f.path);
  }
  return manifest;
}

export interface AuthenticateBackupOptions {
  /** the CA passphrase the backup was taken with; needed when its manifest is authenticated */
  readonly passphrase?: string;
  /**
   * a manifest without authentication passes although a passphrase was given: a backup taken without one (by
   * `jpki backup` without a passphrase, or by a release before manifests were authenticated)
   */
  readonly acceptUnauthenticated?: boolean;
}

/**
 * Checks a verified backup's manifest (verifyBackup) against the CA passphrase. An authenticated manifest needs
 * the passphrase (ERR_PASSPHRASE_MISSING without one) and must verify under it (ERR_BACKUP_CORRUPT, file
 * manifest.json: the manifest was rewritten, or the passphrase is not the one the backup was taken with). Given
 * a passphrase, a manifest without authentication is refused (ERR_BACKUP_UNAUTHENTICATED) unless
 * `acceptUnauthenticated`: whoever rewrote a backup would drop the member rather than leave one that fails.
 * Without a passphrase, an unauthenticated manifest passes as before. Returns whether it was authenticated.
 */
export async function authenticateBackup(dir: string, manifest: BackupManifest, opts: AuthenticateBackupOptions = {}): Promise<{ authenticated: boolean }> {
  const { passphrase } = opts;
  if (manifest.authentication) {
    if (!passphrase) {
      throw new JpkiError(
        "ERR_PASSPHRASE_MISSING",
        `the manifest of ${dir} is authenticated under the CA passphrase it was taken with: give that passphrase (JPKI_PASSPHRASE or --passphrase-file) to check it`,
      );
    }
    if (!(await manifestAuthenticates(manifest as BackupManifest & { authentication: ManifestAuthentication }, passphrase))) {
      throw corrupt(`${MANIFEST_NAME} in ${dir} does not authenticate under the passphrase given: the manifest was rewritten, or the backup was taken under another passphrase`, MANIFEST_NAME);
    }
    return { authenticated: true };
  }
  if (passphrase && !opts.acceptUnauthenticated) {
    throw new JpkiError(
      "ERR_BACKUP_UNAUTHENTICATED",
      `the manifest of ${dir} is not authenticated (a backup taken without the CA passphrase, or one whose authentication was removed): nothing was restored; if it was taken so, pass --accept-unauthenticated`,
      { details: { file: MANIFEST_NAME } },
    );
  }
  return { authenticated: false };
}
