/**
 * One ingestion run over a file of change notices (異動等情報の通知): notices → revocations → CRLs, with
 * the rejected notices in a reject file. A library service: `jpki notices ingest`, `jpki watch` and later
 * the server all call it, none holds logic the others need.
 *
 * The result tells the truth about what was applied: CRLs are published for every batch that committed,
 * also when the run then fails (an unreadable file, a store error) — the error is raised afterwards.
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { scopeKind, type ScopeKind } from "../crl/scope.js";
import type { PublishedCrl } from "../crl/publisher.js";
import type { CrlUpdater } from "../crl/updater.js";
import { JpkiError, type ErrorCode } from "../errors.js";
import { readRecords } from "../registry/import.js";
import { releaseStream } from "../registry/reading-stop.js";
import { installNew, sweepStaleTemps, tempPathFor } from "../store/staging.js";
import { checkOutputDir } from "../workspace/paths.js";
import type { Workspace } from "../workspace/workspace.js";
import { interimRoundDue } from "./interim-crl-round.js";
import { readBatchesOnThread, readerThreadFits } from "./notice-reader.js";
import { NoticeIngestor, readBatches, type IngestProgress, type IngestSummary, type ReadBatch, type RejectedNotice } from "./notices.js";

/** How many names a reject file tries (PATH, PATH-2, …) before it gives up: a directory full of them is a mistake. */
const MAX_REJECT_NAMES = 10_000;

/**
 * The names a reject file at `path` may take, in order: the path itself, then a number before its extension —
 * feed.jsonl-STAMP.rejects.jsonl, feed.jsonl-STAMP-2.rejects.jsonl, …; out.jsonl, out-2.jsonl, …
 */
export function* rejectFileNames(path: string): Generator<string> {
  yield path;
  const name = basename(path);
  const dot = name.endsWith(".rejects.jsonl") ? name.length - ".rejects.jsonl".length : name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  for (let k = 2; k <= MAX_REJECT_NAMES; k++) yield join(dirname(path), `${stem}-${k}${ext}`);
}

/**
 * Refuses a reject file path where something already is (ERR_REJECT_FILE_EXISTS): a reject file may be the only
 * record of which notices an earlier run refused and why, so one is never replaced, nor added to (its line numbers
 * would then point into two inputs, and a rerun of the same input would list its rejects twice).
 */
export function checkRejectFileFree(path: string): void {
  try {
    lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    throw new JpkiError("ERR_FILE_UNUSABLE", `reject file ${path}: cannot be looked at${code ? ` (${code})` : ""}: choose another --reject-file`, { cause: e, details: { path } });
  }
  throw new JpkiError(
    "ERR_REJECT_FILE_EXISTS",
    `reject file ${path} already exists: it may be the only record of an earlier run's rejected notices, so it is never replaced or added to; move it away, or name a new file with --reject-file (without it, each run gets a new file in the workspace's rejects/)`,
    { details: { path } },
  );
}

/**
 * Rejected notices go to a file written beside and installed at the end (never half a file). It never replaces a
 * file: it is hard-linked in under the first free name of {@link rejectFileNames} — a reject file another run
 * made meanwhile under the same name (two runs in one millisecond, two hosts on one workspace) keeps its name,
 * and this one takes the next — unless `replace` says the name is the caller's own (a spool claim's sidecar).
 * A file system failure (no space, the directory gone) is ERR_FILE_UNUSABLE naming the reject file.
 */
export class RejectFile {
  readonly path: string;
  readonly #replace: boolean;
  #fd: number | undefined;
  readonly #tmp: string;
  count = 0;
  constructor(path: string, opts: { readonly replace?: boolean } = {}) {
    this.path = path;
    this.#replace = opts.replace === true;
    this.#tmp = tempPathFor(path);
  }
  write(r: RejectedNotice): void {
    try {
      if (this.#fd === undefined) {
        mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
        this.#fd = openSync(this.#tmp, "wx", 0o600);
      }
      writeSync(this.#fd, JSON.stringify({ line: r.line, code: r.code, reason: r.message, ...(r.record ? { record: r.record } : {}) }) + "\n");
    } catch (e) {
      throw this.#unusable(e);
    }
    this.count++;
  }
  /** Installs the reject file (none when nothing was rejected); returns where it went. */
  close(): string | undefined {
    if (this.#fd === undefined) return undefined;
    let placed: string | undefined;
    try {
      fsyncSync(this.#fd);
      closeSync(this.#fd);
      this.#fd = undefined;
      if (this.#replace) {
        renameSync(this.#tmp, this.path);
        placed = this.path;
      } else {
        placed = installNew(this.#tmp, rejectFileNames(this.path));
      }
    } catch (e) {
      throw this.#unusable(e);
    }
    if (placed === undefined) throw this.#unusable(undefined, `it and the next ${MAX_REJECT_NAMES - 1} numbered names are all taken`);
    return placed;
  }
  abandon(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.#tmp, { force: true });
  }
  #unusable(e: unknown, why?: string): JpkiError {
    const code = (e as NodeJS.ErrnoException)?.code;
    return new JpkiError("ERR_FILE_UNUSABLE", `reject file ${this.path}: cannot be written${code ? ` (${code})` : ""}${why ? ` (${why})` : ""}: free space or choose another --reject-file; the notices taken so far stay taken, and running the same input again writes their rejects anew`, {
      ...(e === undefined ? {} : { cause: e }),
      details: { path: this.path },
    });
  }
}

export interface IngestRunOptions {
  readonly source: string | NodeJS.ReadableStream;
  readonly format: "auto" | "jsonl" | "csv";
  readonly rejectPath: string;
  /**
   * When something is at `rejectPath` already: "next" (default), the rejects go under the next free name
   * ({@link rejectFileNames}); "refuse", ERR_REJECT_FILE_EXISTS before anything is applied (an operator's own
   * --reject-file); "replace", the name is the caller's own and is replaced (a spool claim's sidecar, cleared
   * before the run). With "next" and "refuse", a file someone puts there during the run is never replaced either:
   * the rejects go under the next free name, and `rejectFile` in the result says which.
   */
  readonly rejectFileExists?: "next" | "refuse" | "replace";
  /**
   * Sweep the reject file's directory of temporary files nobody writes any more (default true; store/staging.ts).
   * False for a spool's processing/, whose leftovers its claims account for (ca/spool-claim.ts).
   */
  readonly sweepRejectDir?: boolean;
  readonly batchSize: number;
  /** at most one CRL per CA per this many ms during a long run (always one at the end) */
  readonly crlIntervalMs: number;
  /** publishes CRLs; without one the CAs stay due and the next run or `crl generate` publishes */
  readonly updater: CrlUpdater | undefined;
  /**
   * Stops the run after the batch in progress (`stopped`, `lastLine`); a stream given as the source is destroyed when
   * the stop comes while it waits for its next lines (a pipe), so the stop does not wait for them
   */
  readonly signal?: AbortSignal;
  /** bytes read from the input, for a progress bar */
  readonly onBytes?: (n: number) => void;
  readonly onProgress?: (p: IngestProgress) => void;
  /**
   * Read, parse and check the notices on a reader thread while the store commits (ca/notice-reader.ts):
   * "auto" (default) for a file of 1 MiB or more, true for any file, false never. A stream is always read here.
   */
  readonly readerThread?: boolean | "auto";
  /**
   * The CRLs published after the last batch, when one of them cannot be (a CA's crl/ entry unusable): "throw"
   * (default) raises that failure, the rejects kept; "report" returns it as `crlFailure` with the run's result, so
   * the caller reports the notices applied and the CRLs published before it raises it.
   */
  readonly crlFailure?: "throw" | "report";
}

export interface IngestRunResult extends IngestSummary {
  /** where the rejected notices went (see rejectFileExists: not always rejectPath), null when none was rejected */
  readonly rejectFile: string | null;
  /**
   * the rejected notices' codes, counted, and the code of the first (by line): what a run that took none of its
   * notices fails with (cli/batch-outcome.ts), where one that took some is "partially applied"
   */
  readonly rejectedByCode: Readonly<Record<string, number>>;
  readonly firstRejectCode: ErrorCode | null;
  /**
   * the CRLs published: each CA's full CRL or, with delta CRLs on and the base young, a delta on it (scope "delta",
   * baseNumber), and its partitions that changed (scope "partition", municipality); the scopes as `crl generate` names them
   */
  /** each CRL published: its CA as `caId`, and as `ca`, the same value under its first name (deprecated, kept for scripts) */
  readonly crls: Array<{ caId: string; ca: string; scope: ScopeKind; municipality?: string; baseNumber?: string; number: string; entries: number; path: string }>;
  readonly seconds: number;
  /** with `crlFailure: "report"`: why a CRL due after the last batch was not published (its CA stays due) */
  readonly crlFailure?: unknown;
}

/** The batches of a run stopped before it read anything. */
async function* noBatches(): AsyncGenerator<ReadBatch> {}

export async function runIngest(ws: Workspace, o: IngestRunOptions): Promise<IngestRunResult> {
  const started = Date.now();
  // Where the rejects go is settled before anything is applied: a run that committed batches and then found
  // the rejects directory to be a file (or unwritable) crashed half-way, and every rerun crashed the same way.
  checkOutputDir(dirname(o.rejectPath), "reject file directory", { create: true });
  if (o.rejectFileExists === "refuse") checkRejectFileFree(o.rejectPath);
  if (o.sweepRejectDir !== false) sweepStaleTemps(dirname(o.rejectPath));
  const rejects = new RejectFile(o.rejectPath, { replace: o.rejectFileExists === "replace" });
  const ingestor = new NoticeIngestor({ store: ws.store, clock: ws.clock });
  const crlsBefore = o.updater?.published.length ?? 0;
  let pendingCas = new Set<string>();
  let lastCrl = Date.now();
  // How far through its input the run is, for the interim rounds (ca/interim-crl-round.ts): a file's size, and the
  // bytes read of it so far.
  const totalBytes = fileSize(o.source);
  let bytesRead = 0;
  const onBytes = (n: number) => {
    bytesRead += n;
    o.onBytes?.(n);
  };
  let summary: IngestSummary;
  const byCode: Record<string, number> = {};
  let firstReject: { line: number; code: ErrorCode } | undefined;
  try {
    // CAs left due by an earlier, interrupted run get their CRL first. One that cannot be published (its crl/ entry
    // unusable) stops nothing: it used to fail every run before it applied a notice, so no revocation of any CA went
    // in while it lasted. It stays due, and the publication after the last batch tries it again and says why.
    // Stopped before it began (a SIGTERM in the command's start-up, held by the launcher: bin/early-stop.cjs): nothing
    // is published, nothing read — it read and committed a first batch, and a rerun found that much done.
    const stoppedBefore = o.signal?.aborted === true;
    if (o.updater && !stoppedBefore) await o.updater.regenerateDirty().catch(() => undefined);
    const threaded = o.readerThread !== false && readerThreadFits(o.source, o.readerThread === true ? 0 : undefined);
    const inThread = () => readBatches(readRecords(o.source, { format: o.format, rejectDuplicateKeys: true, onBytes }), ws.clock, o.batchSize);
    const batches = stoppedBefore
      ? noBatches()
      : threaded
        ? readBatchesOnThread({ path: o.source as string, format: o.format, batchSize: o.batchSize, clock: ws.clock, onBytes, inThread })
        : inThread();
    summary = await ingestor.ingestBatches(batches, {
      batchSize: o.batchSize,
      ...(o.signal ? { signal: o.signal } : {}),
      // a stream (a pipe) may wait for ever for its next lines: a stop then destroys it (a file never waits long)
      ...(o.signal && typeof o.source !== "string" ? { release: releaseStream(o.source) } : {}),
      onReject: (r) => {
        byCode[r.code] = (byCode[r.code] ?? 0) + 1;
        if (!firstReject || r.line < firstReject.line) firstReject = { line: r.line, code: r.code };
        rejects.write(r);
      },
      ...(o.onProgress ? { onProgress: o.onProgress } : {}),
      onBatchCommitted: async (cas) => {
        for (const c of cas) pendingCas.add(c);
        if (o.updater && interimRoundDue({ now: Date.now(), started, lastRound: lastCrl, intervalMs: o.crlIntervalMs, bytesRead, totalBytes })) {
          // As above: a CA whose CRL cannot be published stays due for the publication after the last batch, and
          // the notices after this batch are still applied (they were not: the run stopped half-way through its file).
          await o.updater.regenerate([...pendingCas]).catch(() => undefined);
          pendingCas = new Set();
          lastCrl = Date.now();
        }
      },
    });
    if (stoppedBefore) summary = { ...summary, stopped: true };
  } catch (e) {
    // What committed before the failure is revoked: publish it before reporting the failure, and keep the
    // rejects seen so far (they are real).
    if (o.updater) await o.updater.regenerateDirty().catch(() => undefined);
    try {
      rejects.close();
    } catch {
      rejects.abandon();
    }
    throw e;
  }
  let crlFailure: { e: unknown } | undefined;
  try {
    if (o.updater) await o.updater.regenerateDirty();
  } catch (e) {
    // The notices are applied and their rejects are real: the reject file is put in place either way. It stayed a
    // temporary file, open, and went with the next sweep: the rejected notices were lost.
    if (o.crlFailure !== "report") {
      try {
        rejects.close();
      } catch {
        rejects.abandon();
      }
      throw e;
    }
    crlFailure = { e };
  }
  // The run is reported done (and a spool file settles into done/): what it applied must outlive a power cut,
  // notices that revoked nothing too — a CRL's install syncs only when there was something to publish.
  await ws.store.syncCommitted();
  const rejectFile = rejects.close() ?? null;
  const crls = publishedCrls(o.updater?.published.slice(crlsBefore) ?? []);
  return { ...summary, rejectFile, rejectedByCode: byCode, firstRejectCode: firstReject?.code ?? null, crls, seconds: (Date.now() - started) / 1000, ...(crlFailure ? { crlFailure: crlFailure.e } : {}) };
}

/** The size of a regular file given as the input; undefined for a stream or anything else. */
function fileSize(source: string | NodeJS.ReadableStream): number | undefined {
  if (typeof source !== "string") return undefined;
  try {
    const st = statSync(source);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined; // the read stage reports an unreadable file, with its usual error
  }
}

/**
 * The CRLs a run published, as its result names them (IngestRunResult.crls): each scope said, so a partition's CRL is
 * not taken for its CA's full one. Also for an operator's release of held notices (`notices pending --release`).
 */
export function publishedCrls(published: readonly PublishedCrl[]): IngestRunResult["crls"] {
  return published
    .filter((c) => !c.superseded)
    .map((c) => ({
      caId: c.caId,
      ca: c.caId,
      scope: scopeKind(c.scope),
      ...(scopeKind(c.scope) === "partition" ? { municipality: c.scope } : {}),
      ...(c.baseNumber !== undefined ? { baseNumber: c.baseNumber.toString() } : {}),
      number: c.number.toString(),
      entries: c.entries,
      path: c.derPath,
    }));
}
