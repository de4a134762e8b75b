/**
 * A WAL checkpointer on its own thread and connection (https://sqlite.org/wal.html#ckpt), so a bulk writer
 * (notice batches) does not copy the WAL back into the database file on its own thread.
 *
 * Measured at 1M residents (100,000 notices in 100 batches): the automatic checkpoints SQLite runs at the end of
 * a committing transaction took about a fifth of the ingestion's wall time on the writer's thread (copying
 * frames, two fsyncs each, and the kernel's write-back throttling). Here a worker thread runs a PASSIVE
 * checkpoint after each commit: it never blocks a writer or a reader, and what it copies is already durable in
 * the WAL, so a crash at any point loses nothing (SQLite recovers from the WAL as after any crash).
 *
 * A WAL starts over from its beginning only when a write transaction begins while every frame is checkpointed;
 * a writer that begins its next transaction at once would never see that, and the WAL would grow. So once the
 * WAL holds more than `walFrames` reports, the writer waits for the checkpoint of what it has committed
 * (`settled`) before it begins. Not after every few commits: a wait is the copy-back of everything committed since
 * the last one (random pages and an fsync), and notice batches waiting every fourth commit spent ≈ 15 % of their
 * run idle. The writer's own automatic checkpoint stays as the bound on the WAL, should this thread fall behind
 * or fail.
 *
 * The same thread syncs the WAL when a writer asks (`syncWal`, the store's syncCommitted): fdatasync on a thread of
 * its own, not on libuv's pool. A batch keeps that pool's queue ≈ 512 signatures deep, and node:fs's open, datasync
 * and close each waited behind them: measured (issue bench, a loaded host) 225–730 ms from a group's commit to its
 * callers hearing of it, for a sync of ≈ 10 ms, with the pool thread that ran it off the signatures meanwhile.
 */
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";

/**
 * The worker's code: plain JavaScript, so it runs from the TypeScript sources in tests as well as from dist/.
 * Its progress goes into shared memory ([checkpointed up to kick n, frames in the WAL]), not a message: a
 * message waits for the writer's event loop, and a writer committing batch after batch from its microtasks
 * (notice ingestion) saw none of them until its run ended — so it could not tell how far the WAL had grown.
 */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { closeSync, fdatasyncSync, openSync } = require("node:fs");
const Database = require(workerData.driver);
const progress = new Int32Array(workerData.progress);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma("busy_timeout = 0");
db.pragma("synchronous = NORMAL");
let asked = 0, scheduled = false;
const run = () => {
  scheduled = false;
  const upTo = asked;
  // [{ busy, log: frames in the WAL, checkpointed }]. A checkpoint that fails (an I/O error, a full disk) reports
  // no frames: the writer then never waits for this thread, and its own automatic checkpoint bounds the WAL.
  let frames = 0;
  try { frames = db.pragma("wal_checkpoint(PASSIVE)")[0].log; } catch { /* busy, or the writer is checkpointing: it goes on */ }
  Atomics.store(progress, 1, frames);
  Atomics.store(progress, 0, upTo);
};
// A WAL sync, answered by message: at once, before a checkpoint still waiting for its turn. A WAL that is not there
// has nothing to sync (every frame is in the database file, which its checkpoint synced).
const syncWal = (id) => {
  let error;
  try {
    const fd = openSync(workerData.path + "-wal", "r");
    try { fdatasyncSync(fd); } finally { closeSync(fd); }
  } catch (e) {
    if (e.code !== "ENOENT") error = { code: e.code, message: e.message };
  }
  parentPort.postMessage({ synced: id, error });
};
parentPort.on("message", (m) => {
  if (m === "stop") { db.close(); parentPort.removeAllListeners("message"); parentPort.unref(); return; }
  if (typeof m === "object") return syncWal(m.sync);
  asked = m;
  if (!scheduled) { scheduled = true; setImmediate(run); }
});
`;

/** The checkpointer's thread ended (or never started) before answering a WAL sync. */
export class ThreadGone extends Error {
  constructor() {
    super("the WAL checkpointer's thread is gone");
  }
}

/** Whether kick `a` came after kick `b` (numbers modulo 2^32, never more than 2^31 apart). */
export function after(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** How often a waiting writer looks at the checkpointer's progress. */
const POLL_MS = 1;

export class WalCheckpointer {
  readonly #worker: Worker;
  /** [checkpointed up to kick n, frames in the WAL after that checkpoint] */
  readonly #progress = new Int32Array(new SharedArrayBuffer(8));
  #asked = 0;
  #failed = false;
  /** The kick a wait ended on: the WAL started over after it, so the frames reported up to it are gone. */
  #startedOver = 0;
  /** WAL syncs asked of the thread and not answered yet, by number. */
  readonly #syncs = new Map<number, { resolve(): void; reject(e: unknown): void }>();
  #syncNumber = 0;
  #closing = false;

  /** The frames the WAL holds, as of this thread's latest checkpoint (0 before the first and after a wait). */
  get walFrames(): number {
    // The thread stores the frames before the kick number, so frames read after a newer kick are that checkpoint's or later.
    return after(Atomics.load(this.#progress, 0), this.#startedOver) ? Atomics.load(this.#progress, 1) : 0;
  }

  constructor(dbPath: string) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    this.#worker = newThread(WORKER, { eval: true, workerData: { path: dbPath, driver, progress: this.#progress.buffer } });
    // Never keeps the process alive; if it fails, the writer's own automatic checkpoints go on as before.
    this.#worker.unref();
    const gone = () => {
      this.#failed = true;
      // Unanswered syncs may not have run: their callers sync another way (SqliteStore.syncCommitted).
      for (const s of this.#syncs.values()) s.reject(new ThreadGone());
      this.#syncs.clear();
    };
    this.#worker.on("error", gone);
    this.#worker.on("exit", gone);
    this.#worker.on("message", (m: { synced: number; error?: { code?: string; message: string } }) => {
      const s = this.#syncs.get(m.synced);
      if (!s) return;
      this.#syncs.delete(m.synced);
      if (this.#syncs.size === 0 && !this.#closing) this.#worker.unref();
      if (m.error) s.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
      else s.resolve();
    });
  }

  /**
   * Syncs the WAL file (fdatasync) on this thread: resolves once every commit made before the call is on disk.
   * Rejects with the sync's error (an I/O error is not retried: after a failed fsync, a second one on a new
   * descriptor may report success for pages that were never written), or with ThreadGone when the thread ended
   * without answering — then nothing is known of the sync, and the caller syncs another way.
   */
  syncWal(): Promise<void> {
    if (this.#failed) return Promise.reject(new ThreadGone());
    const id = (this.#syncNumber = (this.#syncNumber + 1) | 0);
    return new Promise<void>((resolve, reject) => {
      this.#syncs.set(id, { resolve, reject });
      // Referenced while a sync is unanswered: a process with nothing else to do would end before the answer.
      if (this.#syncs.size === 1) this.#worker.ref();
      this.#worker.postMessage({ sync: id });
    });
  }

  /**
   * Asks for a checkpoint of what is committed now; returns at once. Kicks are numbered modulo 2^32 (the shared
   * slot is 32 bits: a `jpki serve` kicking 15 times a second wraps in about nine years), and compared as such.
   */
  kick(): void {
    if (!this.#failed) this.#worker.postMessage((this.#asked = (this.#asked + 1) | 0));
  }

  /**
   * Resolves once a checkpoint asked for after the latest commit has run (at once if the thread is gone). The
   * writer's next transaction starts the WAL over, so `walFrames` counts from 0 again until the next checkpoint.
   */
  async settled(): Promise<void> {
    const upTo = this.#asked;
    // The poll's timer keeps the process alive while it waits (the thread itself is unreferenced); it also lets
    // the event loop turn, so the thread's 'error'/'exit' end the wait should it die.
    while (!this.#failed && after(upTo, Atomics.load(this.#progress, 0))) await sleep(POLL_MS);
    this.#startedOver = upTo;
  }

  /** Stops the thread after the checkpoint in progress, and closes its connection. */
  async close(): Promise<void> {
    if (this.#failed) return;
    const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    // Referenced until it has exited: an unreferenced thread does not keep the event loop alive, and a process with
    // nothing else to do would end in the middle of the close.
    this.#closing = true;
    this.#worker.ref();
    this.#worker.postMessage("stop");
    await exited;
  }
}
