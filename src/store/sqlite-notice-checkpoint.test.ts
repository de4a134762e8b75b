/**
 * Notice batches are copied back by the checkpointer's thread every NOTICES_PER_CHECKPOINT notices (four batches of
 * the default size), not after each batch; what is left when the run asks for durability is asked for then.
 */
import Database from "better-sqlite3";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runIngest } from "../ca/ingestion.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { WalCheckpointer } from "./checkpointer.js";
import { SqliteStore } from "./sqlite.js";

describe("SQLite notice batches and the checkpointer", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** 4500 residents and a relocation notice for each, in a workspace of `dir`: the notices' file. */
  async function movesOf4500(ws: Workspace, dir: string): Promise<string> {
    const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
    const codes = Array.from({ length: 4500 }, (_, i) => makeResidentCode(String(1000 + i).padStart(10, "0")));
    await ws.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    // A move within the municipality each: applied, revoking nothing (no certificates).
    const after = { ...items, address: "東京都千代田区千代田２番２号" };
    const source = join(dir, "notices.jsonl");
    writeFileSync(source, codes.map((residentCode, i) => JSON.stringify({ noticeId: `N-${i}`, residentCode, kind: "relocation", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016", after })).join("\n") + "\n");
    return source;
  }
  const ingest = (ws: Workspace, dir: string, source: string) =>
    runIngest(ws, { source, format: "jsonl", rejectPath: join(dir, "rejects.jsonl"), batchSize: 500, crlIntervalMs: 30_000, updater: undefined, readerThread: false });

  it("asks for a checkpoint every 4000 notices and once at the run's end, not after every batch", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-notice-ckpt-"));
    const ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock("2026-05-01T00:00:00Z") });
    try {
      const source = await movesOf4500(ws, dir);
      const kick = vi.spyOn(WalCheckpointer.prototype, "kick");
      const r = await ingest(ws, dir, source);
      expect([r.applied, r.rejected]).toEqual([4500, 0]);
      // Nine batches of 500: one checkpoint after the eighth (4000 notices), one for the ninth when the run syncs.
      expect(kick).toHaveBeenCalledTimes(2);
    } finally {
      await ws.close();
    }
  }, 120_000);

  it("checkpointed() asks for the batches not yet asked for and resolves once they are in the database file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-notice-ckpt-"));
    const ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock("2026-05-01T00:00:00Z") });
    try {
      const source = await movesOf4500(ws, dir);
      // Without the run's closing sync (which asks for the ninth batch's copy-back), the ninth waits for its turn.
      vi.spyOn(ws.store, "syncCommitted").mockResolvedValue(undefined);
      const kick = vi.spyOn(WalCheckpointer.prototype, "kick");
      expect((await ingest(ws, dir, source)).applied).toBe(4500);
      expect(kick).toHaveBeenCalledTimes(1);
      const store = ws.store as SqliteStore;
      await store.checkpointed();
      expect(kick).toHaveBeenCalledTimes(2);
      // The database file alone, without its WAL, holds every batch once the copy-back has run.
      const copy = join(dir, "file-only.db");
      copyFileSync(join(dir, "ws", "jpki.db"), copy);
      const db = new Database(copy);
      try {
        expect(db.prepare("SELECT count(*) FROM notices").pluck().get()).toBe(4500);
      } finally {
        db.close();
      }
      // Nothing waiting: no kick, and it still waits for the one asked for last (done already).
      await store.checkpointed();
      expect(kick).toHaveBeenCalledTimes(2);
    } finally {
      await ws.close();
    }
  }, 120_000);
});
