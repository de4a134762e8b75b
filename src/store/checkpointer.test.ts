import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, symlinkSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { until } from "../../test/until.js";
import { after, ThreadGone, WalCheckpointer } from "./checkpointer.js";
import { SqliteStore } from "./sqlite.js";

/** A WAL-mode database with a table to write into, closed by the caller. */
function walDatabase(): { path: string; db: Database.Database } {
  const path = join(mkdtempSync(join(tmpdir(), "jpki-ckpt-")), "jpki.db");
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("wal_autocheckpoint = 0"); // only the thread copies back here
  db.exec("CREATE TABLE t (x BLOB)");
  return { path, db };
}

/**
 * Fails the test instead of hanging it: a writer stuck in settled() is the failure looked for. The bound is for that
 * hang, not a measure of speed: a thread's start, a checkpoint and an fsync on a loaded host (load 20, a GC pause,
 * a slow disk) took seconds where they take milliseconds on a quiet one, so every bound here is a minute, and a
 * passing wait costs no more for it (test/until.ts says the same of waits by asking).
 */
const HANG_MS = 60_000;
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Every thread of libuv's pool held until `release()`, and `n` more calls queued behind them: each is an open of a
 * FIFO for reading, which blocks its pool thread until a writer opens the FIFO. A batch's signatures hold the pool
 * like this. `pending()` says how many of the opens have not finished: none can before the release, however slow the
 * host, so what answers meanwhile did not go through the pool. (Key derivations filling the pool for a while were
 * raced against instead: an fsync slower than their queue — a loaded disk — found it drained.)
 */
function heldPool(n: number): { pending(): number; release(): Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), "jpki-ckpt-pool-"));
  const threads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const fifos = Array.from({ length: threads + n }, (_, i) => {
    const path = join(dir, `f${i}`);
    execFileSync("mkfifo", [path]);
    const f = { path, opened: false, writer: undefined as number | undefined, read: open(path, "r") };
    void f.read.then(() => (f.opened = true), () => (f.opened = true));
    return f;
  });
  return {
    pending: () => fifos.filter((f) => !f.opened).length,
    release: async () => {
      // A writer's open without blocking succeeds once the reader is in its open (ENXIO before: still queued).
      await until(() => {
        for (const f of fifos) {
          if (f.writer !== undefined) continue;
          try {
            f.writer = openSync(f.path, constants.O_WRONLY | constants.O_NONBLOCK);
          } catch (e) {
            if ((e as { code?: string }).code !== "ENXIO") throw e;
          }
        }
        return fifos.every((f) => f.opened);
      }, "the pool's held opens to finish", { timeoutMs: HANG_MS });
      for (const f of fifos) {
        await (await f.read).close();
        closeSync(f.writer!);
      }
    },
  };
}

describe("WalCheckpointer", () => {
  it("lets a writer waiting in settled() go on when the thread is gone, though its kicks came from microtasks with no turn of the event loop", async () => {
    // The thread cannot open a database that is not there: it fails before it ever reports progress, so the
    // wait can end only on the thread's 'error'/'exit' events, which need the writer's event loop to turn.
    const cp = new WalCheckpointer(join(mkdtempSync(join(tmpdir(), "jpki-ckpt-")), "gone.db"));
    for (let k = 0; k < 5; k++) {
      cp.kick();
      await Promise.resolve();
    }
    await within(HANG_MS, cp.settled(), "settled()");
    // … and every later wait returns at once
    cp.kick();
    await within(HANG_MS, cp.settled(), "settled() after the thread failed");
    await within(HANG_MS, cp.close(), "close()");
  });

  it("reports the WAL's frames after a checkpoint, and 0 after a wait until the thread's next report", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      const insert = db.prepare("INSERT INTO t VALUES (randomblob(3000))");
      db.transaction(() => {
        for (let i = 0; i < 200; i++) insert.run();
      })();
      cp.kick();
      await until(() => cp.walFrames > 0, "the thread's first report", { timeoutMs: HANG_MS, everyMs: 5 });
      expect(cp.walFrames).toBeGreaterThanOrEqual(200);
      await within(HANG_MS, cp.settled(), "settled()");
      // The next write transaction starts the WAL over: what was reported before the wait no longer counts.
      expect(cp.walFrames).toBe(0);
      insert.run();
      cp.kick();
      await within(HANG_MS, cp.settled(), "settled()");
      const [c] = db.pragma("wal_checkpoint(PASSIVE)") as Array<{ log: number }>;
      expect(c!.log).toBeLessThan(200); // started over
    } finally {
      await within(HANG_MS, cp.close(), "close()");
      db.close();
    }
  });

  it("closes while a checkpoint is in flight, and a second close returns at once", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      const insert = db.prepare("INSERT INTO t VALUES (randomblob(3000))");
      db.transaction(() => {
        for (let i = 0; i < 2000; i++) insert.run();
      })();
      cp.kick();
      await within(HANG_MS, cp.close(), "close()");
      await within(HANG_MS, cp.close(), "a second close()");
      // whatever the thread copied or not, the database reads whole
      expect(db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(2000);
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    } finally {
      db.close();
    }
  });

  it("syncs the WAL on its own thread: a sync asked while every thread of libuv's pool is held answers before any of them is free", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.prepare("INSERT INTO t VALUES (randomblob(3000))").run();
      await within(HANG_MS, cp.syncWal(), "the first syncWal()"); // the thread started
      const queued = 8;
      const pool = heldPool(queued);
      try {
        db.prepare("INSERT INTO t VALUES (randomblob(3000))").run();
        // node:fs's open would wait for the pool, which frees no thread until the release below: it would never answer
        await within(HANG_MS, cp.syncWal(), "syncWal() with libuv's pool held");
        expect(pool.pending()).toBe(Number(process.env.UV_THREADPOOL_SIZE || 4) + queued);
      } finally {
        await pool.release();
      }
    } finally {
      await within(HANG_MS, cp.close(), "close()");
      db.close();
    }
  });

  it("answers a sync of a WAL that is not there (every frame checkpointed, the file gone) as done", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.close();
      rmSync(`${path}-wal`, { force: true }); // as SQLite deletes it when its last connection closes
      await within(HANG_MS, cp.syncWal(), "syncWal()");
    } finally {
      await within(HANG_MS, cp.close(), "close()");
    }
  });

  it("rejects a sync with ThreadGone when the thread ended without answering, so the caller syncs another way", async () => {
    const cp = new WalCheckpointer(join(mkdtempSync(join(tmpdir(), "jpki-ckpt-")), "gone.db"));
    await expect(within(HANG_MS, cp.syncWal(), "syncWal()")).rejects.toBeInstanceOf(ThreadGone);
    await expect(within(HANG_MS, cp.syncWal(), "syncWal() after the thread failed")).rejects.toBeInstanceOf(ThreadGone);
    await within(HANG_MS, cp.close(), "close()");
  });

  it("reports the sync's own error, not a success and not ThreadGone", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.prepare("INSERT INTO t VALUES (1)").run();
      await within(HANG_MS, cp.syncWal(), "the first syncWal()");
      // A WAL the thread cannot open (a symbolic link to itself where the file was): its error comes back.
      db.close();
      rmSync(`${path}-wal`, { force: true });
      symlinkSync(`${path}-wal`, `${path}-wal`);
      await expect(within(HANG_MS, cp.syncWal(), "syncWal()")).rejects.toMatchObject({ code: "ELOOP" });
    } finally {
      await within(HANG_MS, cp.close(), "close()");
    }
  });

  it("orders kick numbers modulo 2^32, as the shared 32-bit slot holds them: a long-running serve wraps", () => {
    expect(after(5, 4)).toBe(true);
    expect(after(4, 5)).toBe(false);
    expect(after(4, 4)).toBe(false);
    // across the wrap (2^31 - 1, then -2^31 as (n + 1) | 0 gives): compared as plain numbers, a writer would wait for ever
    const last = 0x7fff_ffff;
    const next = (last + 1) | 0;
    expect(next).toBe(-0x8000_0000);
    expect(after(next, last)).toBe(true);
    expect(after(last, next)).toBe(false);
  });
});

describe("SqliteStore.open settleFrames", () => {
  it("takes a whole number of frames ≥ 0 and refuses anything else with ERR_USAGE (NaN never waited, a negative waited before every batch)", () => {
    for (const bad of [Number.NaN, -1, 1.5, Infinity]) {
      const path = join(mkdtempSync(join(tmpdir(), "jpki-ckpt-")), "jpki.db");
      expect(() => SqliteStore.open(path, { create: true, settleFrames: bad }), String(bad)).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    }
  });
});
