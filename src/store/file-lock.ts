/**
 * A lock file for state the store does not hold (the Bridge CA's directory, ca/bridge.ts): one holder at a time
 * across processes, and a lock left by a killed process taken over — safely.
 *
 * - The lock is created whole: its content (pid and the process's start time) is written to a temporary file
 *   first and linked into place, so it never exists empty (link fails with EEXIST when another holds it).
 * - A holder is alive when its pid runs *and* started when the lock says (Linux /proc/<pid>/stat field 22): a
 *   pid reused by an unrelated process after a reboot or in a container does not keep the lock for ever. A lock
 *   naming this very process is held only if this process really holds it (not a leftover of a previous run
 *   that happened to have the same pid, as pid 1 in a container always does).
 * - Taking over a dead holder's lock is itself exclusive: of two processes that find the same dead holder, one
 *   removes the lock and links its own, the other finds it held. The taker holds `<lock>.takeover` around its
 *   check and removal, a marker made like the lock (linked whole, naming its maker's pid and start time). A
 *   marker is judged as a lock is, by whether its maker runs, never by its age: a taker killed in the middle
 *   (the marker names a dead process) is cleared at once — the lock is had at the next try, not a minute later
 *   (the IC card answered 6F 00 all that while) — and a live one is waited for however slow it is (stopped,
 *   swapped out, or the wall clock stepped): an age rule let a second taker remove a live taker's marker, and
 *   then the lock the first had just made, and both held it.
 *
 * withFileLock refuses at once when the lock is held; withFileLockSync (the IC card's read-modify-write, which
 * answers inside one synchronous call) waits a few seconds for the holder to let go first.
 */
import { linkSync, lstatSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync, type Stats } from "node:fs";
import { threadId } from "node:worker_threads";
import { readRegularFile } from "../pki/regular-file.js";
import { JpkiError } from "../errors.js";
import { processAlive, sweepTempsFor, tempPathFor } from "./staging.js";
import { thisNamespace } from "./pid-namespace.js";

/**
 * A lock naming another PID namespace (another container or host sharing the directory) cannot be judged by its
 * pid: it is held while its holder touches it (withFileLock refreshes its mtime every LOCK_HEARTBEAT_MS) and taken
 * over only once untouched this long. Its pid was looked up here as if it were ours, found "not running", and a
 * live holder's lock taken over (found by helper G).
 */
export const FOREIGN_LOCK_STALE_MS = 10 * 60_000;
const LOCK_HEARTBEAT_MS = 60_000;

/**
 * Locks this thread holds (paths), so a lock naming our pid and thread is known to be ours or a leftover. Each
 * worker thread has its own copy of this module, so the set is per thread: a lock naming another thread of this
 * process is that thread's (see holderAlive), never judged by this set.
 */
const heldHere = new Set<string>();

/** /proc/<pid>/stat after the command name: field 3 (state) first, field 22 (start time) at index 19. */
function procStat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** The start time of a process (clock ticks since boot), or undefined where /proc does not say. */
function processStart(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

interface Holder {
  readonly pid: number;
  readonly start?: string;
  /** the holder's worker-thread id (0: the main thread); absent in locks of earlier releases */
  readonly thread?: number;
  /** the holder's PID namespace (pid-namespace.ts); absent in locks of earlier releases */
  readonly ns?: string;
  readonly raw: string;
}

function readHolder(path: string): Holder | undefined {
  let raw: string;
  try {
    // Only from a regular file: a FIFO at the lock's path would otherwise block the read for ever. Anything else
    // there is no holder we can name (the caller waits, then reports the lock as held).
    raw = readRegularFile(path).bytes.toString("utf8");
  } catch {
    return undefined; // gone meanwhile, or no regular file
  }
  // "<pid> <start> t<thread> @<namespace>"; earlier releases wrote the first two only (and read only those).
  const [pid, start, thread, space] = raw.trim().split(" ");
  const t = thread && /^t\d+$/.test(thread) ? Number(thread.slice(1)) : undefined;
  const ns = space && /^@[0-9a-f]{16}$/.test(space) ? space.slice(1) : undefined;
  // "-": the writer could not read its start time (no /proc)
  return { pid: Number.parseInt(pid ?? "", 10), ...(start && start !== "-" ? { start } : {}), ...(t !== undefined ? { thread: t } : {}), ...(ns ? { ns } : {}), raw };
}

function holderAlive(path: string, h: Holder): boolean {
  if (!Number.isInteger(h.pid) || h.pid <= 0) return false; // not written by us: a damaged lock
  if (h.ns !== undefined && h.ns !== thisNamespace()) {
    const st = lstatOrUndefined(path);
    return st !== undefined && Date.now() - st.mtimeMs <= FOREIGN_LOCK_STALE_MS;
  }
  if (h.pid === process.pid) {
    // A previous process that had our pid (pid 1 in a container, a pid reused after a reboot) left it.
    const ours = processStart(process.pid);
    if (h.start !== undefined && ours !== undefined && h.start !== ours) return false;
    // Another thread of this process (jpki serve's schedule thread, say) holds it: alive while we run. Judged by
    // our own set, it was a leftover, taken over, and both threads held the lock. (A worker that ended holding it
    // leaves it to the next process, which finds our pid gone.)
    if (h.thread !== undefined && h.thread !== threadId) return true;
    return heldHere.has(path);
  }
  if (!processAlive(h.pid)) return false;
  const stat = procStat(h.pid);
  if (stat?.[0] === "Z" || stat?.[0] === "X") return false; // killed, not yet reaped by its parent
  const now = stat?.[19];
  return h.start === undefined || now === undefined || now === h.start;
}

/** Links a lock file holding our pid and start time at `path`; false when one is there. */
function tryCreate(path: string): boolean {
  const tmp = tempPathFor(path);
  writeFileSync(tmp, `${process.pid} ${processStart(process.pid) ?? "-"} t${threadId} @${thisNamespace()}`, { mode: 0o600 });
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The takeover marker of the lock at `path`. */
const takeoverMarker = (path: string): string => `${path}.takeover`;

/**
 * Removes the lock at `path` if it still holds `stale`, holding the lock's takeover marker meanwhile; true when it
 * did. False when another taker's marker is there (a live one is waited for; a dead one's is cleared first and
 * the marker tried once more).
 */
function takeOver(path: string, stale: Holder): boolean {
  const marker = takeoverMarker(path);
  for (let attempt = 0; !tryCreate(marker); attempt++) {
    refuseNonLock(marker);
    const taker = readHolder(marker);
    if (attempt > 0 || !taker || holderAlive(marker, taker)) return false; // under way (or just finished): wait
    clearDeadTaker(marker, taker);
  }
  heldHere.add(marker);
  try {
    if (readHolder(path)?.raw !== stale.raw) return false; // taken over by another meanwhile
    rmSync(path, { force: true });
    return true;
  } finally {
    release(marker);
  }
}

/**
 * Removes the marker a killed taker left. It is moved aside first (a rename is atomic) and looked at there: if
 * another process cleared the dead one and made its own between our look and our move, the one we moved is that
 * live taker's, and it is put back.
 */
function clearDeadTaker(marker: string, dead: Holder): void {
  const aside = tempPathFor(marker);
  try {
    renameSync(marker, aside);
  } catch {
    return; // cleared by another meanwhile
  }
  try {
    if (readHolder(aside)?.raw !== dead.raw) linkSync(aside, marker);
  } catch {
    // a third process made a marker meanwhile: the live taker we moved finds its own gone when it lets go
  } finally {
    rmSync(aside, { force: true });
  }
}

/**
 * A lock or a takeover marker is only ever a regular file (linked into place): a directory, FIFO or link there is
 * no holder that will ever let go. Said at once and as what it is — it was "another jpki process is working on …"
 * after the whole wait, every time. ERR_WORKSPACE_LOCKED: nothing was read or written (a card stays usable).
 */
function refuseNonLock(path: string): void {
  const st = lstatOrUndefined(path);
  if (st && !st.isFile()) {
    throw new JpkiError("ERR_WORKSPACE_LOCKED", `${path} is not a lock file (${st.isDirectory() ? "a directory" : st.isSymbolicLink() ? "a symbolic link" : "not a regular file"}): nothing was done; remove it, then retry`);
  }
}

/** The temporary files of a lock and of its takeover marker that processes killed while making them left (dead pids only). */
export function sweepLockTemps(path: string): void {
  for (const p of [path, takeoverMarker(path)]) sweepTempsFor(p);
}

/**
 * One try at the lock at `path`: made (true), or else the holder that has it (undefined when it let go just now).
 * A dead holder's lock is taken over and made again at once. Filesystem failures (a read-only directory) are
 * ERR_FILE_UNUSABLE.
 */
function tryAcquire(path: string): true | { readonly holder: Holder | undefined } {
  try {
    if (tryCreate(path)) return true;
    refuseNonLock(path);
    const h = readHolder(path);
    if (h && holderAlive(path, h)) return { holder: h };
    // released meanwhile, or a dead holder's: ours if the takeover is (another taker may be first)
    if ((!h || takeOver(path, h)) && tryCreate(path)) return true;
    return { holder: readHolder(path) };
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    throw new JpkiError("ERR_FILE_UNUSABLE", `the lock file ${path} cannot be made (${(e as NodeJS.ErrnoException).code ?? "error"}): check the directory's permissions`, { cause: e });
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined; // released meanwhile
  }
}

function lockedBy(holder: Holder | undefined, what: string): JpkiError {
  const who = !holder || !Number.isInteger(holder.pid) ? "" : holder.ns !== undefined && holder.ns !== thisNamespace()
    ? ` (pid ${holder.pid} in another container or host sharing this directory; its lock is taken over once untouched for ${FOREIGN_LOCK_STALE_MS / 60_000} minutes)`
    : ` (pid ${holder.pid})`;
  return new JpkiError("ERR_WORKSPACE_LOCKED", `another jpki process${who} is working on ${what}: retry when it finishes`);
}

function release(path: string): void {
  heldHere.delete(path);
  rmSync(path, { force: true });
}

/**
 * Runs `fn` holding the lock file at `path`; ERR_WORKSPACE_LOCKED naming `what` when another live process holds
 * it. Filesystem failures (a read-only directory) are ERR_FILE_UNUSABLE.
 */
/**
 * Sets `path`'s mtime to now every `ms` until the returned timer is cleared (clearInterval): the heartbeat by which
 * a process in another PID namespace, which cannot see whether ours runs, judges a lock or a staging directory
 * (file-lock.ts, backup/restore.ts). A path gone meanwhile is left gone; the timer never keeps the process alive.
 */
export function touchEvery(path: string, ms: number): NodeJS.Timeout {
  const beat = setInterval(() => {
    try {
      const t = new Date();
      utimesSync(path, t, t);
    } catch {
      // gone: its owner finds out on its own
    }
  }, ms);
  beat.unref();
  return beat;
}

export async function withFileLock<T>(path: string, what: string, fn: () => Promise<T>): Promise<T> {
  const got = tryAcquire(path);
  if (got !== true) throw lockedBy(got.holder, what);
  heldHere.add(path);
  // The heartbeat a process in another PID namespace judges the lock by (FOREIGN_LOCK_STALE_MS); gone after a
  // takeover that followed a stall longer than the stale age: nothing to refresh then.
  const beat = touchEvery(path, LOCK_HEARTBEAT_MS);
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    release(path);
  }
}

/**
 * As withFileLock, synchronously, waiting up to `waitMs` for a live holder to let go (polling every few ms) before
 * ERR_WORKSPACE_LOCKED. A lock this process already holds is ERR_FILE_UNUSABLE: `fn` re-entered its own lock.
 */
export function withFileLockSync<T>(path: string, what: string, waitMs: number, fn: () => T): T {
  if (heldHere.has(path)) throw new JpkiError("ERR_FILE_UNUSABLE", `${what} is already being worked on by this process`);
  // The monotonic clock: a wall clock stepped forward (NTP) must not end the wait at once, nor one stepped back prolong it.
  const deadline = performance.now() + waitMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const got = tryAcquire(path);
    if (got === true) break;
    if (performance.now() > deadline) throw lockedBy(got.holder, what);
    Atomics.wait(nap, 0, 0, 5);
  }
  heldHere.add(path);
  try {
    return fn();
  } finally {
    release(path);
  }
}
