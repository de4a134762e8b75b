/**
 * The context thread of a SQLite store (store/notice-prefetch.ts starts it): reads the next notice batch's context
 * on a read-only connection of its own while the committing thread commits the batch before. Started as a worker;
 * importing it elsewhere does nothing.
 *
 * Synchronous on purpose: it sleeps in Atomics.wait, not in an event loop, and takes its requests with
 * receiveMessageOnPort. A request is answerable only while the committing thread holds the write lock of the
 * transaction that asked for it (the shared window slot), so it must begin its read within microseconds of the
 * wake, not after whatever a loop would run first.
 */
import { createRequire } from "node:module";
import { isMainThread, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import type Database from "better-sqlite3";
import { CONTEXT_SLOTS, type ContextAnswer, type ContextRequest, type ContextThreadData } from "./notice-prefetch.js";
import { encodeContextRead, prepareNoticeContext, readNoticeContext } from "./sqlite-notice-context.js";

function main(o: ContextThreadData): void {
  const slots = new Int32Array(o.slots);
  const port: MessagePort = o.port;
  const Driver = createRequire(import.meta.url)(o.driver) as typeof Database;
  // Read-only: this connection never writes, so a kill at any moment leaves nothing of it to undo.
  const db = new Driver(o.path, { readonly: true, fileMustExist: true });
  db.pragma("busy_timeout = 1000");
  db.pragma("mmap_size = 0"); // as the committing connection (SqliteStore's #connect says why)
  db.pragma(`cache_size = -${o.cacheKiB}`);
  const st = prepareNoticeContext(db);
  const begin = db.prepare("BEGIN");
  const end = db.prepare("COMMIT");
  // Any read of a table begins the read transaction: its snapshot is the one the whole read then sees.
  const pin = db.prepare("SELECT 1 FROM residents LIMIT 1");
  let seen = Atomics.load(slots, CONTEXT_SLOTS.asked);
  while (Atomics.load(slots, CONTEXT_SLOTS.stop) === 0) {
    // A timeout, so a stop is seen even should its wake be missed.
    Atomics.wait(slots, CONTEXT_SLOTS.asked, seen, 1000);
    seen = Atomics.load(slots, CONTEXT_SLOTS.asked);
    // The latest request only: an earlier one's window has closed (its transaction asked for this one since).
    let request: ContextRequest | undefined;
    for (let m; (m = receiveMessageOnPort(port)); ) request = m.message as ContextRequest;
    if (!request) continue;
    const e = request.e;
    let answer: ContextAnswer;
    try {
      begin.run();
      pin.get();
      // Taken while the window was open: the committing thread held the write lock, had not committed, so this
      // snapshot is the state its transaction began from. Too late, and what it would read is of unknown age.
      answer = Atomics.compareExchange(slots, CONTEXT_SLOTS.window, e, -e) === e ? { e, read: encodeContextRead(readNoticeContext(st, request.keys)) } : { e, missed: true };
    } catch (err) {
      answer = { e, failed: (err as Error)?.message ?? String(err) };
    } finally {
      if (db.inTransaction) end.run();
    }
    port.postMessage(answer);
    Atomics.store(slots, CONTEXT_SLOTS.done, e);
    Atomics.notify(slots, CONTEXT_SLOTS.done);
  }
  db.close();
  port.close();
}

if (!isMainThread && (workerData as { jpkiNoticeContext?: ContextThreadData } | undefined)?.jpkiNoticeContext) {
  main((workerData as { jpkiNoticeContext: ContextThreadData }).jpkiNoticeContext);
}
