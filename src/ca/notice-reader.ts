/**
 * Reads a notice file on a reader thread (ca/notice-reader-thread.ts), so the ingesting thread spends its time
 * on the store: reading, parsing and checking a batch (readBatches) overlaps the commit of the batch before.
 * Measured at 1M residents, the read stage was about a fifth of the ingesting thread's time.
 *
 * The batches are exactly those readBatches makes in this thread (same notices, same rejects, same order),
 * checked against the same injected clock: the ingesting thread sends its clock's time with each request.
 * Used for files large enough to repay starting a thread, and only where the compiled thread module exists
 * (not when the TypeScript sources run directly, as in unit tests: there the read stage stays in this thread).
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { JpkiError, type ErrorCode } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import type { ReadBatch, ReadNotice, RejectedNotice } from "./notices.js";

/** What the thread is started with (workerData.jpkiNoticeReader). */
export interface ReaderOptions {
  readonly path: string;
  readonly format: string;
  readonly batchSize: number;
}

/** What the thread posts: one batch per request, then the end or the error that ended the reading. */
export type ReaderMessage =
  | { readonly type: "batch"; readonly bytes: number; readonly read: number; readonly notices: readonly (ReadNotice & { record?: string })[]; readonly rejects: readonly RejectedNotice[] }
  | { readonly type: "end"; readonly bytes: number }
  | { readonly type: "error"; readonly error: { code?: ErrorCode; message: string; details?: Record<string, unknown>; stack?: string } };

/** Where a batch's bodies are written before they are copied out: kept, as it is the size of the largest batch's. */
let scratch = Buffer.allocUnsafeSlow(0);

/**
 * A batch as the thread posts it, with what to transfer. The bodies are UTF-8 bytes, views into one buffer that moves
 * to the ingesting thread without a copy: that thread binds them as they are, where a string cost it a conversion to
 * UTF-8 per notice (≈ 12k instructions), and a two-byte string copied across besides. The record goes as JSON text:
 * a string crosses as one copy, where an object would be rebuilt property by property on the other side; it is
 * parsed again only for a reject. A line that was the canonical body already (but perhaps for a defaulted field, then
 * named as `added`) goes once, as the body.
 */
export function batchMessage(b: ReadBatch, bytes: number): { message: ReaderMessage; transfer: ArrayBuffer[] } {
  const bodies = b.notices.map((n) => n.body);
  let size = 0;
  // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4): room for any body.
  for (const x of bodies) size += typeof x === "string" ? x.length * 3 : x.length;
  if (scratch.length < size) scratch = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const ends = bodies.map((x) => (at += typeof x === "string" ? scratch.write(x, at, "utf8") : (scratch.set(x, at), x.length)));
  // Copied out at its exact size (under half the bound): V8 counts a transferred buffer against this thread until a
  // collection, and buffers of the bound made its full collections about 5× costlier (callgrind, 6,000 notices). Its
  // own ArrayBuffer, not the shared pool's, since it is transferred; not zeroed, as every byte is written.
  const buf = Buffer.allocUnsafeSlow(at);
  scratch.copy(buf, 0, 0, at);
  const views = ends.map((end, i) => new Uint8Array(buf.buffer, i ? ends[i - 1]! : 0, end - (i ? ends[i - 1]! : 0)));
  const notices = b.notices.map((n, i) =>
    n.record !== undefined
      ? { line: n.line, notice: n.notice, body: views[i]!, record: typeof n.record === "string" ? n.record : JSON.stringify(n.record) }
      : n.added !== undefined
        ? { line: n.line, notice: n.notice, body: views[i]!, added: n.added }
        : { line: n.line, notice: n.notice, body: views[i]! },
  );
  return { message: { type: "batch", bytes, read: b.read, rejects: b.rejects, notices }, transfer: [buf.buffer as ArrayBuffer] };
}

/** Files below this size are read in the ingesting thread: starting a thread costs more than it saves. */
export const READER_THREAD_MIN_BYTES = 1 << 20;

const THREAD = new URL("./notice-reader-thread.js", import.meta.url);

/** Batches requested ahead of the one being committed. */
const AHEAD = 2;

/** Whether a reader thread can read this source: a regular file of some size, and the compiled thread module. */
export function readerThreadFits(source: string | NodeJS.ReadableStream, minBytes = READER_THREAD_MIN_BYTES): source is string {
  if (typeof source !== "string") return false;
  try {
    return existsSync(fileURLToPath(THREAD)) && statSync(source).isFile() && statSync(source).size >= minBytes;
  } catch {
    return false; // the read stage reports an unreadable file, with its usual error
  }
}

/**
 * The batches of `path`, read on a reader thread. Stopping early (return) ends the thread. A thread that cannot be
 * made (ERR_WORKER_INIT_FAILED, thrown by the Worker constructor when the process is at its thread limit: a
 * container's pids.max, systemd's TasksMax) leaves the reading to `inThread`, the same batches read here.
 */
export async function* readBatchesOnThread(
  o: ReaderOptions & { clock: Clock; onBytes?: (n: number) => void; inThread: () => AsyncIterable<ReadBatch> },
): AsyncGenerator<ReadBatch, void, undefined> {
  let worker: Worker;
  try {
    worker = newThread(THREAD, { workerData: { jpkiNoticeReader: { path: o.path, format: o.format, batchSize: o.batchSize } satisfies ReaderOptions } });
  } catch {
    // Not a reason to refuse the file: the read stage is only slower in the ingesting thread.
    return yield* o.inThread();
  }
  const inbox: ReaderMessage[] = [];
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  worker.on("message", (m: ReaderMessage) => (inbox.push(m), wake?.()));
  worker.on("error", (e) => ((failure = e), wake?.()));
  worker.on("exit", () => ((failure ??= new JpkiError("ERR_INTERNAL", "the notice reader thread ended before the end of the input")), wake?.()));
  const ask = () => worker.postMessage({ now: o.clock.now().getTime() });
  try {
    for (let i = 0; i < AHEAD; i++) ask();
    for (;;) {
      while (!inbox.length && !failure) await new Promise<void>((resolve) => (wake = resolve));
      const m = inbox.shift();
      if (!m) throw failure!;
      if (m.type !== "error" && m.bytes) o.onBytes?.(m.bytes);
      if (m.type === "end") return;
      if (m.type === "error") {
        const e = m.error;
        if (e.code) throw new JpkiError(e.code, e.message, e.details ? { details: e.details } : undefined);
        const bug = new Error(e.message);
        if (e.stack) bug.stack = e.stack;
        throw bug;
      }
      ask();
      yield { notices: m.notices, rejects: m.rejects, read: m.read };
    }
  } finally {
    await worker.terminate();
  }
}
