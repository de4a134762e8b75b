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
 * a writer that begins its next transaction at once would never see that, and the WAL would grow. So every few
 * commits the writer waits for the checkpoint of what it has committed (`settled`) before it begins: the wait
 * is one batch's copy, the rest was copied while it worked. The writer's own automatic checkpoint stays as the
 * bound on the WAL, should this thread fall behind or fail.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** The worker's code: plain JavaScript, so it runs from the TypeScript sources in tests as well as from dist/. */
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma("busy_timeout = 0");
db.pragma("synchronous = NORMAL");
let asked = 0, scheduled = false;
const run = () => {
  scheduled = false;
  const upTo = asked;
  try { db.pragma("wal_checkpoint(PASSIVE)"); } catch { /* busy, or the writer is checkpointing: it goes on */ }
  parentPort.postMessage(upTo);
};
parentPort.on("message", (m) => {
  if (m === "stop") { db.close(); parentPort.removeAllListeners("message"); parentPort.unref(); return; }
  asked = m;
  if (!scheduled) { scheduled = true; setImmediate(run); }
});
`;

export class WalCheckpointer {
  readonly #worker: Worker;
  #asked = 0;
  #done = 0;
  #failed = false;
  readonly #waiting: Array<{ upTo: number; resolve: () => void }> = [];

  constructor(dbPath: string) {
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    this.#worker = new Worker(WORKER, { eval: true, workerData: { path: dbPath, driver } });
    // Never keeps the process alive; if it fails, the writer's own automatic checkpoints go on as before.
    this.#worker.unref();
    this.#worker.on("message", (upTo: number) => {
      this.#done = upTo;
      this.#release();
    });
    const gone = () => {
      this.#failed = true;
      this.#release();
    };
    this.#worker.on("error", gone);
    this.#worker.on("exit", gone);
  }

  #release(): void {
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const w = this.#waiting[i]!;
      if (this.#failed || w.upTo <= this.#done) (this.#waiting.splice(i, 1), w.resolve());
    }
  }

  /** Asks for a checkpoint of what is committed now; returns at once. */
  kick(): void {
    if (!this.#failed) this.#worker.postMessage(++this.#asked);
  }

  /** Resolves once a checkpoint asked for after the latest commit has run (at once if the thread is gone). */
  settled(): Promise<void> {
    if (this.#failed || this.#done >= this.#asked) return Promise.resolve();
    // Referenced while waited for: an unreferenced thread does not keep the event loop alive, and a process
    // with nothing else to do would end in the middle of the wait.
    this.#worker.ref();
    return new Promise((resolve) =>
      this.#waiting.push({
        upTo: this.#asked,
        resolve: () => {
          if (!this.#waiting.length) this.#worker.unref();
          resolve();
        },
      }),
    );
  }

  /** Stops the thread after the checkpoint in progress, and closes its connection. */
  async close(): Promise<void> {
    if (this.#failed) return;
    const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    this.#worker.ref(); // as in settled()
    this.#worker.postMessage("stop");
    await exited;
  }
}
