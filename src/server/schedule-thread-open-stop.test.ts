/**
 * `jpki serve`'s CRL schedule thread told to stop while it opens the workspace (its own store connection, after the
 * serving thread's). The thread opened without the stop: it went on waiting — for a PostgreSQL server that stopped
 * answering, up to the connect timeout; for another process's upgrade of a SQLite store, up to the lock timeout —
 * and then failed with that wait's error (ERR_STORE_UNREACHABLE, ERR_WORKSPACE_LOCKED), which failed the serve's
 * clean stop. Now the open ends at the stop and the thread ends without a word: a clean stop. The thread is the
 * compiled one (dist/), watched by superviseScheduleThread as openCrlScheduleThread watches it.
 */
import { readdirSync, readlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../test/integration/helpers.js";
import { until } from "../../test/until.js";
import { SCHEMA_VERSION } from "../store/sqlite.js";
import { newThread } from "../thread.js";
import { Workspace } from "../workspace/workspace.js";
import { superviseScheduleThread, type ScheduleThreadData } from "./schedule-thread.js";

const MODULE = new URL("../../dist/src/server/schedule-thread-main.js", import.meta.url);

/**
 * Starts the thread on `data`; stops it (as serve's SIGTERM does) once `waiting()` says its open waits. "At once" is
 * told by the outcome, not a time (a bound on the stop's time, 5 s, then 1 s, is what a starved host can pass): an
 * open the stop did not end waits out its own timeout — a connect timeout of 10 min here, past vitest's; SQLite's
 * 20 s lock timeout — and fails with that wait's error, which the supervisor reports (`errors`).
 */
async function stopWhileOpening(data: ScheduleThreadData, waiting: () => boolean): Promise<{ outcome: unknown; errors: unknown[] }> {
  const stop = new AbortController();
  const errors: unknown[] = [];
  const worker = newThread(MODULE, { workerData: { jpkiSchedule: data } });
  // Past the open's own timeouts: a thread still open then is ended, and says so (onError), which this test fails on.
  const supervised = superviseScheduleThread(worker, { signal: stop.signal, stopWaitMs: 40_000, onError: (e) => errors.push(e) }).then(
    async (loop) => {
      await loop();
      return "stopped";
    },
    (e: unknown) => e,
  );
  // (500 × 20 ms was the bound: a thread's start and imports take seconds on a loaded host)
  await until(waiting, "the thread to wait in its open of the store", { everyMs: 20 });
  stop.abort();
  return { outcome: await supervised, errors };
}

describe("the CRL schedule thread stopped while it opens the workspace", () => {
  it("a PostgreSQL server that accepts and never answers: the thread ends at once, a clean stop, not ERR_STORE_UNREACHABLE after the connect timeout", async () => {
    // A workspace on PostgreSQL as far as its config.json says: the thread's open goes to the server first.
    const root = tempDir();
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "config.json"), JSON.stringify({ store: "postgres" }));
    const accepted: Socket[] = [];
    // the bytes each connection sent: the client's startup message once it awaits the server's answer
    let startup = 0;
    const silent = createServer((s) => (accepted.push(s), s.on("data", (d: Buffer) => (startup += d.length))));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const storeUrl = `postgres://jpki@127.0.0.1:${(silent.address() as { port: number }).port}/jpki?connect_timeout=600`;
      // waiting: its startup message sent, the server's answer awaited (a fixed 300 ms after the accept stood for it)
      const r = await stopWhileOpening({ root, storeUrl, passphrase: "unused" }, () => startup > 0);
      expect(r.outcome).toBe("stopped");
      expect(r.errors).toEqual([]);
    } finally {
      for (const s of accepted) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  }, 60_000);

  it("a SQLite store another process is upgrading (its write lock held): the thread ends at once, a clean stop, not ERR_WORKSPACE_LOCKED after the lock timeout", async () => {
    const root = join(tempDir(), "ws");
    await (await Workspace.createAsync(root)).close();
    const db = join(root, "jpki.db");
    const set = new Database(db);
    set.pragma(`user_version = ${SCHEMA_VERSION - 1}`); // an opener upgrades it, so waits for the write lock
    set.close();
    const holder = new Database(db);
    holder.exec("BEGIN IMMEDIATE");
    // this process's handles on the store's WAL: the holder's, then the thread's too once it has read the store's
    // version, its lock's first try next (a fixed 300 ms after the thread opened the file stood for "waiting")
    const opened = () => readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === `${db}-wal`;
      } catch {
        return false;
      }
    }).length;
    const before = opened();
    try {
      const r = await stopWhileOpening({ root, passphrase: "unused" }, () => opened() > before);
      expect(r.outcome).toBe("stopped");
      expect(r.errors).toEqual([]);
      expect(holder.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION - 1);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
  }, 60_000);
});
