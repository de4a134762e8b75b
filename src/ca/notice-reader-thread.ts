/**
 * The read stage of notice ingestion on a thread of its own (ca/notice-reader.ts starts it): reads the file,
 * parses and checks each notice (readBatches), and posts the batches to the ingesting thread, which commits
 * one batch while this thread reads the next. Started as a worker; importing it elsewhere does nothing.
 *
 * Protocol: the ingesting thread sends `{ now }` once per batch it wants (the time to check that batch's
 * notices against, read from its injected clock); this thread answers each with one `ReadBatchMessage`.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { isJpkiError } from "../errors.js";
import { readRecords, type ImportFormat } from "../registry/import.js";
import { readBatches } from "./notices.js";
import { batchMessage, type ReaderMessage, type ReaderOptions } from "./notice-reader.js";

async function main(port: NonNullable<typeof parentPort>, o: ReaderOptions): Promise<void> {
  let now = Date.now();
  const wanted: Array<() => void> = [];
  let credit = 0;
  port.on("message", (m: { now: number }) => {
    now = m.now;
    credit++;
    wanted.shift()?.();
  });
  const post = (m: ReaderMessage) => port.postMessage(m);
  let bytes = 0;
  try {
    const records = readRecords(o.path, { format: o.format as ImportFormat | "auto", rejectDuplicateKeys: true, onBytes: (n) => (bytes += n) });
    const batches = readBatches(records, { now: () => new Date(now) }, o.batchSize);
    for (;;) {
      if (credit === 0) await new Promise<void>((resolve) => wanted.push(resolve));
      credit--;
      const next = await batches.next();
      if (next.done) break;
      const { message, transfer } = batchMessage(next.value, bytes);
      port.postMessage(message, transfer);
      bytes = 0;
    }
    post({ type: "end", bytes });
  } catch (e) {
    post({
      type: "error",
      error: isJpkiError(e) ? { code: e.code, message: e.message, ...(e.details ? { details: { ...e.details } } : {}) } : { message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack },
    });
  } finally {
    // Nothing keeps the thread alive then: it ends once the messages are out.
    port.removeAllListeners("message");
    port.unref();
  }
}

if (!isMainThread && parentPort && (workerData as { jpkiNoticeReader?: ReaderOptions } | undefined)?.jpkiNoticeReader) {
  void main(parentPort, (workerData as { jpkiNoticeReader: ReaderOptions }).jpkiNoticeReader);
}
