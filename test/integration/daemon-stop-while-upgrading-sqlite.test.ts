/**
 * SIGTERM while a daemon's start-up waits for another process's upgrade of a SQLite store (slow: spawns the built
 * CLI). The open waited for the write lock in SQLite's busy handler, inside the call, for up to the lock timeout
 * (20 s) with the event loop stopped: the signal was acted on only then, and the command exited with
 * ERR_WORKSPACE_LOCKED instead of its clean stop's 0. Now the wait is retried without blocking and ends at the
 * signal (SqliteStore.openAsync), as PostgreSQL's does (daemon-stop-while-opening.test.ts).
 */
import { mkdirSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCHEMA_VERSION } from "../../src/store/sqlite.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { freePort, jpkiProcess, stopWhileWaiting, tempDir } from "./helpers.js";

let ws: string;
let db: string;
let spool: string;
let holder: Database.Database;

/** The store's schema version, set by hand: one below makes every opener upgrade it, so wait for the write lock. */
function setVersion(v: number): void {
  const c = new Database(db);
  c.pragma(`user_version = ${v}`);
  c.close();
}

beforeAll(async () => {
  const dir = tempDir();
  ws = join(dir, "ws");
  await (await Workspace.createAsync(ws)).close();
  db = join(ws, "jpki.db");
  spool = join(dir, "spool");
  mkdirSync(spool);
});
afterAll(() => {
  if (holder?.open) holder.close();
});

/** Whether process `pid` has the store file open (it is past SQLite's open, in the upgrade's wait for the lock). */
function hasStoreOpen(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === db;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

describe("SIGTERM while a daemon's start-up waits for another process's upgrade of its SQLite store", () => {
  it("watch and serve stop at once with their clean stop's exit 0, nothing upgraded; the next start runs", async () => {
    setVersion(SCHEMA_VERSION - 1);
    // another process's upgrade page, as far as an opener can tell: the write lock held
    holder = new Database(db);
    holder.exec("BEGIN IMMEDIATE");
    const port = await freePort();
    const runs: Array<[string[], (stdout: string) => void]> = [
      [["watch", spool, "--poll", "50"], (out) => expect(out).toMatch(/^processed 0 files \(0 failed\), published 0 CRLs, stopped by signal$/m)],
      [["serve", "--no-schedule", "--no-ocsp", "--listen", `127.0.0.1:${port}`], (out) => expect(out).toBe("")],
    ];
    for (const [command, says] of runs) {
      // well into the wait: the signal comes in the middle of it, not as it began
      const r = await stopWhileWaiting(ws, command, { waiting: hasStoreOpen, settleMs: 500 });
      expect(r.endedBeforeSignal, r.stderr).toBe(false);
      expect({ command, code: r.code }, r.stderr).toEqual({ command, code: 0 });
      expect(r.afterSignalMs, command.join(" ")).toBeLessThan(1_000);
      expect(r.stderr, command.join(" ")).not.toMatch(/ERR_/);
      says(r.stdout);
    }
    holder.exec("ROLLBACK");
    holder.close();
    const c = new Database(db, { readonly: true });
    expect(c.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION - 1);
    c.close();
    // (the schema is in fact current: the version set back by hand is put right before the next start)
    setVersion(SCHEMA_VERSION);
    const next = await jpkiProcess(ws, ["watch", spool, "--once"]);
    expect(next.code, next.stderr).toBe(0);
  }, 60_000);
});
