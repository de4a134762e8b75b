/**
 * A notice run that revoked nothing is still reported done (and a spool file settles into done/): what it applied
 * to the registry must be on disk first. With SQLite's synchronous=NORMAL a commit is durable only once the WAL is
 * synced; a CRL's install syncs it (crl/publisher.ts), but such a run installs no CRL.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { runIngest } from "./ingestion.js";

describe("runIngest and durability", () => {
  it("syncs what it committed before it returns, also when no notice revoked anything", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-ingest-durable-"));
    const ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock("2026-05-01T00:00:00Z") });
    try {
      const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
      const residentCode = makeResidentCode("0000000777");
      await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", fourItems: items, status: "active" }]);
      const source = join(dir, "notices.jsonl");
      const after = { ...items, address: "東京都千代田区千代田２番２号" }; // a move that revokes nothing: no certificate
      writeFileSync(source, `${JSON.stringify({ noticeId: "N-1", residentCode, kind: "relocation", effectiveDate: "2026-04-01", sequence: 1, municipalityCode: "131016", after })}\n`);
      const events: string[] = [];
      const store = ws.store;
      const commit = store.commitNoticeBatch.bind(store);
      const sync = store.syncCommitted.bind(store);
      Object.assign(store, {
        commitNoticeBatch: async (...a: Parameters<typeof commit>) => {
          const r = await commit(...a);
          events.push("commit");
          return r;
        },
        syncCommitted: async () => {
          await sync();
          events.push("sync");
        },
      });
      const r = await runIngest(ws, { source, format: "auto", rejectPath: join(dir, "rejects.jsonl"), batchSize: 100, crlIntervalMs: 60_000, updater: undefined });
      expect(r.applied).toBe(1);
      expect(r.revocationsByCa).toEqual({});
      expect(events.at(-1)).toBe("sync");
      expect(events.lastIndexOf("sync")).toBeGreaterThan(events.lastIndexOf("commit"));
      // what was synced is the notice's application: the same notice again is known
      const again = await runIngest(ws, { source, format: "auto", rejectPath: join(dir, "rejects2.jsonl"), batchSize: 100, crlIntervalMs: 60_000, updater: undefined });
      expect([again.applied, again.duplicates]).toEqual([0, 1]);
    } finally {
      await ws.close();
    }
  });
});
