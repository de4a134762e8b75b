import Database from "better-sqlite3";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pbkdf2 } from "node:crypto";
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

/** Fails the test instead of hanging it: a writer stuck in settled() is the failure looked for. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Fills libuv's pool with `n` key derivations queued at once (each a few tens of ms); `pending()` says how many have
 * not finished, `done` settles when all have. A batch's signatures hold the pool like this.
 */
function busyPool(n: number): { pending(): number; done: Promise<void> } {
  let left = n;
  const done = Promise.all(
    Array.from({ length: n }, () => new Promise<void>((resolve, reject) => pbkdf2("p", "s", 100_000, 32, "sha256", (e) => (left--, e ? reject(e) : resolve())))),
  ).then(() => undefined);
  return { pending: () => left, done };
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
    await within(5000, cp.settled(), "settled()");
    // … and every later wait returns at once
    cp.kick();
    await within(1000, cp.settled(), "settled() after the thread failed");
    await within(1000, cp.close(), "close()");
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
      const deadline = Date.now() + 10_000;
      while (cp.walFrames === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(cp.walFrames).toBeGreaterThanOrEqual(200);
      await within(10_000, cp.settled(), "settled()");
      // The next write transaction starts the WAL over: what was reported before the wait no longer counts.
      expect(cp.walFrames).toBe(0);
      insert.run();
      cp.kick();
      await within(10_000, cp.settled(), "settled()");
      const [c] = db.pragma("wal_checkpoint(PASSIVE)") as Array<{ log: number }>;
      expect(c!.log).toBeLessThan(200); // started over
    } finally {
      await within(5000, cp.close(), "close()");
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
      await within(10_000, cp.close(), "close()");
      await within(1000, cp.close(), "a second close()");
      // whatever the thread copied or not, the database reads whole
      expect(db.prepare("SELECT count(*) FROM t").pluck().get()).toBe(2000);
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    } finally {
      db.close();
    }
  });

  it("syncs the WAL on its own thread: a sync asked while libuv's pool is full answers before the pool's queue drains", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.prepare("INSERT INTO t VALUES (randomblob(3000))").run();
      await within(10_000, cp.syncWal(), "the first syncWal()"); // the thread started
      const queued = 64;
      const pool = busyPool(queued);
      db.prepare("INSERT INTO t VALUES (randomblob(3000))").run();
      await within(30_000, cp.syncWal(), "syncWal()");
      // node:fs's open would have waited for every derivation queued before it (a few were still running after it,
      // on the pool's other threads): this one answers with most of the queue still there.
      expect(pool.pending()).toBeGreaterThan(queued / 2);
      await pool.done;
    } finally {
      await within(5000, cp.close(), "close()");
      db.close();
    }
  });

  it("answers a sync of a WAL that is not there (every frame checkpointed, the file gone) as done", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.close();
      rmSync(`${path}-wal`, { force: true }); // as SQLite deletes it when its last connection closes
      await within(10_000, cp.syncWal(), "syncWal()");
    } finally {
      await within(5000, cp.close(), "close()");
    }
  });

  it("rejects a sync with ThreadGone when the thread ended without answering, so the caller syncs another way", async () => {
    const cp = new WalCheckpointer(join(mkdtempSync(join(tmpdir(), "jpki-ckpt-")), "gone.db"));
    await expect(within(10_000, cp.syncWal(), "syncWal()")).rejects.toBeInstanceOf(ThreadGone);
    await expect(within(1000, cp.syncWal(), "syncWal() after the thread failed")).rejects.toBeInstanceOf(ThreadGone);
    await within(1000, cp.close(), "close()");
  });

  it("reports the sync's own error, not a success and not ThreadGone", async () => {
    const { path, db } = walDatabase();
    const cp = new WalCheckpointer(path);
    try {
      db.prepare("INSERT INTO t VALUES (1)").run();
      await within(10_000, cp.syncWal(), "the first syncWal()");
      // A WAL the thread cannot open (a symbolic link to itself where the file was): its error comes back.
      db.close();
      rmSync(`${path}-wal`, { force: true });
      symlinkSync(`${path}-wal`, `${path}-wal`);
      await expect(within(10_000, cp.syncWal(), "syncWal()")).rejects.toMatchObject({ code: "ELOOP" });
    } finally {
      await within(5000, cp.close(), "close()");
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
