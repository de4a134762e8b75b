/**
 * The link server's send (連携サーバ, shared/spec/JPKI.md "The link between the two networks" step 3): the change
 * notices the counter's procedures produced (registry/counter.ts) go to the CA side, either
 * - as one JSON Lines file in the CA's spool directory (`jpki watch DIR` takes it): written under a dot-name,
 *   fsynced and renamed into place, so the watcher never sees half a file; or
 * - straight to ingestion in this process (ca/ingestion.ts runIngest, the service `jpki notices ingest` runs),
 *   which revokes and regenerates the CRLs as today.
 *
 * Known gap (ours): the notices are sent after the registry's transaction commits; a process killed between the
 * two loses them (the records changed, the CA side never hears). An outbox table written in that transaction
 * would close it.
 */
import { Readable } from "node:stream";
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { CrlUpdater } from "../crl/updater.js";
import { runIngest, type IngestRunResult } from "../ca/ingestion.js";
import { stageFile } from "../store/staging.js";
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
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const path = join(dir, `counter-${stamp}-${process.pid}-${randomBytes(4).toString("hex")}.jsonl`);
  stageFile(path, noticesJsonl(notices)).install();
  return path;
}

/** Ingests the notices in this process, as `jpki notices ingest` would a file of them. */
export async function ingestNotices(ws: Workspace, notices: readonly ChangeNotice[], updater: CrlUpdater | undefined): Promise<IngestRunResult | undefined> {
  if (!notices.length) return undefined;
  const stamp = ws.clock.now().toISOString().replace(/[:.]/g, "-");
  return runIngest(ws, {
    source: Readable.from([noticesJsonl(notices)]),
    format: "jsonl",
    rejectPath: join(ws.paths.root, "rejects", `counter-${stamp}.rejects.jsonl`),
    batchSize: 1000,
    crlIntervalMs: 0,
    updater,
    readerThread: false,
  });
}
