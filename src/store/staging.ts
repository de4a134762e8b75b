/**
 * Staged files: written in full to a temporary sibling and fsynced, installed later by a rename (possibly
 * under a lock, together with other staged files), or discarded. Temporary names carry the writer's pid and
 * PID namespace (pid-namespace.ts), so the next start can tell the leftovers of a killed run from the work of a
 * live one and sweep them — also in a directory shared with other containers or hosts, whose pids mean nothing
 * here:
 *
 *   .<name>.<pid>~@<namespace>.<random>.tmp
 *   .<name>.<pid>.<random>.tmp               an earlier version's (pid only: whose namespace, nobody can tell)
 *
 * The ~@ also keeps an earlier version's sweep (which took the field before <random> for a pid) off this
 * version's temporary files during a rolling upgrade.
 */
import { closeSync, fchmodSync, fdatasync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { processAlive, thisNamespace } from "./pid-namespace.js";

export { processAlive };

/** A temporary file this long untouched is nobody's write in progress, whoever made it (clocks may differ by hours). */
export const TEMP_STALE_MS = 24 * 3600_000;

const TEMP = /^\..+\.(\d+)(?:~@([0-9a-f]{16}))?\.[0-9a-f]{12}\.tmp(-[a-z]+)?$/;

/** This process as the names of what it leaves behind for others to judge carry it: `<pid>~@<namespace>`. */
export function ownerTag(): string {
  return `${process.pid}~@${thisNamespace()}`;
}

/** A temporary sibling of `path` owned by this process. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${ownerTag()}.${randomBytes(6).toString("hex")}.tmp`);
}

export interface StagedFile {
  readonly path: string;
  readonly tmp: string;
  /** Renames the staged file over its target (atomic on one filesystem). */
  install(): void;
  /** Removes the staged file; harmless when already installed or gone. */
  discard(): void;
}

/** A staged file being written: `write` appends, `finish` fsyncs and closes it, `discard` removes it. */
export interface StagingFile {
  readonly path: string;
  readonly tmp: string;
  write(chunk: Uint8Array): void;
  /**
   * Starts making what was written so far durable, on the thread pool (fdatasync), so a large file flushes
   * while the writer waits for something else; `finish` then only has what came after left to sync. Settle
   * the returned promise before `finish` or `discard`.
   */
  flush(): Promise<void>;
  /** Makes the written bytes durable (fsync) and closes the file, ready to install. */
  finish(): StagedFile;
  /**
   * As finish, with the sync on the thread pool (fdatasync): the calling thread goes on with other work, such
   * as another CA's CRL, while the disk catches up.
   */
  finishAsync(): Promise<StagedFile>;
  /** Closes (if open) and removes the temporary file. */
  discard(): void;
}

/** Opens a temporary sibling of `path` to write a staged file into piece by piece. */
export function openStagingFile(path: string, mode = 0o600): StagingFile {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = tempPathFor(path);
  let fd: number | undefined = openSync(tmp, "wx", mode);
  const discard = () => {
    if (fd !== undefined) {
      const f = fd;
      fd = undefined;
      try {
        closeSync(f);
      } catch {
        // the file goes anyway
      }
    }
    rmSync(tmp, { force: true });
  };
  const fail = (e: unknown): never => {
    discard();
    throw e;
  };
  try {
    fchmodSync(fd, mode); // exactly this mode, not the mode as the umask narrowed it
  } catch (e) {
    fail(e);
  }
  return {
    path,
    tmp,
    write(c: Uint8Array): void {
      if (fd === undefined) throw new Error(`staged file ${tmp} is closed`);
      try {
        let off = 0;
        while (off < c.length) off += writeSync(fd, c, off, c.length - off);
      } catch (e) {
        fail(e);
      }
    },
    flush(): Promise<void> {
      const f = fd;
      if (f === undefined) return Promise.reject(new Error(`staged file ${tmp} is closed`));
      return new Promise((resolve, reject) => fdatasync(f, (e) => (e ? reject(e) : resolve())));
    },
    finish(): StagedFile {
      if (fd === undefined) throw new Error(`staged file ${tmp} is closed`);
      try {
        fsyncSync(fd);
        closeSync(fd);
        fd = undefined;
      } catch (e) {
        fail(e);
      }
      return { path, tmp, install: () => renameSync(tmp, path), discard };
    },
    async finishAsync(): Promise<StagedFile> {
      const f = fd;
      if (f === undefined) throw new Error(`staged file ${tmp} is closed`);
      try {
        await new Promise<void>((resolve, reject) => fdatasync(f, (e) => (e ? reject(e) : resolve())));
        if (fd !== f) throw new Error(`staged file ${tmp} was discarded while it was synced`);
        closeSync(f);
        fd = undefined;
      } catch (e) {
        fail(e);
      }
      return { path, tmp, install: () => renameSync(tmp, path), discard };
    },
    discard,
  };
}

/** Writes `data` (an iterable is consumed as it is written) to a temporary sibling of `path` and fsyncs it. */
export function stageFile(path: string, data: string | Uint8Array | Iterable<Uint8Array>, mode = 0o600): StagedFile {
  const chunks: Iterable<Uint8Array> = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
  const f = openStagingFile(path, mode);
  try {
    for (const c of chunks) f.write(c);
  } catch (e) {
    f.discard();
    throw e;
  }
  return f.finish();
}

/** Makes renames in `dir` durable (some filesystems refuse fsync on a directory; the rename stays atomic). */
export function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}

export interface SweepOptions {
  /** wall-clock ms (default Date.now()) */
  readonly now?: number;
  /** a temporary file not of this namespace is removed once untouched this long (default TEMP_STALE_MS) */
  readonly staleMs?: number;
  /** what follows ".tmp" in the names swept, e.g. a staged SQLite file's "-wal" (default: nothing) */
  readonly suffixes?: readonly string[];
}

/**
 * Removes the temporary files in `dir` that nobody is writing any more: those of this PID namespace whose
 * process no longer runs (a kill -9 mid-write), and any other — another namespace's, an earlier version's
 * pid-only name — once untouched for `staleMs`. A live process's files are left alone: another command may be
 * staging right now, here or in another container sharing the directory. Returns the names removed.
 */
export function sweepStaleTemps(dir: string, opts: SweepOptions = {}): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const now = opts.now ?? Date.now();
  const staleMs = opts.staleMs ?? TEMP_STALE_MS;
  const suffixes = opts.suffixes ?? [""];
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || !suffixes.includes(m[3] ?? "")) continue;
    if (removeIfStale(join(dir, name), m, now, staleMs)) removed.push(name);
  }
  return removed;
}

/**
 * The one rule of every sweep (these temporary files; restores' and backups' staging directories, staging-dir.ts): whether
 * what the process `pid` of PID namespace `namespace` (undefined: an earlier version's pid-only name) left is
 * nobody's work in progress any more. `touchedMs` says when it was last written (read only when the pid cannot tell).
 */
export function abandoned(pid: number, namespace: string | undefined, touchedMs: () => number, now: number, staleMs: number): boolean {
  // A pid of ours says whether its writer runs: a live one's file is its work in progress, however old.
  if (namespace === thisNamespace()) return !processAlive(pid);
  // another namespace's pid (or an earlier version's, namespace unknown) says nothing here
  return now - touchedMs() > staleMs;
}

/**
 * Removes the temporary file at `path` (its name matched by TEMP as `m`) when nobody is writing it any more
 * ({@link abandoned}); true when it did.
 */
function removeIfStale(path: string, m: RegExpExecArray, now: number, staleMs: number): boolean {
  try {
    if (!abandoned(Number(m[1]), m[2], () => lstatSync(path).mtimeMs, now, staleMs)) return false;
    rmSync(path, { force: true });
    return true;
  } catch {
    return false; // gone already, or not ours to remove: the next sweep tries again
  }
}

/** The temporary files staged for `path` now (tempPathFor's names for it, no other file's), by name in its directory. */
export function tempsFor(path: string): string[] {
  return tempsOf(path).map((t) => t.name);
}

function tempsOf(path: string): Array<{ readonly name: string; readonly m: RegExpExecArray }> {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return [];
  }
  const found: Array<{ name: string; m: RegExpExecArray }> = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    // only this file's: the part after the prefix must be a whole temporary tail (another file's name may start with ours)
    const m = TEMP.exec(name);
    if (!m || m.index !== 0 || !/^\d+(?:~@[0-9a-f]{16})?\.[0-9a-f]{12}\.tmp$/.test(name.slice(prefix.length))) continue;
    found.push({ name, m });
  }
  return found;
}

/**
 * Removes the temporary files staged for `path` — tempPathFor's names for it, no other file's — that nobody is
 * writing any more, by sweepStaleTemps's rule. `writersExcluded`: the caller holds the lock every writer of `path`
 * takes while staging it, so no one is writing any of them now and each is a leftover whatever its pid or
 * namespace says (a killed writer's pid since reused by a live process would otherwise keep its file for ever).
 * Returns the names removed.
 */
export function sweepTempsFor(path: string, opts: { readonly writersExcluded?: boolean } = {}): string[] {
  const dir = dirname(path);
  const now = Date.now();
  const removed: string[] = [];
  for (const { name, m } of tempsOf(path)) {
    if (opts.writersExcluded) {
      try {
        rmSync(join(dir, name), { force: true });
        removed.push(name);
      } catch {
        // not ours to remove: the next sweep tries again
      }
    } else if (removeIfStale(join(dir, name), m, now, TEMP_STALE_MS)) {
      removed.push(name);
    }
  }
  return removed;
}

/** Errors of link(2) that mean this file system (or this entry: a directory) takes no hard link. */
export const NO_LINKS: ReadonlySet<string> = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "EXDEV", "EMLINK", "ENOSYS"]);

/**
 * Installs the finished temporary file `tmp` under the first of `paths` that is free, never replacing anything:
 * hard-linked in (link(2) fails when the name is taken, whoever took it a moment ago), then `tmp` removed. Where
 * the file system takes no hard links, renamed into a name found free (only a file made there in the same instant
 * could then be replaced). Returns the path used, or undefined when every one was taken (`tmp` stays).
 */
export function installNew(tmp: string, paths: Iterable<string>): string | undefined {
  for (const path of paths) {
    try {
      linkSync(tmp, path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (code === "EEXIST") continue;
      if (!NO_LINKS.has(code)) throw e;
      try {
        lstatSync(path);
        continue; // taken
      } catch (e2) {
        if ((e2 as NodeJS.ErrnoException).code !== "ENOENT") throw e2;
      }
      renameSync(tmp, path);
      return path;
    }
    unlinkSync(tmp);
    return path;
  }
  return undefined;
}
