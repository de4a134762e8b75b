/**
 * The link server's send (連携サーバ, shared/spec/JPKI.md "The link between the two networks" step 3): the change
 * notices the counter's procedures produced (registry/counter.ts) go to the CA side, either
 * - as one JSON Lines file in the CA's spool directory (`jpki watch DIR` takes it): written under a dot-name
 *   (store/staging.ts: .counter-….jsonl.PID~@NS.RANDOM.tmp), fsynced and renamed into place, so the watcher never
 *   sees half a file; a counter killed before the rename leaves that dot-name, which the watcher never takes and
 *   sweeps (ca/spool.ts); or
 * - straight to ingestion in this process (ca/ingestion.ts runIngest, the service `jpki notices ingest` runs),
 *   which revokes and regenerates the CRLs as today.
 *
 * Delivery goes through the registry's transactional outbox (store/types.ts OutboxNotice): the counter writes each
 * notice it decides there in the transaction that changes the record, and {@link deliverOutbox} sends what is
 * pending after the commit and only then acknowledges (deletes) it. A process killed between the commit and the
 * acknowledgement leaves the notice pending, and the next counter command, or `jpki counter deliver`, sends it:
 * at least once, never lost. Twice is harmless: the CA side's ingestion is idempotent by notice id (ca/notices.ts
 * Plan.offer: a notice id it already holds, applied or held, with the same canonical content counts as a
 * duplicate and changes nothing, so no certificate is revoked twice), and the outbox keeps the exact canonical
 * JSON, so a notice sent again has the same content as the first time.
 */
import { Readable } from "node:stream";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { CrlUpdater } from "../crl/updater.js";
import { JpkiError, isJpkiError } from "../errors.js";
import { runIngest, type IngestRunResult } from "../ca/ingestion.js";
import { DEFAULT_NOTICE_BATCH } from "../ca/notice-batch.js";
import { stageFile } from "../store/staging.js";
import { checkOutputDir } from "../workspace/paths.js";
import type { Workspace } from "../workspace/workspace.js";
import { noticeToInput, type ChangeNotice } from "./notice.js";

/** The workspace's default spool directory: where `jpki counter` leaves notices for `jpki watch`. */
export function defaultSpoolDir(ws: Workspace): string {
  return join(ws.paths.root, "spool");
}

/** The notices as canonical JSON Lines (schema/change-notice.schema.json). */
export function noticesJsonl(notices: readonly ChangeNotice[]): string {
  return notices.map((n) => JSON.stringify(noticeToInput(n)) + "\n").join("");
}

/**
 * Drops the notices into `dir` as one file, atomically (nothing when there are none). Returns its path. The
 * name sorts by time, so a watcher takes files in the order the counter wrote them.
 */
export function spoolNotices(dir: string, notices: readonly ChangeNotice[], now: Date): string | undefined {
  if (!notices.length) return undefined;
  return spoolJsonl(dir, noticesJsonl(notices), now);
}

function spoolJsonl(dir: string, jsonl: string, now: Date): string {
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const path = join(dir, `counter-${stamp}-${process.pid}-${randomBytes(4).toString("hex")}.jsonl`);
  try {
    checkSpoolDir(dir);
    stageFile(path, jsonl).install();
  } catch (e) {
    if (isJpkiError(e)) throw e;
    // A spool that is a file or a FIFO, a full disk, no permission: the operator's to fix, not an internal
    // failure with a stack trace. The notices stay pending either way.
    const code = (e as NodeJS.ErrnoException).code;
    throw new JpkiError("ERR_FILE_UNUSABLE", `the spool directory ${dir} cannot take the notices${code ? ` (${code})` : ""}: it must be a directory this user can write, on a disk with space`, {
      details: { path: dir },
      cause: e,
    });
  }
  return path;
}

/**
 * The spool directory, made when missing, checked as every output directory is (workspace/paths.ts): a path under
 * /proc made mkdirSync's recursive mode spin for ever, and one under /dev took the notices.
 */
function checkSpoolDir(dir: string): void {
  checkOutputDir(dir, "spool directory", { create: true });
}

/** Ingests the notices in this process, as `jpki notices ingest` would a file of them. */
export async function ingestNotices(ws: Workspace, notices: readonly ChangeNotice[], updater: CrlUpdater | undefined): Promise<IngestRunResult | undefined> {
  if (!notices.length) return undefined;
  return ingestJsonl(ws, noticesJsonl(notices), updater);
}

function ingestJsonl(ws: Workspace, jsonl: string, updater: CrlUpdater | undefined): Promise<IngestRunResult> {
  const stamp = ws.clock.now().toISOString().replace(/[:.]/g, "-");
  return runIngest(ws, {
    source: Readable.from([jsonl]),
    format: "jsonl",
    rejectPath: join(ws.paths.root, "rejects", `counter-${stamp}-${randomBytes(4).toString("hex")}.rejects.jsonl`),
    batchSize: DEFAULT_NOTICE_BATCH,
    crlIntervalMs: 0,
    updater,
    readerThread: false,
  });
}

/** Where pending notices go: a spool directory (for `jpki watch`), or ingestion in this process. */
export type DeliveryTarget = { readonly spool: string } | { readonly ingest: true; readonly updater: CrlUpdater | undefined };

export interface OutboxDelivery {
  /** notices delivered and acknowledged */
  readonly delivered: number;
  /** the spool files written, in order (one per page of pending notices) */
  readonly spooled: readonly string[];
  /** the ingestion runs, in order (one per page of pending notices) */
  readonly ingested: readonly IngestRunResult[];
}

/** Pending notices per spool file or ingestion run. */
const OUTBOX_PAGE = 5000;

/**
 * Delivers every notice pending in the registry's outbox, oldest first (so a resident's in sequence order), a
 * page at a time: the page goes to the spool as one atomic file, or through ingestion here, and only once that
 * is durable are its rows acknowledged. A failure before the acknowledgement leaves them pending for the next
 * delivery. An ingestion that rejects a notice has still delivered it: the verdict, in the reject file, would
 * be the same every time, so it is acknowledged too (and the caller reports the rejection). An ingestion whose CRL
 * fails after its notices were applied is not acknowledged either: the next delivery sends them again, and they are
 * duplicates there — no second revocation, no second notice.batch audit record, the CA's CRL published by
 * whichever run gets to it (test/integration/counter.test.ts checks it).
 *
 * Concurrency: rows are not claimed. Two deliverers running at once may both send a notice; the CA side then
 * applies it once (ingestion is idempotent by notice id, see the file comment) and each acknowledges what it
 * sent, so nothing is lost or applied twice. Nor can a resident's notices overtake each other for good: a
 * notice stays pending until it has been delivered, so whoever sends a later one sends the earlier one first
 * or after it was delivered; and ingestion holds a notice whose predecessor has not arrived until it does.
 */
export async function deliverOutbox(ws: Workspace, to: DeliveryTarget, opts: { readonly pageSize?: number } = {}): Promise<OutboxDelivery> {
  const size = opts.pageSize ?? OUTBOX_PAGE;
  const spooled: string[] = [];
  const ingested: IngestRunResult[] = [];
  let delivered = 0;
  // Checked whether or not anything is pending: a spool that can take nothing is refused on the quiet day too,
  // not first on the day a notice has to go there.
  if ("spool" in to) checkSpoolDir(to.spool);
  for (;;) {
    const page = await ws.store.pendingOutbox(size);
    if (!page.length) break;
    const jsonl = page.map((n) => n.body + "\n").join("");
    if ("spool" in to) spooled.push(spoolJsonl(to.spool, jsonl, ws.clock.now()));
    else ingested.push(await ingestJsonl(ws, jsonl, to.updater));
    await ws.store.ackOutbox(page.map((n) => n.noticeId));
    delivered += page.length;
    if (page.length < size) break;
  }
  return { delivered, spooled, ingested };
}
