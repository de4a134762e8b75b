/**
 * Atomic file publication: write to a temporary sibling, fsync, rename over the target, fsync the
 * directory. A reader (or a crash) sees the old file or the new one, never half of one. The staging itself
 * (temporary names with the writer's pid, swept after a kill) is staging.ts; this is its one-file form.
 *
 * Owner-only by default (files 0600, directories created 0700, whatever the umask): most of what we write
 * sits in the workspace beside the CA keys, and what is public (CA certificates, CRLs) is served by our own
 * server. Pass `mode` for a file others must read directly.
 */
import { linkSync } from "node:fs";
import { dirname } from "node:path";
import { JpkiError } from "../errors.js";
import { stageFile, syncDir } from "./staging.js";

export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>, mode = 0o600): void {
  const staged = stageFile(path, data, mode);
  try {
    staged.install();
  } catch (e) {
    staged.discard();
    throw e;
  }
  syncDir(dirname(path));
}

/**
 * As writeFileAtomic, but never replaces what is at `path`: the staged file is hard-linked into place, which fails
 * with EEXIST when anything (a file, a directory, a symbolic link, dangling or not) already has that name, and the
 * temporary name is removed either way. Whoever created `path` between a caller's check and this write keeps it.
 */
export function writeFileNew(path: string, data: string | Uint8Array | Iterable<Uint8Array>, mode = 0o600): void {
  const staged = stageFile(path, data, mode);
  try {
    linkSync(staged.tmp, path);
  } finally {
    staged.discard();
  }
  syncDir(dirname(path));
}

/**
 * A full disk, a quota or a read-only filesystem where jpki writes, as a JpkiError naming where: they came out as
 * ERR_INTERNAL, "a bug in jpki: please report it" (found by helpers: 'jpki backup' onto a full disk, then 'jpki crl
 * generate' with crl/ full). `then` says what it means for the operation (default: nothing was kept). Undefined
 * for anything else.
 */
export function writeFailure(e: unknown, what: string, where: string, then = "nothing was kept; free space there or choose another place"): JpkiError | undefined {
  if (e instanceof JpkiError) return undefined;
  const code = (e as { code?: unknown })?.code;
  const why = code === "ENOSPC" || code === "SQLITE_FULL" ? "no space left" : code === "EDQUOT" ? "disk quota exceeded" : code === "EROFS" ? "read-only filesystem" : undefined;
  if (why === undefined) return undefined;
  return new JpkiError("ERR_FILE_UNUSABLE", `${what} could not be written in ${where} (${why}): ${then}`, { cause: e, details: { path: where } });
}
