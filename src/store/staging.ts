/**
 * Staged files: written in full to a temporary sibling and fsynced, installed later by a rename (possibly
 * under a lock, together with other staged files), or discarded. Temporary names carry the writer's pid,
 * so the next start can tell the leftovers of a killed run from the work of a live one and sweep them.
 *
 *   .<name>.<pid>.<random>.tmp
 */
import { closeSync, fchmodSync, fdatasync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** What tempPathFor puts after `.<name>.`: the writer's pid (captured), 6 random bytes in hex, `.tmp`. */
const TEMP_TAIL = String.raw`(\d+)\.[0-9a-f]{12}\.tmp$`;
/** Any file's temporary name. */
const TEMP = new RegExp(String.raw`^\..+\.` + TEMP_TAIL);
/** The tail alone: a temporary name of one file once its `.<name>.` is cut off. */
const OWN_TEMP = new RegExp(`^${TEMP_TAIL}`);

/** A temporary sibling of `path` owned by this process. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
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

/** Whether a process with this pid runs (ours always does; EPERM: it runs as another user). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files staged for `path` — tempPathFor's names for it, no other file's. By default only those
 * of processes that no longer run. `writersExcluded`: the caller holds the lock every writer of `path` takes
 * while staging it, so no one is writing any of them now and each is a leftover whatever its pid says (a killed
 * writer's pid since reused by a live process would otherwise keep its file for ever). Returns the names removed.
 */
export function sweepTempsFor(path: string, opts: { readonly writersExcluded?: boolean } = {}): string[] {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = OWN_TEMP.exec(name.slice(prefix.length));
    if (!m || (!opts.writersExcluded && processAlive(Number(m[1])))) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // not ours to remove: the next sweep tries again
    }
  }
  return removed;
}

/**
 * Removes temporary files in `dir` left by processes that no longer run (a kill -9 mid-write). Files of
 * live processes are left alone: another command may be staging right now. Returns the names removed.
 */
export function sweepStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(name);
    } catch {
      // gone already, or not ours to remove: the next sweep tries again
    }
  }
  return removed;
}
