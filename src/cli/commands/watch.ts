/**
 * `jpki watch DIR`: the spool-directory daemon (the service itself is the library's watchSpool, ca/spool.ts).
 * Besides ingesting the files dropped into DIR it keeps every CRL fresh: CAs with new revocations from any
 * source get a CRL within --crl-interval, and every CRL is republished before its nextUpdate.
 */
import { Command } from "commander";
import { JpkiError, checkInputDir, isJpkiError, library } from "../lib.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import { commandExitCodes } from "../exit-codes.js";
import type { Io } from "../output.js";
import { entriesText } from "../output.js";
import { RepeatedErrors } from "../../server/repeated-errors.js";
import { DEFAULT_NOTICE_BATCH } from "../../ca/notice-batch.js";
import { formatIngest } from "./notices.js";
import { sweepLine } from "./registry.js";

export function makeWatchCommand(io: Io): Command {
  return new Command("watch")
    .description("run as a daemon: ingest notice files dropped into a spool directory, regenerate CRLs")
    .argument("<dir>", "spool directory (processing/, done/ and failed/ are made inside it)")
    .option("--poll <ms>", "how often to look for new files", "1000")
    .option("--once", "process the files present now, then exit")
    .option("--batch-size <n>", "notices per transaction", String(DEFAULT_NOTICE_BATCH))
    .option("--crl-interval <seconds>", "longest a revocation (from a notice, 'jpki revoke' or supersession) waits for its CRL", "30")
    .option("--ocsp-cert-days <days>", "validity of each CA's OCSP signing certificate, issued and renewed at half-life as 'jpki serve' does", "4")
    .option("--no-ocsp", "leave the OCSP signing certificates to another process ('jpki serve' with its schedule)")
    .addHelpText(
      "after",
      `
Drop files atomically: write "notices.jsonl.part" or ".notices.jsonl", then rename to "notices.jsonl".
A file written in place (cp) is read once it has gone a second unmodified, and again if it changed meanwhile.
SIGTERM or SIGINT stops after the batch in progress; nothing is lost and the next start resumes. In the start-up
round (a first start issues every CA's OCSP signing certificate and CRLs) it stops between two CAs; in its
first moments, while it loads, before it begins anything (exit 0 too).
Several watchers may share DIR, also from other containers or hosts: a watcher's file is taken over when it
is gone from its own PID namespace, or its heartbeat is 10 minutes old. A finished file goes to done/ with
its NAME.rejects.jsonl; one whose name (or reject file name) is taken there is kept as STAMP-NAME.
While it runs, every CA with unpublished revocations gets a CRL within --crl-interval, and every CRL is
republished before its nextUpdate even when nothing changed (config crlRefreshMarginHours, default 24:
daily with 48-hour CRLs). It also issues each CA's OCSP signing certificate and renews it at half its
--ocsp-cert-days, as 'jpki serve' does (its key under JPKI_OCSP_PASSPHRASE when set, else the CA
passphrase; one ending with a line break is refused, exit 2, unless the keys stored open with it, and so is
one that does not open the keys stored, as 'jpki serve' refuses it), so a 'jpki serve --no-schedule' beside it answers OCSP; --no-ocsp leaves that to a serve
that runs its schedule. About once a day (first 10 minutes after start) it also sweeps the registry side's
issuance information of expired and revoked certificates ('jpki registry sweep --help' says what and why).
A CRL that cannot be published (a full or read-only disk, the store away) is reported once (then every few
minutes while it lasts) and tried again on the next tick: the watch goes on.
With --once it processes the files present, publishes whatever is due or has unpublished revocations, and
exits: the recovery step after a crash (no sweep then); a CRL it cannot publish fails the run. Notices a file
held that could not be applied do not fail it: they are in done/NAME.rejects.jsonl, and --json counts them.
With --json, stdout holds one document, the summary, when the watch ends, and every stderr line is a JSON object
with an "event". Each CRL published is logged as it is: {"event":"crl-published","caId","ca","scope","municipality"?,
"number","baseNumber"?,"entries","path","why"} — why: missing, dirty or refresh (the schedule), notices (a file's
ingestion, named in noticeFile). A CRL tick that failed: {"event":"crl-tick-failed","code","message","retry"}; a
registry sweep that failed: {"event":"registry-sweep-failed","code","message","nextAt"}; any other line (a
warning about the workspace): {"event":"message","message"}; an error that ends the watch: {"error":{…}}.

${commandExitCodes({
  ok: "stopped by SIGTERM or SIGINT, or (--once) the files present processed and the CRLs due published",
  errors: [
    ["ERR_USAGE", "a bad option value"],
    [["ERR_FILE_NOT_FOUND", "ERR_FILE_UNUSABLE"], "the spool directory is missing or not a directory"],
    ["ERR_WORKSPACE_LOCKED", "another process holds the workspace's lock past its busy timeout"],
    [["ERR_PASSPHRASE_MISSING", "ERR_PASSPHRASE_WRONG"], "no passphrase, or not the one of the CA keys: checked before any file is taken"],
    [["ERR_STORE", "ERR_STORE_UNREACHABLE"], "the store failed or is away while a file was processed (a CRL that cannot be published is tried again on the next tick instead)"],
  ],
})}

Example:
  JPKI_PASSPHRASE=… jpki --workspace /srv/jpki watch /srv/jpki/spool`,
    )
    .action(async (dir: string, o: { poll: string; once?: boolean; batchSize: string; crlInterval: string; ocspCertDays: string; ocsp: boolean }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      // --json: every stderr line a JSON object (each CRL published is one); warnings were plain text among them.
      ctx.out.eventLines();
      const pollMs = Number(o.poll);
      const batchSize = Number(o.batchSize);
      const interval = Number(o.crlInterval);
      if (!Number.isFinite(interval) || interval < 0) throw new JpkiError("ERR_USAGE", "--crl-interval must be a number of seconds ≥ 0");
      const spool = checkInputDir(dir, "spool directory", { cwd: io.cwd });
      if (!Number.isInteger(pollMs) || pollMs < 10) throw new JpkiError("ERR_USAGE", "--poll must be a whole number of milliseconds ≥ 10");
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new JpkiError("ERR_USAGE", "--batch-size must be a whole number ≥ 1");
      const ocspCertDays = Number(o.ocspCertDays);
      if (!Number.isInteger(ocspCertDays) || ocspCertDays < 1 || ocspCertDays > 90) throw new JpkiError("ERR_USAGE", "--ocsp-cert-days must be a whole number of days from 1 to 90");
      const passphrase = await ctx.caPassphrase();
      const { CrlUpdater, checkResponderPassphrase, publishedCrls, watchSpool } = await library();
      const report = (r: { files: number; failed: number; crls: number }, results: unknown[], stopped: boolean) =>
        ctx.out.result({ ...r, stopped, results }, `processed ${r.files} files (${r.failed} failed), published ${r.crls} CRLs${stopped ? ", stopped by signal" : ""}`);
      await withStopSignal("watch", (signal) =>
        withWorkspace(ctx, async (ws) => {
          // Seen by 'jpki restore --force' however long it idles (Store.holdPresence).
          await ws.store.holdPresence("watch");
          // The OCSP signing keys it renews are wrapped under their own passphrase when set, else the CA one: checked,
          // as jpki serve checks it, before any file — keys renewed under another passphrase than the stored ones'
          // left the serve beside it (--no-schedule) answering nothing for those CAs.
          // Stopped before (a SIGTERM in the start-up, held by the launcher: bin/early-stop.cjs): nothing is begun.
          if (o.ocsp && !signal.aborted) await checkResponderPassphrase(ws.store, io.env.JPKI_OCSP_PASSPHRASE || passphrase, { now: ws.clock.now(), own: Boolean(io.env.JPKI_OCSP_PASSPHRASE), wraps: true });
          const updater = new CrlUpdater(ws, passphrase);
          // Stopped while the CA keys open (seconds for many CAs): nothing was taken, nothing is started.
          await updater.preflight(signal);
          if (!ctx.out.json && !signal.aborted) ctx.out.info(`watching ${spool} (pid ${process.pid}); SIGTERM stops cleanly`);
          const results: unknown[] = [];
          // --json: stdout keeps its one document, the summary at the end (days away for a daemon); each CRL is
          // logged on stderr as it is published, one JSON line each, in the shape the summary's results[].crls use.
          // Those from the schedule went unlogged (the text mode's lines were all there was).
          const crlLine = (crls: ReturnType<typeof publishedCrls>, why: { why: string; noticeFile?: string }) => {
            for (const c of crls) io.stderr.write(`${JSON.stringify({ event: "crl-published", ...c, ...why })}\n`);
          };
          // A failure that lasts (a full disk) is said once, then at most every few minutes, as jpki serve says it.
          const scheduleErrors = new RepeatedErrors((e) => {
            const code = isJpkiError(e) ? e.code : ((e as { code?: unknown } | null)?.code ?? "error");
            const message = e instanceof Error ? e.message : String(e);
            ctx.out.event("crl-tick-failed", { code, message, retry: "next CRL tick" }, `warning: ${isJpkiError(e) ? `[${e.code}] ${e.message}` : String(e)} (the next CRL tick tries again)`);
          });
          const r = signal.aborted ? { files: 0, failed: 0, crls: 0 } : await watchSpool(ws, updater, {
            dir: spool,
            pollMs,
            once: Boolean(o.once),
            batchSize,
            signal,
            crlIntervalMs: interval * 1000,
            onCrl: (p) => {
              if (ctx.out.json) crlLine(publishedCrls([p]), { why: p.why });
              else ctx.out.info(`CRL ${p.caId}${p.scope ? `/${p.scope}` : ""} #${p.number} published (${p.why}): ${entriesText(p.entries)}, next update ${p.nextUpdate.toISOString()}`);
            },
            onSweep: (e) => {
              if (e.kind === "failed") ctx.out.event("registry-sweep-failed", { code: e.error.code, message: e.error.message, nextAt: e.nextAt.toISOString() }, sweepLine(e));
              else if (!ctx.out.json) ctx.out.info(sweepLine(e));
            },
            // Once stopping, nothing tries again: a round abandoned at the stop's bound (ERR_STORE_UNRESPONSIVE) is said as such.
            onScheduleError: (e) => {
              if (!signal.aborted) return scheduleErrors.error(e);
              const code = isJpkiError(e) ? e.code : "error";
              const message = e instanceof Error ? e.message : String(e);
              ctx.out.event("crl-tick-failed", { code, message }, `warning: [${code}] ${message}`);
            },
            ...(o.ocsp
              ? {
                  ocsp: {
                    caPassphrase: passphrase,
                    responderPassphrase: io.env.JPKI_OCSP_PASSPHRASE || passphrase,
                    policy: { validityMs: ocspCertDays * 86_400_000 },
                    onIssued: (r) => {
                      if (!ctx.out.json) ctx.out.info(`OCSP signing certificate of ${r.caId} issued, valid until ${r.notAfter.toISOString()}`);
                    },
                  },
                }
              : {}),
            onFile: (name, res) => {
              results.push({ file: name, ...("error" in res ? { error: res.error.toJSON() } : res) });
              if (ctx.out.json && !("error" in res)) crlLine(res.crls, { why: "notices", noticeFile: name });
              if (!ctx.out.json) ctx.out.info("error" in res ? `${name}: failed [${res.error.code}] ${res.error.message}` : `${name}:\n  ${formatIngest(res).split("\n").join("\n  ")}`);
            },
          });
          report(r, results, signal.aborted);
        }, { signal, stopped: () => report({ files: 0, failed: 0, crls: 0 }, [], true) }),
      );
    });
}
