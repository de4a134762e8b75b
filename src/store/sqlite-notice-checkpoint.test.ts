/**
 * Notice batches are copied back by the checkpointer's thread every NOTICES_PER_CHECKPOINT notices (four batches of
 * the default size), not after each batch; what is left when the run asks for durability is asked for then.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { runIngest } from "../ca/ingestion.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { WalCheckpointer } from "./checkpointer.js";

describe("SQLite notice batches and the checkpointer", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("asks for a checkpoint every 4000 notices and once at the run's end, not after every batch", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-notice-ckpt-"));
    const ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock("2026-05-01T00:00:00Z") });
    try {
      const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
      const codes = Array.from({ length: 4500 }, (_, i) => makeResidentCode(String(1000 + i).padStart(10, "0")));
      await ws.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      // A move within the municipality each: applied, revoking nothing (no certificates).
      const after = { ...items, address: "東京都千代田区千代田２番２号" };
      const source = join(dir, "notices.jsonl");
      writeFileSync(source, codes.map((residentCode, i) => JSON.stringify({ noticeId: `N-${i}`, residentCode, kind: "relocation", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016", after })).join("\n") + "\n");
      const kick = vi.spyOn(WalCheckpointer.prototype, "kick");
      const r = await runIngest(ws, { source, format: "jsonl", rejectPath: join(dir, "rejects.jsonl"), batchSize: 500, crlIntervalMs: 30_000, updater: undefined, readerThread: false });
      expect([r.applied, r.rejected]).toEqual([4500, 0]);
      // Nine batches of 500: one checkpoint after the eighth (4000 notices), one for the ninth when the run syncs.
      expect(kick).toHaveBeenCalledTimes(2);
    } finally {
      await ws.close();
    }
  }, 120_000);
});
