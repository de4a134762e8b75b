/**
 * The spool watcher behind `jpki watch DIR`: producers drop complete notice files into DIR (write them under
 * a dot-name or elsewhere, then rename: only *.jsonl, *.ndjson and *.csv not starting with "." are taken).
 * `jpki counter` (registry/counter-link.ts) stages its files in DIR as .NAME.PID~@NS.RANDOM.tmp (store/staging.ts):
 * never taken, and the leftover of a killed counter is swept from DIR at start and about every TEMP_SWEEP_MS
 * while idle, by the staging rule (this namespace's dead pid at once, any other once a day untouched).
 * Each file is claimed by renaming it into DIR/processing/, ingested, and moved to DIR/done/ (with its
 * .rejects.jsonl when some notices were rejected) or DIR/failed/ when it could not be read.
 *
 * Between files and while idle it runs the CRL schedule (crl/schedule.ts): CAs with revocations from any
 * source — notices, a manual `jpki revoke`, supersession at issuance — get their CRL within the interval,
 * and every CRL is republished before its nextUpdate even when nothing changed. Beside it, about daily, the
 * sweep of the registry side's issuance information (registry/issuance-sweep.ts), which nothing waits for.
 *
 * A stop signal ends it after the batch in progress; a file interrupted that way (or by a kill) stays in
 * processing/ and is resumed first on the next start (ingestion is idempotent, so nothing is lost or
 * applied twice). Several watchers on one spool are safe, in one PID namespace or several (containers, hosts
 * sharing a volume): a claim is a rename, which only one wins, to processing/PID~@NS~NAME, with a heartbeat
 * beside it; a watcher takes over another's file only when that one is provably gone from its own namespace, or
 * its heartbeat has been stale for CLAIM_STALE_MS (ca/spool-claim.ts says the rules; an earlier version's
 * PID~NAME and bare NAME claims are taken over as those versions did).
 *
 * A finished file goes to done/ (failed/) with its sidecars, .rejects.jsonl (.error.json), under its own name,
 * or STAMP-NAME (STAMP-N-NAME) when an earlier file's name or reject file is there: nothing there is ever
 * replaced. The reject file is written in processing/ beside the claim and moved with it (settleClaim: a kill
 * between the steps leaves the file to be resumed, and it is settled once).
 *
 * Only a regular file is read. Anything else claimed under a notice file's name goes to failed/ unread, with
 * ERR_FILE_UNUSABLE: a FIFO would block the watcher for ever (even SIGTERM could not end it: the stop signal
 * is looked at between batches), and a symbolic link would be followed to a file outside the spool, read with
 * the watcher's rights, its records copied into a reject file beside it.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, type Stats } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleepFor } from "node:timers/promises";
import type { DueReason } from "../crl/schedule.js";
import { STOP_ROUND_WAIT_MS, settleWithinStop } from "../crl/stop-bound.js";
import type { PublishedCrl } from "../crl/publisher.js";
import type { CrlUpdater } from "../crl/updater.js";
import { JpkiError, isJpkiError } from "../errors.js";
import { IssuanceSweepSchedule, type IssuanceSweepEvent } from "../registry/issuance-sweep.js";
import { stageFile, sweepStaleTemps } from "../store/staging.js";
import type { Workspace } from "../workspace/workspace.js";
import type { OcspResponderRecord } from "../store/types.js";
import { runIngest, type IngestRunResult } from "./ingestion.js";
import { OcspSignerRenewal, type OcspSignerPolicy } from "./ocsp-signer.js";
import { CLAIM_HEARTBEAT_MS, CLAIM_STALE_MS, beat, stale, claimEntry, claimState, parseClaim, settleClaim, sidecarOf, sweepClaimLeftovers, takeClaim } from "./spool-claim.js";

const SPOOL_FILE = /^[^.].*\.(jsonl|ndjson|csv)$/i;
/**
 * How long a claimed file must go unmodified before it is read, and read again when it changed while it was read.
 * A file written in place (a `cp` into the spool, not the rename the help asks for) was claimed half-written, even
 * empty: the watcher read what was there, moved the file to done/, and the notices written after — deaths among
 * them — were never ingested, with nothing said. Ingestion is idempotent, so reading again is always safe.
 */
export const SPOOL_SETTLE_MS = 1000;
/** How often an idle watcher sweeps the spool of temporary files nobody writes any more (wall-clock ms). */
const TEMP_SWEEP_MS = 10 * 60_000;
/** Claimed files (paths in processing/) this process is working on: its claim entry alone does not say which. */
const working = new Set<string>();

export interface WatchOptions {
  readonly dir: string;
  readonly pollMs: number;
  /** process the files present now (and publish what is due), then return */
  readonly once: boolean;
  readonly batchSize: number;
  readonly signal: AbortSignal;
  /** longest a revocation waits for its CRL, ms (default 30 s) */
  readonly crlIntervalMs?: number;
  readonly onFile?: (name: string, r: IngestRunResult | { error: JpkiError }) => void;
  readonly onCrl?: (p: PublishedCrl & { why: DueReason }) => void;
  /**
   * A CRL could not be published (a full or read-only CRL directory, the store out of reach, the Bridge CA's ARL):
   * the next tick tries again, as `jpki serve` does. Without it, or with `once`, the failure ends the watch.
   */
  readonly onScheduleError?: (e: unknown) => void;
  /** each daily sweep of the registry side's issuance information, a failure included (none with `once`) */
  readonly onSweep?: (e: IssuanceSweepEvent) => void;
  /** how the idle loop waits (tests inject one that moves their clock instead) */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** a claim whose heartbeat is older than this (ms) is taken over, whoever made it (default CLAIM_STALE_MS, 10 min) */
  readonly claimStaleMs?: number;
  /** how often (wall-clock ms) an idle watcher sweeps DIR of abandoned temporary files (default TEMP_SWEEP_MS, 10 min) */
  readonly tempSweepMs?: number;
  /**
   * Issue and renew each CA's OCSP signing certificate, as `jpki serve`'s schedule does: beside a `serve
   * --no-schedule` (docs/operations.md), the watch is the only process with the CA keys, and without this a fresh
   * workspace never had a responder (every OCSP request answered tryLater) and an old one lost OCSP once its
   * signers expired. Failures go to onScheduleError, as a CRL's do.
   */
  readonly ocsp?: { readonly responderPassphrase: string; readonly caPassphrase: string; readonly policy?: OcspSignerPolicy; readonly onIssued?: (r: OcspResponderRecord) => void };
  /**
   * how long a stop waits for the file or round in progress, ms, before the watch returns without it (default
   * STOP_ROUND_WAIT_MS, jpki serve's): one held by a store that does not answer is abandoned, said through
   * onScheduleError (ERR_STORE_UNRESPONSIVE; without it, or with `once`, the watch rejects with that)
   */
  readonly stopWaitMs?: number;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

type WatchCounts = { files: number; failed: number; crls: number };

export async function watchSpool(ws: Workspace, updater: CrlUpdater, o: WatchOptions): Promise<WatchCounts> {
  const counts: WatchCounts = { files: 0, failed: 0, crls: 0 };
  const run = async (): Promise<WatchCounts> => {
    // A one-shot run is a recovery step, over before a sweep would be due: none then.
    if (o.once) return watchFiles(ws, updater, o, undefined, counts);
    // Stopped with the watch, however it ends, so the store is not closed under a sweep in progress.
    const sweepStop = new AbortController();
    const sweep = new IssuanceSweepSchedule({ store: ws.store, clock: ws.clock, signal: sweepStop.signal, ...(o.onSweep ? { onSweep: o.onSweep } : {}) });
    try {
      return await watchFiles(ws, updater, o, sweep, counts);
    } finally {
      sweepStop.abort();
      await sweep.settled();
    }
  };
  // A stop waits for the file or round in progress as long as jpki serve waits for its schedule, then goes on
  // without it (crl/stop-bound.ts): a store that never answered held SIGTERM as long as it did not.
  return settleWithinStop(run(), {
    signal: o.signal,
    waitMs: o.stopWaitMs ?? STOP_ROUND_WAIT_MS,
    what: "the watch",
    after: "a notice file it was reading is resumed, and what it was publishing is due again, at the next start",
    onLate: (e) => {
      if (!o.onScheduleError || o.once) throw e;
      o.onScheduleError(e);
      return { ...counts };
    },
  });
}

/**
 * The file's stat once it has gone SPOOL_SETTLE_MS unmodified (at once when its mtime is that old already), or
 * undefined when the signal stops the wait. Successive stats are compared, not the wall clock with the mtime, so
 * a file with an mtime ahead of this host's clock (another host's, on a shared volume) is not waited for for ever.
 */
async function quiet(path: string, signal: AbortSignal): Promise<Stats | undefined> {
  let st = statSync(path);
  if (Date.now() - st.mtimeMs >= SPOOL_SETTLE_MS) return st;
  for (;;) {
    try {
      await sleepFor(SPOOL_SETTLE_MS, undefined, { signal });
    } catch {
      return undefined;
    }
    const again = statOrGone(path);
    // gone (taken over): the read that follows fails as it would have, and says so
    if (!again || (again.mtimeMs === st.mtimeMs && again.size === st.size)) return again ?? st;
    st = again;
  }
}

function statOrGone(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** The result of a claim stopped before anything of it was read (a stop signal while it was still being written). */
function stoppedBeforeReading(): IngestRunResult {
  return {
    read: 0, applied: 0, duplicates: 0, alreadyApplied: 0, alreadyHeld: 0, held: 0, rejected: 0, revocations: 0, released: 0,
    revocationsByReason: {}, revocationsByCa: {}, stopped: true, rejectFile: null, rejectedByCode: {}, firstRejectCode: null, crls: [], seconds: 0,
  };
}

/** Why a claimed entry cannot be read as a notice file (see the header), or undefined for a regular file. */
function unusableEntry(path: string, name: string): JpkiError | undefined {
  const st = lstatSync(path);
  if (st.isFile()) return undefined;
  const kind = st.isSymbolicLink()
    ? "a symbolic link"
    : st.isDirectory()
      ? "a directory"
      : st.isFIFO()
        ? "a FIFO (named pipe)"
        : st.isSocket()
          ? "a socket"
          : "a device";
  return new JpkiError(
    "ERR_FILE_UNUSABLE",
    `spool entry ${name} is ${kind}, not a regular file: it was not read (drop the notice file itself: write it under a dot-name, then rename it into the spool)`,
    { details: { path, kind } },
  );
}

async function watchFiles(ws: Workspace, updater: CrlUpdater, o: WatchOptions, sweep: IssuanceSweepSchedule | undefined, counts: WatchCounts): Promise<WatchCounts> {
  if (!isDir(o.dir)) {
    throw new JpkiError("ERR_FILE_NOT_FOUND", `spool directory ${o.dir}: not found or not a directory (create it, or check the path)`);
  }
  const dirs = { processing: join(o.dir, "processing"), done: join(o.dir, "done"), failed: join(o.dir, "failed") };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true, mode: 0o700 });
  // Temporary files a killed producer left in DIR (a `jpki counter`'s) and an earlier version staged in done/ and
  // failed/, by the staging rule (a pid is looked up only in its own namespace); processing/'s by the claims there.
  sweepStaleTemps(dirs.done);
  sweepStaleTemps(dirs.failed);
  let swept = Date.now();
  const sweepSpoolTemps = () => {
    sweepStaleTemps(o.dir);
    swept = Date.now();
  };
  sweepSpoolTemps();
  sweepClaimLeftovers(dirs.processing, Date.now(), o.claimStaleMs ?? CLAIM_STALE_MS);
  const schedule = updater.schedule(o.crlIntervalMs, o.onScheduleError ? { onOtherError: o.onScheduleError } : {});
  const sleep = o.sleep ?? ((ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal }));
  // Opened before the first file: a wrong responder passphrase fails the start, as a wrong CA passphrase does.
  let renewal: OcspSignerRenewal | undefined;
  if (o.ocsp) {
    renewal = new OcspSignerRenewal(ws, { caPassphrase: o.ocsp.caPassphrase, responderPassphrase: o.ocsp.responderPassphrase, ...(o.ocsp.policy ? { policy: o.ocsp.policy } : {}) });
    for (const r of await renewal.preflight(o.signal)) o.ocsp.onIssued?.(r);
  }
  const renew = async () => {
    if (!renewal) return;
    try {
      for (const r of await renewal.tick(o.signal)) o.ocsp?.onIssued?.(r);
    } catch (e) {
      if (!o.onScheduleError || o.once) throw e;
      o.onScheduleError(e);
    }
  };
  // Each CRL as the round reports it: also those of a round that then raises (one CA failed), counted and
  // logged before the failure is; they used to go unlogged, the failure alone.
  const published = (p: PublishedCrl & { why: DueReason }) => {
    renewal?.noticeCrl(p.caId); // a new CA's signer at the next tick's renewal, not the minute's
    if (p.superseded) return;
    counts.crls++;
    o.onCrl?.(p);
  };
  const tick = async () => {
    await renew();
    try {
      await schedule.tick(published, o.signal);
    } catch (e) {
      // A watch runs for days: a disk that filled up or a store that went away for a while must not end it, or
      // nothing publishes once they are back until someone restarts it (found by a fault-injection helper). A
      // one-shot run (the recovery step) says its failure by its exit code instead.
      if (!o.onScheduleError || o.once) throw e;
      o.onScheduleError(e);
      return;
    }
    // When due, after the tick's CRLs are out; it runs beside what follows, which never waits for it.
    sweep?.poke();
  };
  const staleMs = o.claimStaleMs ?? CLAIM_STALE_MS;
  const claim = (): { name: string; path: string } | undefined => {
    const mine = (name: string) => join(dirs.processing, claimEntry(name));
    // Resume interrupted files first: those of a watcher gone (or stale), or of an earlier version's claim.
    // A file another live watcher claimed is its own: ingesting it here too, the second to finish found it gone.
    for (const f of readdirSync(dirs.processing).sort()) {
      const { name } = parseClaim(f);
      if (!SPOOL_FILE.test(name)) continue;
      const from = join(dirs.processing, f);
      const state = claimState(from, Date.now(), staleMs);
      if (state === "ours") {
        if (!working.has(from)) return { name, path: from }; // stopped earlier in this process
        continue;
      }
      if (state === "held") continue;
      if (existsSync(mine(name))) continue; // a file of the same name of ours comes first
      if (takeClaim(from, mine(name), Date.now())) return { name, path: mine(name) };
      // else another watcher took it over first
    }
    for (const f of readdirSync(o.dir).filter((f) => SPOOL_FILE.test(f)).sort()) {
      if (existsSync(mine(f))) continue;
      if (takeClaim(join(o.dir, f), mine(f), Date.now())) return { name: f, path: mine(f) };
      // else another watcher took it, or it vanished: try the next one
    }
    return undefined;
  };
  /** Ingests one claimed file and settles it in done/ or failed/ (or leaves it, stopped, in processing/). */
  const work = async (name: string, path: string): Promise<"stopped" | "settled" | "lost"> => {
    const stamp = ws.clock.now().toISOString().replace(/[:.]/g, "-");
    const settle = (dir: string, otherDir: string) => settleClaim({ claim: path, name, dir, otherDir, stamp });
    const dropSidecars = () => {
      for (const s of ["rejects", "error"] as const) rmSync(sidecarOf(path, s), { force: true });
    };
    const lost = (e: JpkiError) => {
      dropSidecars(); // the watcher that took the file over writes its own
      o.onFile?.(name, { error: e });
      return "lost" as const;
    };
    dropSidecars(); // an earlier, stopped run of this claim left them: this run writes them anew
    working.add(path);
    beat(path, Date.now());
    const heartbeat = setInterval(() => beat(path, Date.now()), CLAIM_HEARTBEAT_MS);
    heartbeat.unref();
    try {
      const unusable = unusableEntry(path, name);
      if (unusable) throw unusable;
      let r: IngestRunResult | undefined;
      for (;;) {
        const before = await quiet(path, o.signal);
        if (!before) break; // stopped while the file was still being written: resumed from processing/
        let read = 0;
        r = await runIngest(ws, {
          source: path,
          format: "auto",
          rejectPath: sidecarOf(path, "rejects"),
          rejectFileExists: "replace", // the claim's own sidecar, cleared above: settleClaim moves it, never over another
          sweepRejectDir: false, // processing/ is shared: sweepClaimLeftovers judges its leftovers, not a pid
          batchSize: o.batchSize,
          crlIntervalMs: schedule.intervalMs,
          updater,
          signal: o.signal,
          onBytes: (n) => (read += n),
          onProgress: () => beat(path, Date.now()),
          // A CRL that cannot be published after the file's last batch fails no notice of it: every one is applied
          // and the file belongs in done/. The CA stays due; the failure goes where the schedule's go (below).
          crlFailure: "report",
        });
        if (r.stopped) break;
        const after = statOrGone(path);
        // gone: taken over by another watcher meanwhile, which settleClaim below says (ERR_SPOOL_CLAIM_LOST)
        if (!after || (after.size === read && after.mtimeMs === before.mtimeMs && after.size === before.size)) break;
        // Written to while it was read: read again once it is quiet (what was taken comes back as duplicates, a
        // line cut at the end and rejected is taken whole), with the rejects of this reading, not the last one's.
        dropSidecars();
      }
      if (!r || r.stopped) {
        if (!r) r = stoppedBeforeReading();
        // Stopped for good: the claim is released at once, to watchers of any namespace (the heartbeat at the epoch).
        stale(path);
        o.onFile?.(name, r);
        return "stopped";
      }
      const placed = settle(dirs.done, dirs.failed);
      counts.files++;
      const { crlFailure, ...result } = r;
      o.onFile?.(name, { ...result, rejectFile: placed.sidecars.rejects ?? null });
      // Said as a round's failure is; without a handler (or once) the next round, or --once's final
      // regeneration, meets the CA still due and raises it then. (It sent the file to failed/, its notices applied.)
      if (crlFailure !== undefined && o.onScheduleError && !o.once) o.onScheduleError(crlFailure);
      return "settled";
    } catch (e) {
      if (!isJpkiError(e) || e.code === "ERR_STORE" || e.code === "ERR_STORE_UNREACHABLE" || e.code === "ERR_STORE_PERMISSION" || e.code === "ERR_WORKSPACE_LOCKED" || e.code === "ERR_PASSPHRASE_WRONG") throw e;
      if (e.code === "ERR_SPOOL_CLAIM_LOST") return lost(e);
      try {
        stageFile(sidecarOf(path, "error"), JSON.stringify(e.toJSON(), null, 2) + "\n").install();
        settle(dirs.failed, dirs.done);
      } catch (e2) {
        if (isJpkiError(e2, "ERR_SPOOL_CLAIM_LOST")) return lost(e2);
        throw e2;
      }
      counts.files++;
      counts.failed++;
      o.onFile?.(name, { error: e });
      return "settled";
    } finally {
      clearInterval(heartbeat);
      working.delete(path);
    }
  };
  // The start-up round (on a first start, or after a restore: every CRL and OCSP signing certificate of every CA)
  // stops between CAs on SIGTERM, as a file stops between batches: what was published stays published, the rest is
  // due at the next start. It ran to its end, a minute for 94 CAs, and a service manager's stop timeout killed it.
  if (!o.signal.aborted) await tick();
  while (!o.signal.aborted) {
    const claimed = claim();
    if (!claimed) {
      await tick();
      if (Date.now() - swept >= (o.tempSweepMs ?? TEMP_SWEEP_MS)) sweepSpoolTemps(); // a counter killed while this watcher runs
      if (o.once) {
        // A one-shot run (an operator's recovery after a crash) leaves no revocation unpublished,
        // whatever the interval says.
        // Said through onCrl as the schedule's are: they were counted in the total, and logged nowhere.
        for (const p of await updater.regenerateDirty()) published({ ...p, why: "dirty" });
        break;
      }
      try {
        await sleep(o.pollMs, o.signal);
      } catch {
        break; // aborted while idle
      }
      continue;
    }
    if ((await work(claimed.name, claimed.path)) === "stopped") break; // left in processing/: the next start resumes it
    await tick();
  }
  return { ...counts };
}
