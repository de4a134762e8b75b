/**
 * `jpki watch DIR`: a spool-directory daemon. Producers drop complete notice files into DIR (write them
 * under a dot-name or elsewhere, then rename: only *.jsonl, *.ndjson and *.csv not starting with "." are
 * taken). Each file is claimed by renaming it into DIR/processing/, ingested, and moved to DIR/done/
 * (with its .rejects.jsonl when some notices were rejected) or DIR/failed/ when it could not be read.
 * SIGTERM/SIGINT stop after the batch in progress; a file interrupted that way stays in processing/ and is
 * resumed first on the next start (ingestion is idempotent, so nothing is lost or applied twice).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Command } from "commander";
import { CrlUpdater } from "../../index.js";
import { JpkiError, isJpkiError } from "../../index.js";
import type { Workspace } from "../../index.js";
import { Context, withStopSignal, withWorkspace } from "../context.js";
import type { Io } from "../output.js";
import { formatIngest, runIngest, type IngestRunResult } from "./notices.js";

const SPOOL_FILE = /^[^.].*\.(jsonl|ndjson|csv)$/i;

export interface WatchOptions {
  readonly dir: string;
  readonly pollMs: number;
  readonly once: boolean;
  readonly batchSize: number;
  readonly signal: AbortSignal;
  readonly onFile?: (name: string, r: IngestRunResult | { error: JpkiError }) => void;
}

export async function watchSpool(ws: Workspace, updater: CrlUpdater, o: WatchOptions): Promise<{ files: number; failed: number }> {
  const dirs = { processing: join(o.dir, "processing"), done: join(o.dir, "done"), failed: join(o.dir, "failed") };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  let files = 0;
  let failed = 0;
  const claim = (): string | undefined => {
    // Resume interrupted files first.
    const resumed = readdirSync(dirs.processing).filter((f) => SPOOL_FILE.test(f)).sort()[0];
    if (resumed) return resumed;
    for (const f of readdirSync(o.dir).filter((f) => SPOOL_FILE.test(f)).sort()) {
      try {
        renameSync(join(o.dir, f), join(dirs.processing, f));
        return f;
      } catch {
        // another watcher took it, or it vanished: try the next one
      }
    }
    return undefined;
  };
  while (!o.signal.aborted) {
    const name = claim();
    if (!name) {
      if (o.once) break;
      try {
        await sleep(o.pollMs, undefined, { signal: o.signal });
      } catch {
        break; // aborted while idle
      }
      continue;
    }
    const path = join(dirs.processing, name);
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const dest = (d: string) => (existsSync(join(d, name)) ? join(d, `${stamp}-${name}`) : join(d, name));
    try {
      const r = await runIngest(ws, {
        source: path,
        format: "auto",
        rejectPath: `${dest(dirs.done)}.rejects.jsonl`,
        batchSize: o.batchSize,
        crlIntervalMs: 30_000,
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
      if (!isJpkiError(e) || e.code === "ERR_STORE" || e.code === "ERR_WORKSPACE_LOCKED" || e.code === "ERR_PASSPHRASE_WRONG") throw e;
      const target = dest(dirs.failed);
      renameSync(path, target);
      writeFileSync(`${target}.error.json`, JSON.stringify(e.toJSON(), null, 2) + "\n");
      files++;
      failed++;
      o.onFile?.(name, { error: e });
    }
  }
  return { files, failed };
}

export function makeWatchCommand(io: Io): Command {
  return new Command("watch")
    .description("run as a daemon: ingest notice files dropped into a spool directory, regenerate CRLs")
    .argument("<dir>", "spool directory (processing/, done/ and failed/ are made inside it)")
    .option("--poll <ms>", "how often to look for new files", "1000")
    .option("--once", "process the files present now, then exit")
    .option("--batch-size <n>", "notices per transaction", "1000")
    .addHelpText(
      "after",
      `
Drop files atomically: write "notices.jsonl.part" or ".notices.jsonl", then rename to "notices.jsonl".
SIGTERM or SIGINT stops after the batch in progress; nothing is lost and the next start resumes.

Example:
  JPKI_PASSPHRASE=… jpki --workspace /srv/jpki watch /srv/jpki/spool`,
    )
    .action(async (dir: string, o: { poll: string; once?: boolean; batchSize: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const pollMs = Number(o.poll);
      const batchSize = Number(o.batchSize);
      if (!Number.isInteger(pollMs) || pollMs < 10) throw new JpkiError("ERR_USAGE", "--poll must be a whole number of milliseconds ≥ 10");
      if (!Number.isInteger(batchSize) || batchSize < 1) throw new JpkiError("ERR_USAGE", "--batch-size must be a whole number ≥ 1");
      const passphrase = await ctx.passphrase();
      await withStopSignal((signal) =>
        withWorkspace(ctx, async (ws) => {
          const updater = new CrlUpdater(ws, passphrase);
          await updater.preflight();
          const spool = resolve(io.cwd, dir);
          if (!ctx.out.json) ctx.out.info(`watching ${spool} (pid ${process.pid}); SIGTERM stops cleanly`);
          const results: unknown[] = [];
          const r = await watchSpool(ws, updater, {
            dir: spool,
            pollMs,
            once: Boolean(o.once),
            batchSize,
            signal,
            onFile: (name, res) => {
              results.push({ file: name, ...("error" in res ? { error: res.error.toJSON() } : res) });
              if (!ctx.out.json) ctx.out.info("error" in res ? `${name}: failed [${res.error.code}] ${res.error.message}` : `${name}:\n  ${formatIngest(res).split("\n").join("\n  ")}`);
            },
          });
          ctx.out.result({ ...r, stopped: signal.aborted, results }, `processed ${r.files} files (${r.failed} failed)${signal.aborted ? ", stopped by signal" : ""}`);
        }),
      );
    });
}
