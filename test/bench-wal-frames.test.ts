import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { WalFrames } from "../bench/wal-frames.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "jpki-wal-frames-"));
  dirs.push(d);
  return d;
}

/** A database in WAL mode that checkpoints only when told, with a table `t` and an index on its random key. */
function open(path: string): Database.Database {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("wal_autocheckpoint = 0");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k BLOB NOT NULL, v TEXT NOT NULL); CREATE INDEX t_k ON t (k)");
  return db;
}

const pagesOf = (db: Database.Database, name: string) => db.prepare("SELECT count(*) FROM dbstat WHERE name = ?").pluck().get(name) as number;

/** A WAL file: header with `salt`, then frames (page, commit size) each with `salt` unless given another. */
function walFile(pageSize: number, salt: number, frames: ReadonlyArray<{ page: number; commit?: number; salt?: number }>): Buffer {
  const header = Buffer.alloc(32);
  header.writeUInt32BE(0x377f0682, 0);
  header.writeUInt32BE(3007000, 4);
  header.writeUInt32BE(pageSize, 8);
  header.writeUInt32BE(salt, 16);
  header.writeUInt32BE(salt, 20);
  return Buffer.concat([
    header,
    ...frames.map((f) => {
      const b = Buffer.alloc(24 + pageSize);
      b.writeUInt32BE(f.page, 0);
      b.writeUInt32BE(f.commit ?? 0, 4);
      b.writeUInt32BE(f.salt ?? salt, 8);
      b.writeUInt32BE(f.salt ?? salt, 12);
      return b;
    }),
  ]);
}

describe("bench/wal-frames: WAL frames of a store's commits, by B-tree (issue 8)", () => {
  it("counts each page a transaction wrote once, under the table or index that holds it", () => {
    const path = join(tmp(), "a.db");
    const db = open(path);
    // The schema's frames copied back: the insert's transaction starts the log over, alone in it.
    db.pragma("wal_checkpoint(PASSIVE)");
    const wal = new WalFrames(path);
    const ins = db.prepare("INSERT INTO t (k, v) VALUES (randomblob(16), ?)");
    db.transaction(() => {
      for (let i = 0; i < 3000; i++) ins.run("x".repeat(40));
    })();
    const taken = wal.take();
    // every frame of the log, which holds that transaction only
    expect(taken).toBe((statSync(`${path}-wal`).size - 32) / (24 + 4096));
    const by = wal.byTree(db);
    // the table and its index were built by this one transaction: each of their pages is in it exactly once
    expect(by.get("t")).toBe(pagesOf(db, "t"));
    expect(by.get("t_k")).toBe(pagesOf(db, "t_k"));
    expect(pagesOf(db, "t_k")).toBeGreaterThan(10);
    db.close();
  });

  it("follows the log when it starts over after a checkpoint, without counting the older frames left behind it", () => {
    const path = join(tmp(), "b.db");
    const db = open(path);
    const ins = db.prepare("INSERT INTO t (k, v) VALUES (randomblob(16), 'v')");
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) ins.run();
    })();
    const wal = new WalFrames(path);
    expect(wal.take()).toBeGreaterThan(20);
    // Everything copied back, no reader: the next writer writes its frames from the top of the log again.
    expect(db.pragma("wal_checkpoint(PASSIVE)")).toEqual([{ busy: 0, log: expect.any(Number), checkpointed: expect.any(Number) }]);
    db.prepare("UPDATE t SET v = 'w' WHERE id = 1").run();
    // one leaf of t (v is not indexed); the frames of the first transaction further on are the old log's
    expect(wal.take()).toBe(1);
    expect(wal.take()).toBe(0);
    expect(wal.frames).toBeGreaterThan(21);
    db.close();
  });

  it("counts a transaction's frames only once its commit frame is there, and stops at another log's frames", () => {
    const path = join(tmp(), "c.db");
    const wal = new WalFrames(path);
    expect(wal.take()).toBe(0); // no log yet
    writeFileSync(`${path}-wal`, walFile(512, 7, [{ page: 5 }, { page: 6 }]));
    expect(wal.take()).toBe(0); // not committed yet
    writeFileSync(`${path}-wal`, walFile(512, 7, [{ page: 5 }, { page: 6 }, { page: 5, commit: 9 }, { page: 8, salt: 6 }, { page: 9, commit: 9, salt: 6 }]));
    expect(wal.take()).toBe(3);
    expect(wal.take()).toBe(0);
    // skip: past what is committed, uncounted; a later commit counts alone
    const later = new WalFrames(path);
    later.skip();
    expect(later.frames).toBe(0);
    writeFileSync(`${path}-wal`, walFile(512, 7, [{ page: 5 }, { page: 6 }, { page: 5, commit: 9 }, { page: 11, commit: 9 }]));
    expect(later.take()).toBe(1);
    expect([...later.byTree(new Database(":memory:"))]).toEqual([["(free)", 1]]);
    const db = new Database(":memory:");
    // page 5 twice (two frames of one transaction), page 6 once; no database holds them here
    expect(wal.byTree(db)).toEqual(new Map([["(free)", 3]]));
    db.close();
  });
});
