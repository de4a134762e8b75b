/**
 * The notice reader thread (ca/notice-reader.ts) when no thread can be made: the Worker constructor throws
 * ERR_WORKER_INIT_FAILED at a thread limit (a container's pids.max, systemd's TasksMax), and ingestion used to fail
 * with that raw error. The file is then read in the ingesting thread: the same batches. The Worker is a stand-in
 * here; the thread itself runs from dist/ (test/integration/notice-reader.test.ts).
 */
import { describe, expect, it, vi } from "vitest";
import { FixedClock } from "../pki/clock.js";
import type { ReadBatch } from "./notices.js";
import { readBatchesOnThread } from "./notice-reader.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

describe("readBatchesOnThread at the process's thread limit", () => {
  it("reads the batches in this thread instead of failing the ingestion", async () => {
    const batches: ReadBatch[] = [
      { notices: [], rejects: [{ line: 1, code: "ERR_NOTICE_MALFORMED", message: "line 1" } as never], read: 1 },
      { notices: [], rejects: [], read: 2 },
    ];
    async function* inThread() {
      yield* batches;
    }
    const got: ReadBatch[] = [];
    for await (const b of readBatchesOnThread({ path: "/nonexistent", format: "jsonl", batchSize: 10, clock: new FixedClock("2028-01-01T00:00:00Z"), inThread })) got.push(b);
    expect(got).toEqual(batches);
  });
});
