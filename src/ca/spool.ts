/**
 * The spool watcher behind `jpki watch DIR`: producers drop complete notice files into DIR (write them under
 * a dot-name or elsewhere, then rename: only *.jsonl, *.ndjson and *.csv not starting with "." are taken).
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
 * applied twice). Several watchers on one spool are safe: a claim is a rename, which only one wins, to
 * processing/PID~NAME, PID the claiming watcher's. A file there is that watcher's while it runs; once it is gone
 * (killed, stopped), the next watcher takes the file over by renaming it to its own PID, again a rename only one
 * wins. (A file in processing/ under its bare name, left by an older version, is taken over the same way.)
 *
 * Only a regular file is read. Anything else claimed under a notice file's name goes to failed/ unread, with
 * ERR_FILE_UNUSABLE: a FIFO would block the watcher for ever (even SIGTERM could not end it: the stop signal
 * is looked at between batches), and a symbolic link would be followed to a file outside the spool, read with
 * the watcher's rights, its records copied into a reject file beside it.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleepFor } from "node:timers/promises";
import type { DueReason } from "../crl/schedule.js";
import type { PublishedCrl } from "../crl/publisher.js";
import type { CrlUpdater } from "../crl/updater.js";
import { JpkiError, isJpkiError } from "../errors.js";
import { IssuanceSweepSchedule, type IssuanceSweepEvent } from "../registry/issuance-sweep.js";
import { processAlive, stageFile, sweepStaleTemps } from "../store/staging.js";
import type { Workspace } from "../workspace/workspace.js";
import { runIngest, type IngestRunResult } from "./ingestion.js";

const SPOOL_FILE = /^[^.].*\.(jsonl|ndjson|csv)$/i;
/** A file claimed into processing/: the claiming watcher's process id, then the file's own name. */
const CLAIMED = /^(\d+)~(.+)$/;
/** Claimed files (paths in processing/) this process is working on: its pid alone does not say which. */
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
  /** a CRL outside the store (the Bridge CA's ARL) could not be refreshed; the next tick tries again */
  readonly onScheduleError?: (e: unknown) => void;
  /** each daily sweep of the registry side's issuance information, a failure included (none with `once`) */
  readonly onSweep?: (e: IssuanceSweepEvent) => void;
  /** how the idle loop waits (tests inject one that moves their clock instead) */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export async function watchSpool(ws: Workspace, updater: CrlUpdater, o: WatchOptions): Promise<{ files: number; failed: number; crls: number }> {
  // A one-shot run is a recovery step, over before a sweep would be due: none then.
  if (o.once) return watchFiles(ws, updater, o, undefined);
  // Stopped with the watch, however it ends, so the store is not closed under a sweep in progress.
  const sweepStop = new AbortController();
  const sweep = new IssuanceSweepSchedule({ store: ws.store, clock: ws.clock, signal: sweepStop.signal, ...(o.onSweep ? { onSweep: o.onSweep } : {}) });
  try {
    return await watchFiles(ws, updater, o, sweep);
  } finally {
    sweepStop.abort();
    await sweep.settled();
  }
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

async function watchFiles(ws: Workspace, updater: CrlUpdater, o: WatchOptions, sweep: IssuanceSweepSchedule | undefined): Promise<{ files: number; failed: number; crls: number }> {
  if (!isDir(o.dir)) {
    throw new JpkiError("ERR_FILE_NOT_FOUND", `spool directory ${o.dir}: not found or not a directory (create it, or check the path)`);
  }
  const dirs = { processing: join(o.dir, "processing"), done: join(o.dir, "done"), failed: join(o.dir, "failed") };
  for (const d of Object.values(dirs)) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    sweepStaleTemps(d);
  }
  const schedule = updater.schedule(o.crlIntervalMs, o.onScheduleError ? { onOtherError: o.onScheduleError } : {});
  const sleep = o.sleep ?? ((ms: number, signal: AbortSignal) => sleepFor(ms, undefined, { signal }));
  let files = 0;
  let failed = 0;
  let crls = 0;
  const tick = async () => {
    for (const p of await schedule.tick()) {
      if (p.superseded) continue;
      crls++;
      o.onCrl?.(p);
    }
    // When due, after the tick's CRLs are out; it runs beside what follows, which never waits for it.
    sweep?.poke();
  };
  const claim = (): { name: string; path: string } | undefined => {
    const mine = (name: string) => join(dirs.processing, `${process.pid}~${name}`);
    // Resume interrupted files first: those of a watcher no longer running (or of an older version's bare name).
    // A file another live watcher claimed is its own: ingesting it here too, the second to finish found it gone.
    for (const f of readdirSync(dirs.processing).sort()) {
      const m = CLAIMED.exec(f);
      const name = m ? m[2]! : f;
      if (!SPOOL_FILE.test(name)) continue;
      const from = join(dirs.processing, f);
      const owner = m ? Number(m[1]) : undefined;
      if (owner === process.pid) {
        if (!working.has(from)) return { name, path: from }; // stopped earlier in this process
        continue;
      }
      if (owner !== undefined && processAlive(owner)) continue;
      if (existsSync(mine(name))) continue; // a file of the same name of ours comes first
      try {
        renameSync(from, mine(name));
        return { name, path: mine(name) };
      } catch {
        // another watcher took it over first
      }
    }
    for (const f of readdirSync(o.dir).filter((f) => SPOOL_FILE.test(f)).sort()) {
      if (existsSync(mine(f))) continue;
      try {
        renameSync(join(o.dir, f), mine(f));
        return { name: f, path: mine(f) };
      } catch {
        // another watcher took it, or it vanished: try the next one
      }
    }
    return undefined;
  };
  await tick();
  while (!o.signal.aborted) {
    const claimed = claim();
    if (!claimed) {
      await tick();
      if (o.once) {
        // A one-shot run (an operator's recovery after a crash) leaves no revocation unpublished,
        // whatever the interval says.
        for (const p of await updater.regenerateDirty()) if (!p.superseded) crls++;
        break;
      }
      try {
        await sleep(o.pollMs, o.signal);
      } catch {
        break; // aborted while idle
      }
      continue;
    }
    const { name, path } = claimed;
    working.add(path);
    const stamp = ws.clock.now().toISOString().replace(/[:.]/g, "-");
    const dest = (d: string) => (existsSync(join(d, name)) ? join(d, `${stamp}-${name}`) : join(d, name));
    try {
      const unusable = unusableEntry(path, name);
      if (unusable) throw unusable;
      const r = await runIngest(ws, {
        source: path,
        format: "auto",
        rejectPath: `${dest(dirs.done)}.rejects.jsonl`,
        batchSize: o.batchSize,
        crlIntervalMs: schedule.intervalMs,
        updater,
        signal: o.signal,
      });
      if (r.stopped) {
        o.onFile?.(name, r);
        break; // leave it in processing/: the next start resumes it
      }
      renameSync(path, dest(dirs.done));
      files++;
      o.onFile?.(name, r);
    } catch (e) {
      if (!isJpkiError(e) || e.code === "ERR_STORE" || e.code === "ERR_STORE_UNREACHABLE" || e.code === "ERR_STORE_PERMISSION" || e.code === "ERR_WORKSPACE_LOCKED" || e.code === "ERR_PASSPHRASE_WRONG") throw e;
      const target = dest(dirs.failed);
      renameSync(path, target);
      stageFile(`${target}.error.json`, JSON.stringify(e.toJSON(), null, 2) + "\n").install();
      files++;
      failed++;
      o.onFile?.(name, { error: e });
    } finally {
      working.delete(path);
    }
    await tick();
  }
  return { files, failed, crls };
}
