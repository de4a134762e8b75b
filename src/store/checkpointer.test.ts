import Database from "better-sqlite3";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { after, WalCheckpointer } from "./checkpointer.js";
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
