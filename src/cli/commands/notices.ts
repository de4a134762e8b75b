/** `jpki notices ingest|pending`: change notices (異動等情報の通知) from the registry revoke certificates. */
import { basename, join } from "node:path";
import { Command, Option } from "commander";
import type { IngestRunResult } from "../../index.js";
import { JpkiError, checkInputFile, checkOutputFile, library } from "../lib.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import { checkRecordFile } from "../record-argument.js";
import { batchFailure, nothingAppliedHelp, stoppedBatch, stoppedExitsHelp, stoppedFields } from "../batch-outcome.js";
import { DEFAULT_NOTICE_BATCH } from "../../ca/notice-batch.js";
import { crlLabel, fileProgress, type Io } from "../output.js";

/** The text of an ingestion's result; `sayStopped` false leaves the stop to the caller's own note (stoppedBatch). */
export function formatIngest(r: IngestRunResult, sayStopped = true): string {
  const nothing = r.applied === 0 && r.held === 0 && r.rejected === 0 && r.duplicates === r.read && r.read > 0;
  return [
    nothing
      ? `nothing changed: all ${r.read} notices were already ingested`
      : `read ${r.read}: applied ${r.applied}, duplicates ${r.duplicates}, held ${r.held}, released ${r.released}, rejected ${r.rejected} in ${r.seconds.toFixed(1)} s`,
    // A rerun after a killed one: its committed batches come back as duplicates, which alone read as a feed full of
    // repeats; said as what they are (this run resumed), and that nothing of theirs was applied or revoked again.
    ...(!nothing && r.alreadyApplied + r.alreadyHeld > 0
      ? [
          `resumed: ${r.alreadyApplied} of these notices were applied${r.alreadyHeld ? ` and ${r.alreadyHeld} held` : ""} by an earlier run and were skipped (among the duplicates; nothing applied or revoked twice)`,
        ]
      : []),
    `revocations ${r.revocations}${Object.keys(r.revocationsByReason).length ? ": " + Object.entries(r.revocationsByReason).map(([k, v]) => `${k} ${v}`).join(", ") : ""}`,
    ...(r.crls.length ? [`CRLs regenerated: ${r.crls.map((c) => `${crlLabel(c)} #${c.number} (${c.entries})`).join(", ")}`] : []),
    ...(r.rejectFile ? [`rejected notices written to ${r.rejectFile}`] : []),
    ...(r.stopped && sayStopped ? ["stopped before the end of the input: run the same command again to resume"] : []),
  ].join("\n");
}

/** A run stopped while its store was opening (a PostgreSQL server that does not answer): it read nothing. */
const STOPPED_UNREAD: IngestRunResult = {
  read: 0,
  applied: 0,
  duplicates: 0,
  alreadyApplied: 0,
  alreadyHeld: 0,
  held: 0,
  released: 0,
  rejected: 0,
  revocations: 0,
  revocationsByReason: {},
  revocationsByCa: {},
  stopped: true,
  rejectFile: null,
  rejectedByCode: {},
  firstRejectCode: null,
  crls: [],
  seconds: 0,
};

export function makeNoticesCommand(io: Io): Command {
  const notices = new Command("notices").description("change notices from the registry (異動等情報の通知): revoke what no longer holds, regenerate CRLs");

  notices
    .command("ingest")
    .description("ingest a notice file: idempotent by notice id, ordered per resident, batched, resumable")
    .argument("<file>", "JSON Lines (canonical, schema/change-notice.schema.json) or CSV; '-' reads JSON Lines from stdin")
    .addOption(new Option("--format <format>", "input format").choices(["auto", "jsonl", "csv"]).default("auto"))
    .option("--reject-file <file>", "where rejected notices go, a new file: one that exists is refused (default: a new rejects/<file>-<time>.rejects.jsonl in the workspace)")
    .option("--batch-size <n>", "notices per transaction", String(DEFAULT_NOTICE_BATCH))
    .option("--crl-interval <seconds>", "at most one CRL per CA per this many seconds during a long run (always one at the end)", "30")
    .option("--no-crl", "do not regenerate CRLs (the CAs stay marked; the next run or 'jpki crl generate' publishes)")
    .addHelpText(
      "after",
      `
Kinds: relocation (転居), move-out (転出), move-in (転入), death (死亡), name-change (氏名変更),
correction (職権修正), removal (住民票消除), resident-code-change (住民票コード変更).
A notice revokes only when a certified item really differs; death and removal revoke every certificate.
Notices that arrive before their predecessor are held ('jpki notices pending'); one more than 10000 sequences
ahead of its resident is rejected (ERR_NOTICE_SEQUENCE_JUMP), never held. Re-running a file changes
nothing; a killed run resumes where it stopped: the rerun skips what the earlier run stored and says so
("resumed: …"; alreadyApplied and alreadyHeld in --json, both counted in duplicates too).
Some notices rejected and the others taken is ERR_PARTIAL (see the exit codes below).
${nothingAppliedHelp("notices")}
SIGINT (Ctrl-C) or
SIGTERM stops the run after the batch in progress — also while it waits for more lines on stdin — prints what it
did ("stopped", "signal" and "lastLineRead" in --json), says on stderr after which line it stopped, and exits
128 + the signal (143 SIGTERM, 130 SIGINT): the file is not done, and a script that moves it away on exit 0 does
not move it. One in its first moments, while it loads, stops it likewise before it reads a line. Notices read
ahead into a batch not begun are not taken (the line says where it stopped): the same command again resumes.
A CRL that cannot be published after the last batch is said with its own error and exit, even when stopped.

A reject file is never replaced or added to: it may be the only record of which notices were refused and
why. Each run's default one is new: when another run (on this host or another sharing the workspace) took
the same name in the same millisecond, this one's is <file>-<time>-2.rejects.jsonl, and so on. An existing
--reject-file is refused before anything is ingested (ERR_REJECT_FILE_EXISTS, exit 2): move it away or
name another. Should another process create it during the run, the rejects go to <name>-2<ext> instead;
the result's rejectFile always says where they went.

${commandExitCodes({
  ok: "every notice taken (applied, held, or already seen)",
  verdicts: stoppedExitsHelp("the batches begun were committed, the rest not taken; run it again to resume"),
  errors: [
    ["ERR_REJECT_FILE_EXISTS", "the --reject-file exists: nothing ingested"],
    ["ERR_PARTIAL", "some notices were rejected (into the reject file), the others taken"],
  ],
})}

Examples:
  jpki notices ingest notices.jsonl
  jpki notices ingest notices.jsonl --reject-file /srv/jpki/rejects/2026-05-01.rejects.jsonl
  zcat feed.jsonl.gz | jpki notices ingest - --json`,
    )
    .action(async (file: string, o: { format: "auto" | "jsonl" | "csv"; rejectFile?: string; batchSize: string; crlInterval: string; crl: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const batchSize = Number(o.batchSize);
      const interval = Number(o.crlInterval);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 100_000) throw new JpkiError("ERR_USAGE", "--batch-size must be a whole number from 1 to 100000");
      if (!Number.isFinite(interval) || interval < 0) throw new JpkiError("ERR_USAGE", "--crl-interval must be a number of seconds ≥ 0");
      // Paths first: nothing is applied for a run whose input or reject file cannot be used.
      const stdin = file === "-";
      const input = stdin ? undefined : checkRecordFile(file, "notice file", { cwd: io.cwd, pipe: "write it to a file, or pipe it in: jpki notices ingest - < FILE" });
      const rejectTarget = o.rejectFile ? checkOutputFile(o.rejectFile, "--reject-file", { cwd: io.cwd }) : "";
      const { CrlUpdater, checkRejectFileFree, runIngest } = await library();
      if (o.rejectFile) checkRejectFileFree(rejectTarget); // before the passphrase prompt; runIngest checks again
      const passphrase = o.crl ? await ctx.caPassphrase() : undefined;
      const goOn = "To go on, run the same command again: what this run took is skipped as duplicates (nothing applied or revoked twice).";
      // "signal" and "lastLineRead" (not the library's lastLine) when it stopped, as issue --batch and registry import say it
      const report = (result: IngestRunResult, by: NodeJS.Signals | undefined) => {
        const { lastLine, ...rest } = result;
        ctx.out.result(by ? { ...rest, ...stoppedFields({ by, lastLine }) } : rest, () => formatIngest(result, false));
      };
      // SIGINT/SIGTERM end the run after the batch in progress, and it exits 128 + n (stoppedBatch); running the
      // command again resumes.
      await withStopSignal("notices ingest", (signal, stoppedBy) =>
        withWorkspace(ctx, async (ws) => {
          const updater = passphrase ? new CrlUpdater(ws, passphrase) : undefined;
          await updater?.preflight(signal);
          // Rejects go into the workspace by default: the input's folder may be read-only or someone else's.
          const stamp = new Date().toISOString().replace(/[:.]/g, "-");
          const rejectPath = o.rejectFile ? rejectTarget : join(ws.paths.root, "rejects", `${stdin ? "stdin" : basename(file)}-${stamp}.rejects.jsonl`);
          const source = stdin ? (io.stdin ?? process.stdin) : input!;
          const progress = fileProgress(source);
          const started = Date.now();
          const r = await runIngest(ws, {
            source,
            format: stdin && o.format === "auto" ? "jsonl" : o.format,
            rejectPath,
            rejectFileExists: o.rejectFile ? "refuse" : "next",
            batchSize,
            crlIntervalMs: interval * 1000,
            updater,
            signal,
            // A CRL that cannot be published after the last batch is raised after the result: what the run applied
            // and the CRLs it did publish are printed first (they were not: the operator saw the error alone).
            crlFailure: "report",
            onBytes: progress.onBytes,
            onProgress: (p) =>
              ctx.out.progress(
                `${progress.bar()}read ${p.read}  applied ${p.applied}  duplicates ${p.duplicates}${p.alreadyApplied + p.alreadyHeld ? ` (${p.alreadyApplied + p.alreadyHeld} from an earlier run)` : ""}  held ${p.held}  rejected ${p.rejected}  revoked ${p.revocations}  (${(p.read / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(0)}/s)`,
              ),
          });
          ctx.out.progressDone();
          const { crlFailure, ...result } = r;
          const by = r.stopped ? (stoppedBy() ?? "SIGTERM") : undefined;
          report(result, by);
          const stop = by ? stoppedBatch(ctx, { command: "notices ingest", by, lastLine: r.lastLine ?? 0, done: `applied ${r.applied}, held ${r.held}, duplicates ${r.duplicates}, rejected ${r.rejected}`, rest: "were not taken", goOn }) : undefined;
          // A CRL not published needs the operator: its error and exit come first, the stop said above.
          if (crlFailure) throw crlFailure;
          // Before the rejects' ERR_PARTIAL: the run is not done, which is what a script must learn first.
          if (stop) throw stop;
          if (r.rejected > 0) {
            throw batchFailure({
              failed: r.firstRejectCode ? { first: r.firstRejectCode, counts: r.rejectedByCode } : undefined,
              applied: r.read > r.rejected,
              partial: `${r.rejected} of ${r.read} notices were rejected (see ${r.rejectFile}); the others were taken`,
              none: `none of the ${r.read} notices was taken: all rejected (see ${r.rejectFile})`,
            });
          }
        }, {
          signal,
          stopped: () => {
            const by = stoppedBy() ?? "SIGTERM";
            report(STOPPED_UNREAD, by);
            throw stoppedBatch(ctx, { command: "notices ingest", by, lastLine: undefined, done: "", goOn });
          },
        }),
      );
    });

  notices
    .command("pending")
    .description("list notices held because an earlier notice of the same resident has not arrived; release them")
    .option("--release <ids...>", "apply these held notices despite the gap (operator decision)")
    .option("--release-all", "apply every held notice despite gaps")
    .option("--limit <n>", "how many to list", "100")
    .addHelpText(
      "after",
      `
${commandExitCodes({
  ok: "listed; or the notices released (and their CRLs published)",
  errors: [
    ["ERR_USAGE", "--release naming a notice that is not held, --release with --release-all, or a bad --limit: nothing released"],
    ["ERR_NOTICE_SEQUENCE_JUMP", "a notice too far ahead of its resident's last applied sequence: the others are released, it stays held"],
  ],
})}

Examples:
  jpki notices pending
  jpki notices pending --release N0e74c9bc-0000002 --passphrase-file ./pass.txt
  jpki notices pending --release-all --json`,
    )
    .action(async (o: { release?: string[]; releaseAll?: boolean; limit: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const limit = Number(o.limit);
      // Checked like --batch-size: "abc" listed 100 and -1 listed every held notice, however many.
      if (!/^\d+$/.test(o.limit.trim()) || limit < 1 || limit > 100_000) throw new JpkiError("ERR_USAGE", "--limit must be a whole number from 1 to 100000");
      // Both given, --release-all released everything: more than the operator named, for good.
      if (o.release && o.releaseAll) throw new JpkiError("ERR_USAGE", "--release names the notices to release, --release-all releases every held one: give one of them");
      const { CrlUpdater, MAX_SEQUENCE_JUMP, NoticeIngestor, publishedCrls } = await library();
      if (o.release || o.releaseAll) {
        const passphrase = await ctx.caPassphrase();
        await withWorkspace(ctx, async (ws) => {
          const updater = new CrlUpdater(ws, passphrase);
          // The CA keys are unlocked before anything is released, as for ingest: a wrong passphrase found only
          // when publishing left the release committed, its revocations off every CRL, and the retry refused
          // with "not held".
          await updater.preflight();
          const r = await new NoticeIngestor({ store: ws.store, clock: ws.clock }).release(o.releaseAll ? undefined : o.release);
          // Named as ingest names them: "13-sig, 13-sig, 13-sig, …" once per partition said nothing, and the JSON
          // entries of a partition's CRL looked like its CA's full one.
          const crls = publishedCrls(await updater.regenerateDirty());
          const out = { ...r, crls };
          ctx.out.result(out, `released ${r.released} held notice${r.released === 1 ? "" : "s"}, ${r.revocations} revocation${r.revocations === 1 ? "" : "s"}${crls.length ? `; CRLs regenerated: ${crls.map((c) => `${crlLabel(c)} #${c.number} (${c.entries})`).join(", ")}` : ""}`);
          // After the others are released and published: a notice that far ahead is a broken feed, never applied.
          if (r.refused.length) {
            throw new JpkiError(
              "ERR_NOTICE_SEQUENCE_JUMP",
              `not released, more than ${MAX_SEQUENCE_JUMP} after the resident's last applied sequence: ${r.refused.map((x) => `${x.noticeId} (sequence ${x.sequence}, last ${x.last})`).join(", ")}; they stay held (a feed that skips that far is broken; ask the registry)`,
              { details: { refused: r.refused } },
            );
          }
        });
        return;
      }
      await withWorkspace(ctx, async (ws) => {
        const held = await ws.store.listHeldNotices(limit);
        const rows = await Promise.all(
          held.map(async (h) => {
            const last = (await ws.store.loadNoticeContext({ noticeIds: [], residentCodes: [h.residentCode] })).lastSequence.get(h.residentCode) ?? 0;
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
