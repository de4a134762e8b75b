/**
 * Many files published into one directory, each atomically and durably: `issue --batch --out-dir` writes a
 * certificate per application.
 *
 * writeFileAtomic per file (files.ts) synced the directory after each file, on the calling thread: ≈ 10 ms a
 * certificate on these disks (the file's fdatasync ≈ 3 ms, the directory's fsync ≈ 7 more), so ≈ 95 certificates a
 * second — a tenth of issuance's rate — with the main thread blocked throughout. Here each file is still written to
 * a temporary sibling, synced, and renamed into place (a reader or a crash sees the whole file or none; a file
 * reported written is on disk), but:
 * - on threads of their own, several at once: fsyncs that overlap share the filesystem journal's commits (measured:
 *   one thread ≈ 160 files a second, two ≈ 1,000). Not on libuv's pool: during a batch its queue is ≈ 512
 *   signatures deep (store/checkpointer.ts), and a sync there waited behind them and held a signing thread;
 * - the directory synced once for every file renamed since its last sync (a group commit of names), not once a file.
 *
 * Temporary names are staging.ts's (`tempPathFor`), so sweepStaleTemps clears what a killed run left.
 */
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { writeFileAtomic } from "./files.js";
import { syncDir, tempPathFor } from "./staging.js";

/** The threads' code: plain JavaScript, run with eval, so it runs from the TypeScript sources in tests as from dist/. */
const WORKER = `
const { parentPort } = require("node:worker_threads");
const { closeSync, fchmodSync, fdatasyncSync, fsyncSync, openSync, renameSync, rmSync, writeSync } = require("node:fs");
const failure = (e) => ({ code: e && e.code, message: (e && e.message) || String(e) });
parentPort.on("message", (m) => {
  if (m === "stop") { parentPort.close(); return; }
  if (m.syncDir !== undefined) {
    let error;
    try {
      const fd = openSync(m.syncDir, "r");
      try { fsyncSync(fd); } finally { closeSync(fd); }
    } catch (e) { error = failure(e); }
    parentPort.postMessage({ id: m.id, error });
    return;
  }
  let fd, error;
  try {
    fd = openSync(m.tmp, "wx", m.mode);
    fchmodSync(fd, m.mode); // exactly this mode, not as the umask narrowed it
    const b = m.data;
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    fdatasyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(m.tmp, m.path);
  } catch (e) {
    error = failure(e);
    if (fd !== undefined) { try { closeSync(fd); } catch {} }
    try { rmSync(m.tmp, { force: true }); } catch {}
  }
  parentPort.postMessage({ id: m.id, error });
});
`;

interface Waiter {
  resolve(): void;
  reject(e: unknown): void;
}

interface Lane {
  readonly worker: Worker;
  /** requests posted and not answered, by id */
  readonly waiting: Map<number, Waiter>;
  gone: boolean;
}

/** An error of the threads' as node:fs would throw it: its `code` kept (files.ts writeFailure reads it). */
const rebuilt = (e: { code?: string; message: string }) => Object.assign(new Error(e.message), e.code ? { code: e.code } : {});

/** A thread ended (or failed) before answering: nothing is known of that write. */
export class WriterThreadGone extends Error {
  readonly code = "ERR_WRITER_THREAD_GONE";
  constructor() {
    super("the file-writing thread ended before answering");
  }
}

export class DirectoryWriter {
  readonly #dir: string;
  readonly #mode: number;
  readonly #threads: number;
  readonly #lanes: Lane[] = [];
  /** no thread could be started (the process at its thread limit): files are written here, one at a time */
  #inline = false;
  #nextId = 0;
  /** files renamed into place, waiting for a directory sync begun after their rename */
  #renamed: Waiter[] = [];
  #syncingDir = false;
  #closed = false;

  /** `threads`: how many files are written at once (default 4). `mode`: the files' mode (default owner-only). */
  constructor(dir: string, o: { threads?: number; mode?: number } = {}) {
    this.#dir = dir;
    this.#mode = o.mode ?? 0o600;
    this.#threads = Math.max(1, o.threads ?? 4);
  }

  /** Writes `name` in the directory; resolves once the file and its name are on disk, rejects with the write's error. */
  write(name: string, data: string | Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("DirectoryWriter is closed"));
    const path = join(this.#dir, name);
    const lane = this.#inline ? undefined : this.#lane();
    if (!lane) {
      try {
        writeFileAtomic(path, data, this.#mode);
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    return new Promise<void>((resolve, reject) => {
      this.#post(lane, { tmp: tempPathFor(path), path, mode: this.#mode, data: bytes }, {
        resolve: () => {
          this.#renamed.push({ resolve, reject });
          this.#syncDir();
        },
        reject,
      });
    });
  }

  /** Waits for nothing: every write's promise settles on its own. Stops the threads (their answers are all in). */
  async close(): Promise<void> {
    this.#closed = true;
    const lanes = this.#lanes.splice(0);
    await Promise.all(
      lanes.map(
        (l) =>
          new Promise<void>((resolve) => {
            if (l.gone) return resolve();
            l.worker.once("exit", () => resolve());
            l.worker.ref();
            l.worker.postMessage("stop");
          }),
      ),
    );
  }

  /** The least busy thread, a new one while fewer than `threads` are running; undefined when none can be started. */
  #lane(): Lane | undefined {
    const live = this.#lanes.filter((l) => !l.gone);
    const idle = live.find((l) => l.waiting.size === 0);
    if (idle) return idle;
    if (live.length < this.#threads) {
      const started = this.#start();
      if (started) return started;
    }
    if (live.length === 0) {
      this.#inline = true;
      return undefined;
    }
    return live.reduce((a, b) => (b.waiting.size < a.waiting.size ? b : a));
  }

  #start(): Lane | undefined {
    let worker: Worker;
    try {
      worker = newThread(WORKER, { eval: true });
    } catch {
      return undefined; // ERR_WORKER_INIT_FAILED: the process is at its thread limit
    }
    const lane: Lane = { worker, waiting: new Map(), gone: false };
    worker.unref();
    const gone = () => {
      lane.gone = true;
      for (const w of lane.waiting.values()) w.reject(new WriterThreadGone());
      lane.waiting.clear();
    };
    worker.on("error", gone);
    worker.on("exit", gone);
    worker.on("message", (m: { id: number; error?: { code?: string; message: string } }) => {
      const w = lane.waiting.get(m.id);
      if (!w) return;
      lane.waiting.delete(m.id);
      // Referenced only while it owes an answer: a caller that forgets close() does not keep its process alive.
      if (lane.waiting.size === 0 && !this.#closed) worker.unref();
      if (m.error) w.reject(rebuilt(m.error));
      else w.resolve();
    });
    this.#lanes.push(lane);
    return lane;
  }

  #post(lane: Lane, message: object, waiter: Waiter): void {
    const id = (this.#nextId = (this.#nextId + 1) | 0);
    lane.waiting.set(id, waiter);
    if (lane.waiting.size === 1) lane.worker.ref();
    lane.worker.postMessage({ id, ...message });
  }

  /** One directory sync for every file renamed before it began; the files renamed meanwhile wait for the next. */
  #syncDir(): void {
    if (this.#syncingDir || this.#renamed.length === 0) return;
    const covered = this.#renamed;
    this.#renamed = [];
    const lane = this.#lane();
    if (!lane) {
      // no thread left: every waiting file is renamed, and a directory sync here covers them all
      try {
        syncDir(this.#dir);
        for (const w of covered) w.resolve();
      } catch (e) {
        for (const w of covered) w.reject(e);
      }
      return;
    }
    this.#syncingDir = true;
    const done = (settle: (w: Waiter) => void) => {
      this.#syncingDir = false;
      for (const w of covered) settle(w);
      this.#syncDir();
    };
    this.#post(lane, { syncDir: this.#dir }, { resolve: () => done((w) => w.resolve()), reject: (e) => done((w) => w.reject(e)) });
  }
}
