/**
 * Paths named on the command line, checked before anything is signed, imported or committed.
 *
 * Issue 7, point 6: nothing is committed that cannot be delivered. A certificate signed and stored whose
 * output file then fails with EISDIR is issued twice when the user retries; an input that is a FIFO or a
 * device hangs after the CA key was unlocked. So every command checks its paths first, with these helpers,
 * and fails with a message naming the path and what it was for:
 *
 *   ERR_FILE_NOT_FOUND   the path (or an output file's directory) does not exist
 *   ERR_FILE_UNUSABLE    it exists but cannot be used: a directory where a file is wanted (or the reverse),
 *                        a FIFO, socket or device, anything under /proc, /sys or /dev, no permission
 *
 * jpki reads and writes regular files only; a path under /proc, /sys or /dev is refused even when it looks
 * like a regular file (/proc files have no size and some block forever). Each helper returns the absolute
 * path to use. They only stat and, for checkOutputDir with create, make a directory: they never write a file.
 */
import { accessSync, constants, lstatSync, mkdirSync, realpathSync, statSync, type Stats } from "node:fs";
import { basename, dirname, resolve, sep } from "node:path";
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";

export interface PathCheckOptions {
  /** Relative paths are resolved against this directory (default: process.cwd()). */
  readonly cwd?: string;
}

export interface OutputDirOptions extends PathCheckOptions {
  /** Make the directory (and its parents, mode 0o700) when it does not exist, instead of failing. */
  readonly create?: boolean;
}

/** Pseudo filesystems: their entries are not files jpki can read or write. */
const SPECIAL_ROOTS = ["/proc", "/sys", "/dev"] as const;

/**
 * An existing, readable regular file. `what` says what it is for, as the user would say it:
 * `checkInputFile("card.pub", "public key file --public-key")` fails with
 * "public key file --public-key card.pub: not found".
 */
export function checkInputFile(path: string, what: string, opts: PathCheckOptions = {}): string {
  const abs = absolute(path, what, opts);
  refuseSpecial(abs, path, what);
  const st = statOrUndefined(abs, path, what);
  if (!st) throw notFound(path, what, "not found", abs);
  if (st.isDirectory()) throw unusable(path, what, "is a directory, not a file", abs);
  if (!st.isFile()) throw unusable(path, what, `is ${kindOf(st)}, not a regular file`, abs);
  if (!canAccess(abs, constants.R_OK)) throw unusable(path, what, "is not readable (permission denied)", abs);
  return abs;
}

export interface InputFileOptions extends PathCheckOptions {
  /** The largest file accepted, in bytes: what the file is for decides it (a certificate, a CRL, a token). */
  readonly maxBytes: number;
}

/**
 * Reads a whole input file checked as checkInputFile does, refusing one larger than `maxBytes` before
 * reading a byte of it. readFileSync alone fails past 2 GiB with a RangeError (a stack trace for the user) and
 * before that holds the whole file in memory, however little of it could be what the command wants.
 */
export function readInputFile(path: string, what: string, opts: InputFileOptions): Buffer {
  const abs = checkInputFile(path, what, opts);
  try {
    // Judged again by the descriptor: a FIFO swapped in after the check by path is not waited on.
    return readRegularFile(abs, {
      accept: (st) => {
        if (st.size > opts.maxBytes) throw unusable(path, what, `is ${st.size} bytes, more than the ${opts.maxBytes} accepted for it`, abs);
      },
    }).bytes;
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    if ((e as NodeJS.ErrnoException).code === NOT_REGULAR) throw unusable(path, what, "is no longer a regular file", abs);
    throw unusable(path, what, `cannot be read (${errnoText(e)})`, abs, e);
  }
}

/**
 * A file that can be written: its directory exists and is writable, and the file, if it is already there, is a
 * regular file (it will be replaced). A missing directory is not made here: the message says how to make it.
 */
export function checkOutputFile(path: string, what: string, opts: PathCheckOptions = {}): string {
  const abs = absolute(path, what, opts);
  refuseSpecial(abs, path, what);
  const st = statOrUndefined(abs, path, what);
  if (st) {
    if (st.isDirectory()) throw unusable(path, what, "is a directory: name a file in it", abs);
    if (!st.isFile()) throw unusable(path, what, `is ${kindOf(st)}, not a regular file`, abs);
  }
  const dir = dirname(abs);
  const dst = statOrUndefined(dir, path, what);
  if (!dst) {
    refuseFileAncestor(dir, path, what, abs);
    throw notFound(path, what, `directory ${dir} does not exist (create it with: mkdir -p ${dir})`, abs);
  }
  if (!dst.isDirectory()) throw unusable(path, what, `${dir} is ${dst.isFile() ? "a file" : kindOf(dst)}, not a directory`, abs);
  if (!canAccess(dir, constants.W_OK | constants.X_OK)) throw unusable(path, what, `directory ${dir} is not writable (permission denied)`, abs);
  return abs;
}

/**
 * As checkOutputFile, for a file that must not be there yet (ERR_OUTPUT_EXISTS when anything — a file, a symbolic
 * link even dangling — has the name): what it would replace may be the only copy of something (a customer's key
 * waiting to be handed over). Write it with writeFileNew, which refuses a name taken meanwhile too.
 */
export function checkNewOutputFile(path: string, what: string, opts: PathCheckOptions = {}): string {
  const abs = checkOutputFile(path, what, opts);
  let taken = true;
  try {
    lstatSync(abs);
  } catch {
    taken = false;
  }
  if (taken) throw outputExists(path, what, abs);
  return abs;
}

/** ERR_OUTPUT_EXISTS for an output path something already has. */
export function outputExists(path: string, what: string, abs: string, then = "nothing was done; choose another name"): JpkiError {
  return new JpkiError("ERR_OUTPUT_EXISTS", `${what} ${path} already exists: ${then}`, { details: { path: abs } });
}

/** A writable directory; with `create`, made (mode 0o700) when missing. */
export function checkOutputDir(path: string, what: string, opts: OutputDirOptions = {}): string {
  const abs = absolute(path, what, opts);
  refuseSpecial(abs, path, what);
  let st = statOrUndefined(abs, path, what);
  if (!st) refuseFileAncestor(abs, path, what, abs);
  if (!st && opts.create) {
    try {
      mkdirSync(abs, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw unusable(path, what, `cannot be created (${errnoText(e)})`, abs, e);
    }
    st = statOrUndefined(abs, path, what);
  }
  if (!st) throw notFound(path, what, `does not exist (create it with: mkdir -p ${abs})`, abs);
  if (!st.isDirectory()) throw unusable(path, what, `is ${st.isFile() ? "a file" : kindOf(st)}, not a directory`, abs);
  if (!canAccess(abs, constants.W_OK | constants.X_OK)) throw unusable(path, what, "is not writable (permission denied)", abs);
  return abs;
}

/** An existing, readable directory (a directory to watch, say). */
export function checkInputDir(path: string, what: string, opts: PathCheckOptions = {}): string {
  const abs = absolute(path, what, opts);
  refuseSpecial(abs, path, what);
  const st = statOrUndefined(abs, path, what);
  if (!st) throw notFound(path, what, "not found", abs);
  if (!st.isDirectory()) throw unusable(path, what, `is ${st.isFile() ? "a file" : kindOf(st)}, not a directory`, abs);
  if (!canAccess(abs, constants.R_OK | constants.X_OK)) throw unusable(path, what, "is not readable (permission denied)", abs);
  return abs;
}

/**
 * A workspace directory: a directory, or nothing yet (`ca init` and `demo` make it; opening a missing one
 * is ERR_WORKSPACE_MISSING, raised by Workspace.open). A file or anything under /proc, /sys or /dev is refused.
 */
export function checkWorkspaceDir(path: string, what: string, opts: PathCheckOptions = {}): string {
  const abs = absolute(path, what, opts);
  refuseSpecial(abs, path, what);
  const st = statOrUndefined(abs, path, what);
  if (st && !st.isDirectory()) throw unusable(path, what, `is ${st.isFile() ? "a file" : kindOf(st)}, not a workspace directory`, abs);
  if (!st) refuseFileAncestor(abs, path, what, abs);
  return abs;
}

/**
 * Refuses a path under /proc, /sys or /dev, lexically or once symbolic links are followed (/dev/stdin,
 * a link into /proc). Exported for paths that are neither plain inputs nor outputs, such as a workspace.
 */
export function refuseSpecial(abs: string, path: string, what: string): void {
  for (const p of [abs, realpathOfExisting(abs)]) {
    const root = SPECIAL_ROOTS.find((r) => p === r || p.startsWith(r + sep));
    if (root) throw unusable(path, what, `is under ${root}: jpki reads and writes regular files only`, abs);
  }
}

function absolute(path: string, what: string, opts: PathCheckOptions): string {
  if (path === "") throw new JpkiError("ERR_USAGE", `${what}: the path is empty`);
  return resolve(opts.cwd ?? process.cwd(), path);
}

/** stat, or undefined when nothing is there (ENOENT, or a component that is a file: ENOTDIR). */
function statOrUndefined(abs: string, path: string, what: string): Stats | undefined {
  try {
    return statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw unusable(path, what, `cannot be examined (${errnoText(e)})`, abs, e);
  }
}

/** A missing path whose nearest existing ancestor is a file (or a FIFO…) can never be made: say so. */
function refuseFileAncestor(missing: string, path: string, what: string, abs: string): void {
  for (let p = dirname(missing); ; p = dirname(p)) {
    const st = statOrUndefined(p, path, what);
    if (st) {
      if (!st.isDirectory()) throw unusable(path, what, `${p} is ${st.isFile() ? "a file" : kindOf(st)}, not a directory`, abs);
      return;
    }
    if (dirname(p) === p) return;
  }
}

/** The real path of `abs`, or of its nearest existing ancestor joined with the rest. */
function realpathOfExisting(abs: string): string {
  let head = abs;
  let tail = "";
  for (;;) {
    try {
      return realpathSync(head) + tail;
    } catch {
      const up = dirname(head);
      if (up === head) return abs;
      tail = sep + basename(head) + tail;
      head = up;
    }
  }
}

function canAccess(abs: string, mode: number): boolean {
  try {
    accessSync(abs, mode);
    return true;
  } catch {
    return false;
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EROFS") return "read-only filesystem";
  if (code === "ENOSPC") return "no space left";
  return code ?? String((e as Error)?.message ?? e);
}

function notFound(path: string, what: string, problem: string, abs: string): JpkiError {
  return new JpkiError("ERR_FILE_NOT_FOUND", `${what} ${path}: ${problem}`, { details: { path: abs } });
}

function unusable(path: string, what: string, problem: string, abs: string, cause?: unknown): JpkiError {
  return new JpkiError("ERR_FILE_UNUSABLE", `${what} ${path}: ${problem}`, { details: { path: abs }, ...(cause !== undefined ? { cause } : {}) });
}
