/**
 * SQLite's WAL checkpointer thread (checkpointer.ts) when it cannot be made: the Worker constructor throws
 * ERR_WORKER_INIT_FAILED at the process's thread limit (a container's pids.max, systemd's TasksMax). The store's
 * bulk writes go on, the connection checkpointing as it did before the thread existed (sqlite.ts #afterBulk).
 * The Worker is a stand-in here (test/thread-limit.ts).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { WalCheckpointer } from "./checkpointer.js";
import { SqliteStore } from "./sqlite.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

describe("SqliteStore's checkpointer at the process's thread limit", () => {
  it("commits notice batches all the same, and they read back after a reopen", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-ckpt-limit-")), "jpki.db");
    expect(() => new WalCheckpointer(path)).toThrow(expect.objectContaining({ code: "ERR_WORKER_INIT_FAILED" }));
    const s = SqliteStore.open(path, { create: true, settleFrames: 16 });
    const batch = (k: number) =>
      s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
        commit: {
          at: new Date(0),
          notices: Array.from({ length: 20 }, (_, i) => ({ noticeId: `L-${k}-${i}`, residentCode: `l${k}-${i}`, sequence: 1, kind: "death", body: "q".repeat(600), status: "applied" as const, revocations: 0 })),
          sequences: [],
          revocations: [],
          relinks: [],
          dirtyCas: [],
        },
      }));
    try {
      for (let k = 0; k < 3; k++) await batch(k);
    } finally {
      await s.close();
    }
    const again = SqliteStore.open(path);
    try {
      expect((await again.getNotice("L-2-19"))?.status).toBe("applied");
    } finally {
      await again.close();
    }
  });
});
