/**
 * Reading the next notice batch's context ahead, on another connection, while the committing thread commits this
 * batch (SqliteStore.commitNoticeBatch). The read was ≈ 11–16 µs of the committing thread's ≈ 50–70 a notice at 1M
 * residents, nearly all of it one cold page of `certified` per notice (old71/findings-sqnotice.md).
 *
 * When the read is taken matters, not only what it reads. A request is made inside a notice transaction, after its
 * BEGIN IMMEDIATE, and answerable only while that transaction holds the write lock (the window slot: the committing
 * thread opens it with the request's number e, and closes it before its COMMIT). The reading thread begins its read
 * transaction, and only then swaps e for -e; if the swap fails the window had closed and the read is not made. So a
 * read that is answered saw exactly the state that transaction began from: no other connection can commit while the
 * lock is held, and the transaction's own writes are not visible before its COMMIT. What may change the state after
 * that, until the next notice transaction uses the read, the store checks itself (see there).
 *
 * Two ways to read: on a thread ("thread": store/sqlite-context-thread.ts, the compiled module), or at once on a
 * second connection in the asking thread ("inline": nothing runs ahead; for the tests, which run the TypeScript
 * sources, where there is no compiled thread module, and which thereby check the same protocol and checks).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from "node:worker_threads";
import type Database from "better-sqlite3";
import { newThread } from "../thread.js";
import { decodeContextRead, encodeContextRead, prepareNoticeContext, readNoticeContext, type EncodedContextRead, type NoticeContextRead, type NoticeContextStatements } from "./sqlite-notice-context.js";
import type { NoticeContextKeys } from "./types.js";

/** The shared slots: [window: e open, -e taken, 0 closed; asked: the latest request's e; done: the latest answered; stop]. */
export const CONTEXT_SLOTS = { window: 0, asked: 1, done: 2, stop: 3 } as const;

/** What the thread is started with (workerData.jpkiNoticeContext). */
export interface ContextThreadData {
  readonly path: string;
  readonly driver: string;
  readonly cacheKiB: number;
  readonly slots: SharedArrayBuffer;
  readonly port: MessagePort;
}

export interface ContextRequest {
  readonly e: number;
  readonly keys: NoticeContextKeys;
}

export type ContextAnswer =
  | { readonly e: number; readonly read: EncodedContextRead }
  | { readonly e: number; readonly missed: true }
  | { readonly e: number; readonly failed: string };

export type PrefetchMode = "thread" | "inline" | "off";

const THREAD = new URL("./sqlite-context-thread.js", import.meta.url);

/**
 * How long the committing thread waits for a read the thread took, before it reads for itself. Only a thread that
 * gets no core for that long waits this out (a loaded host): the read it replaces takes ≈ 15 ms a batch.
 */
const TAKE_WAIT_MS = 2000;

export abstract class NoticeContextPrefetcher {
  /**
   * The prefetcher for a store file in this mode; undefined when there can be none (in memory, no compiled thread
   * module, no thread to be had: a process at its thread limit).
   */
  static start(path: string, mode: PrefetchMode, cacheKiB: number): NoticeContextPrefetcher | undefined {
    if (mode === "off" || path === "" || path === ":memory:") return undefined;
    const driver = createRequire(import.meta.url).resolve("better-sqlite3");
    try {
      if (mode === "inline") return new InlinePrefetcher(path, driver);
      if (!existsSync(fileURLToPath(THREAD))) return undefined;
      return new ThreadPrefetcher(path, driver, cacheKiB);
    } catch {
      return undefined; // read in the transaction, as without
    }
  }

  /** Inside a notice transaction (its write lock held): asks for `keys`' context as the transaction began. Its number. */
  abstract ask(keys: NoticeContextKeys): number;
  /** Just before that transaction's COMMIT (or its rollback): whether the read was begun in time. */
  abstract close(e: number): boolean;
  /** The context read for request `e` (waiting for the thread to finish it), or undefined when it was not read. */
  abstract take(e: number): NoticeContextRead | undefined;
  abstract stop(): Promise<void>;
}

/** Reads on a thread of its own (sqlite-context-thread.ts). */
class ThreadPrefetcher extends NoticeContextPrefetcher {
  readonly #slots = new Int32Array(new SharedArrayBuffer(16));
  readonly #port: MessagePort;
  readonly #worker: Worker;
  #e = 0;
  #failed = false;

  constructor(path: string, driver: string, cacheKiB: number) {
    super();
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const data: ContextThreadData = { path, driver, cacheKiB, slots: this.#slots.buffer as SharedArrayBuffer, port: port2 };
    this.#worker = newThread(THREAD, { workerData: { jpkiNoticeContext: data }, transferList: [port2] });
    this.#worker.unref();
    this.#port.unref();
    const gone = () => {
      this.#failed = true;
    };
    this.#worker.on("error", gone);
    this.#worker.on("exit", gone);
  }

  ask(keys: NoticeContextKeys): number {
    if (this.#failed) return 0;
    const e = (this.#e = this.#e >= 0x3fff_ffff ? 1 : this.#e + 1);
    // Answers nobody took (reads begun too late) are dropped, so they do not pile up in the port.
    while (receiveMessageOnPort(this.#port));
    this.#port.postMessage({ e, keys } satisfies ContextRequest);
    Atomics.store(this.#slots, CONTEXT_SLOTS.window, e);
    Atomics.store(this.#slots, CONTEXT_SLOTS.asked, e);
    Atomics.notify(this.#slots, CONTEXT_SLOTS.asked);
    return e;
  }

  close(e: number): boolean {
    return e !== 0 && Atomics.compareExchange(this.#slots, CONTEXT_SLOTS.window, e, 0) === -e;
  }

  take(e: number): NoticeContextRead | undefined {
    const deadline = Date.now() + TAKE_WAIT_MS;
    for (let done; (done = Atomics.load(this.#slots, CONTEXT_SLOTS.done)) !== e; ) {
      const left = deadline - Date.now();
      if (left <= 0 || this.#failed) {
        // A thread that did not answer in all that time (gone, or starved) is asked nothing more: the transactions
        // read for themselves, as without it, rather than wait like this once a batch.
        this.#failed = true;
        return undefined;
      }
      Atomics.wait(this.#slots, CONTEXT_SLOTS.done, done, left);
    }
    let read: NoticeContextRead | undefined;
    for (let m; (m = receiveMessageOnPort(this.#port)); ) {
      const a = m.message as ContextAnswer;
      if (a.e === e && "read" in a) read = decodeContextRead(a.read);
    }
    return read;
  }

  async stop(): Promise<void> {
    if (this.#failed) return;
    const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    this.#worker.ref();
    Atomics.store(this.#slots, CONTEXT_SLOTS.stop, 1);
    Atomics.notify(this.#slots, CONTEXT_SLOTS.asked);
    await exited;
    this.#port.close();
  }
}

/** Reads at once, on a second connection in this thread: the protocol and checks without a thread (tests). */
class InlinePrefetcher extends NoticeContextPrefetcher {
  readonly #db: Database.Database;
  readonly #st: NoticeContextStatements;
  #e = 0;
  readonly #reads = new Map<number, NoticeContextRead>();

  constructor(path: string, driver: string) {
    super();
    this.#db = new (createRequire(import.meta.url)(driver) as typeof Database)(path, { readonly: true, fileMustExist: true });
    this.#st = prepareNoticeContext(this.#db);
  }

  ask(keys: NoticeContextKeys): number {
    const e = ++this.#e;
    this.#reads.clear();
    // Through the thread's encoding, so the tests cover it too.
    this.#reads.set(e, decodeContextRead(structuredClone(encodeContextRead(this.#db.transaction(() => readNoticeContext(this.#st, keys))()))));
    return e;
  }

  close(e: number): boolean {
    return this.#reads.has(e);
  }

  take(e: number): NoticeContextRead | undefined {
    const r = this.#reads.get(e);
    this.#reads.delete(e);
    return r;
  }

  async stop(): Promise<void> {
    this.#db.close();
  }
}
