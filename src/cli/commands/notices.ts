/** `jpki notices ingest|pending`: change notices (異動等情報の通知) from the registry revoke certificates. */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync, fsyncSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { NoticeIngestor, type IngestSummary, type RejectedNotice } from "../../index.js";
import { CrlUpdater } from "../../index.js";
import { JpkiError } from "../../index.js";
import { readRecords } from "../../index.js";
import type { Workspace } from "../../index.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import { fileProgress, type Io } from "../output.js";

/** Rejected notices go to a file written beside and renamed into place at the end (never half a file). */
export class RejectFile {
  readonly path: string;
  #fd: number | undefined;
  #tmp: string;
  count = 0;
  constructor(path: string) {
    this.path = path;
    this.#tmp = join(dirname(path), `.${Date.now()}.${process.pid}.rejects.tmp`);
  }
  write(r: RejectedNotice): void {
    if (this.#fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.#fd = openSync(this.#tmp, "w", 0o600);
    }
    writeSync(this.#fd, JSON.stringify({ line: r.line, code: r.code, reason: r.message, ...(r.record ? { record: r.record } : {}) }) + "\n");
    this.count++;
  }
  close(): string | undefined {
    if (this.#fd === undefined) return undefined;
    fsyncSync(this.#fd);
    closeSync(this.#fd);
    this.#fd = undefined;
    renameSync(this.#tmp, this.path);
    return this.path;
  }
  abandon(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    rmSync(this.#tmp, { force: true });
  }
}

export interface IngestRunOptions {
  readonly source: string | NodeJS.ReadableStream;
  readonly format: "auto" | "jsonl" | "csv";
  readonly rejectPath: string;
  readonly batchSize: number;
  readonly crlIntervalMs: number;
  readonly updater: CrlUpdater | undefined;
  readonly signal?: AbortSignal;
  readonly onProgress?: (s: string) => void;
}

export interface IngestRunResult extends IngestSummary {
  readonly rejectFile: string | null;
  readonly crls: Array<{ ca: string; number: string; entries: number; path: string }>;
  readonly seconds: number;
}

/** One ingestion run over a file: notices → revocations → CRLs (shared by `notices ingest` and `watch`). */
export async function runIngest(ws: Workspace, o: IngestRunOptions): Promise<IngestRunResult> {
  const started = Date.now();
  const rejects = new RejectFile(o.rejectPath);
  const ingestor = new NoticeIngestor({ store: ws.store, clock: ws.clock });
  const crlsBefore = o.updater?.published.length ?? 0;
  let pendingCas = new Set<string>();
  let lastCrl = Date.now();
  try {
    // CAs left dirty by an earlier, interrupted run get their CRL first.
    if (o.updater) await o.updater.regenerateDirty();
    const progress = fileProgress(o.source);
    const summary = await ingestor.ingest(readRecords(o.source, { format: o.format, onBytes: progress.onBytes }), {
      batchSize: o.batchSize,
      ...(o.signal ? { signal: o.signal } : {}),
      onReject: (r) => rejects.write(r),
      onProgress: (p) =>
        o.onProgress?.(
          `${progress.bar()}read ${p.read}  applied ${p.applied}  duplicates ${p.duplicates}  held ${p.held}  rejected ${p.rejected}  revoked ${p.revocations}  (${(p.read / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(0)}/s)`,
        ),
      onBatchCommitted: async (cas) => {
        for (const c of cas) pendingCas.add(c);
        if (o.updater && Date.now() - lastCrl >= o.crlIntervalMs) {
          await o.updater.regenerate([...pendingCas]);
          pendingCas = new Set();
          lastCrl = Date.now();
        }
      },
    });
    if (o.updater) await o.updater.regenerateDirty();
    const rejectFile = rejects.close() ?? null;
    const crls = (o.updater?.published.slice(crlsBefore) ?? []).map((c) => ({ ca: c.caId, number: c.number.toString(), entries: c.entries, path: c.derPath }));
    return { ...summary, rejectFile, crls, seconds: (Date.now() - started) / 1000 };
  } catch (e) {
    rejects.abandon();
    throw e;
  }
}

export function formatIngest(r: IngestRunResult): string {
  const nothing = r.applied === 0 && r.held === 0 && r.rejected === 0 && r.duplicates === r.read && r.read > 0;
  return [
    nothing
      ? `nothing changed: all ${r.read} notices were already ingested`
      : `read ${r.read}: applied ${r.applied}, duplicates ${r.duplicates}, held ${r.held}, released ${r.released}, rejected ${r.rejected} in ${r.seconds.toFixed(1)} s`,
    `revocations ${r.revocations}${Object.keys(r.revocationsByReason).length ? ": " + Object.entries(r.revocationsByReason).map(([k, v]) => `${k} ${v}`).join(", ") : ""}`,
    ...(r.crls.length ? [`CRLs regenerated: ${r.crls.map((c) => `${c.ca} #${c.number} (${c.entries})`).join(", ")}`] : []),
    ...(r.rejectFile ? [`rejected notices written to ${r.rejectFile}`] : []),
    ...(r.stopped ? ["stopped before the end of the input: run the same command again to resume"] : []),
  ].join("\n");
}

export function makeNoticesCommand(io: Io): Command {
  const notices = new Command("notices").description("change notices from the registry (異動等情報の通知): revoke what no longer holds, regenerate CRLs");

  notices
    .command("ingest")
    .description("ingest a notice file: idempotent by notice id, ordered per resident, batched, resumable")
    .argument("<file>", "JSON Lines (canonical, schema/change-notice.schema.json) or CSV; '-' reads JSON Lines from stdin")
    .addOption(new Option("--format <format>", "input format").choices(["auto", "jsonl", "csv"]).default("auto"))
    .option("--reject-file <file>", "where rejected notices go (default: the workspace's rejects/<file>-<time>.rejects.jsonl)")
    .option("--batch-size <n>", "notices per transaction", "1000")
    .option("--crl-interval <seconds>", "at most one CRL per CA per this many seconds during a long run (always one at the end)", "30")
    .option("--no-crl", "do not regenerate CRLs (the CAs stay marked; the next run or 'jpki crl generate' publishes)")
    .addHelpText(
      "after",
      `
Kinds: relocation (転居), move-out (転出), move-in (転入), death (死亡), name-change (氏名変更),
correction (職権修正), removal (住民票消除), resident-code-change (住民票コード変更).
A notice revokes only when a certified item really differs; death and removal revoke every certificate.
Notices that arrive before their predecessor are held ('jpki notices pending'). Re-running a file changes
nothing; a killed run resumes where it stopped. Exit code 13 when some notices were rejected.

Examples:
  jpki notices ingest notices.jsonl
  zcat feed.jsonl.gz | jpki notices ingest - --json`,
    )
    .action(async (file: string, o: { format: "auto" | "jsonl" | "csv"; rejectFile?: string; batchSize: string; crlInterval: string; crl: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const batchSize = Number(o.batchSize);
      const interval = Number(o.crlInterval);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw new JpkiError("ERR_USAGE", "--batch-size must be a whole number from 1 to 100000");
      if (!Number.isFinite(interval) || interval < 0) throw new JpkiError("ERR_USAGE", "--crl-interval must be a number of seconds ≥ 0");
      const passphrase = o.crl ? await ctx.passphrase() : undefined;
      // SIGINT/SIGTERM end the run after the batch in progress; running the command again resumes.
      await withStopSignal((signal) =>
        withWorkspace(ctx, async (ws) => {
          const updater = passphrase ? new CrlUpdater(ws, passphrase) : undefined;
          await updater?.preflight();
          const stdin = file === "-";
          // Rejects go into the workspace by default: the input's folder may be read-only or someone else's.
          const stamp = new Date().toISOString().replace(/[:.]/g, "-");
          const rejectPath = o.rejectFile ? resolve(io.cwd, o.rejectFile) : join(ws.paths.root, "rejects", `${stdin ? "stdin" : basename(file)}-${stamp}.rejects.jsonl`);
          const r = await runIngest(ws, {
            source: stdin ? (io.stdin ?? process.stdin) : resolve(io.cwd, file),
            format: stdin && o.format === "auto" ? "jsonl" : o.format,
            rejectPath,
            batchSize,
            crlIntervalMs: interval * 1000,
            updater,
            signal,
            onProgress: (s) => ctx.out.progress(s),
          });
          ctx.out.progressDone();
          ctx.out.result(r, () => formatIngest(r));
          if (r.rejected > 0) throw new JpkiError("ERR_PARTIAL", `${r.rejected} of ${r.read} notices were rejected (see ${r.rejectFile}); ${r.read > r.rejected ? "the others were taken" : "none was taken"}`);
        }),
      );
    });

  notices
    .command("pending")
    .description("list notices held because an earlier notice of the same resident has not arrived; release them")
    .option("--release <ids...>", "apply these held notices despite the gap (operator decision)")
    .option("--release-all", "apply every held notice despite gaps")
    .option("--limit <n>", "how many to list", "100")
    .action(async (o: { release?: string[]; releaseAll?: boolean; limit: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      if (o.release || o.releaseAll) {
        const passphrase = await ctx.passphrase();
        await withWorkspace(ctx, async (ws) => {
          const updater = new CrlUpdater(ws, passphrase);
          const r = await new NoticeIngestor({ store: ws.store, clock: ws.clock }).release(o.releaseAll ? undefined : o.release);
          const crls = await updater.regenerateDirty();
          const out = { ...r, crls: crls.map((c) => ({ ca: c.caId, number: c.number.toString(), entries: c.entries })) };
          ctx.out.result(out, `released ${r.released} held notices, ${r.revocations} revocations${crls.length ? `; CRLs regenerated: ${crls.map((c) => c.caId).join(", ")}` : ""}`);
        });
        return;
      }
      await withWorkspace(ctx, async (ws) => {
        const held = await ws.store.listHeldNotices(Number(o.limit) || 100);
        const rows = await Promise.all(
          held.map(async (h) => {
            const last = (await ws.store.loadNoticeContext([], [h.residentCode])).lastSequence.get(h.residentCode) ?? 0;
            return { noticeId: h.noticeId, residentCode: h.residentCode, sequence: h.sequence, waitingFor: last + 1, kind: h.kind, receivedAt: h.receivedAt.toISOString() };
          }),
        );
        ctx.out.result({ held: rows }, () =>
          rows.length
            ? rows.map((r) => `${r.noticeId}  resident ${r.residentCode}  seq ${r.sequence} (waiting for ${r.waitingFor})  ${r.kind}  since ${r.receivedAt}`).join("\n")
            : "no held notices",
        );
      });
    });
  return notices;
}
