/**
 * The notice reader thread (ca/notice-reader.ts) when no thread can be made: the Worker constructor throws
 * ERR_WORKER_INIT_FAILED at a thread limit (a container's pids.max, systemd's TasksMax), and ingestion used to fail
 * with that raw error. The file is then read in the ingesting thread: the same batches. The Worker is a stand-in
 * here; the thread itself runs from dist/ (test/integration/notice-reader.test.ts).
 */
import { describe, expect, it, vi } from "vitest";
import { FixedClock } from "../pki/clock.js";
import type { ReadBatch } from "./notices.js";
import { batchMessage, readBatchesOnThread } from "./notice-reader.js";

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

describe("batchMessage (what the reader thread posts)", () => {
  it("sends each body as its UTF-8 bytes, views into one buffer that is transferred, not copied", () => {
    const bodies = ['{"noticeId":"a","name":"𠮷野　太郎"}', '{"noticeId":"b","address":"東京都\\u2028"}', "{}"];
    const batch: ReadBatch = { notices: bodies.map((body, i) => ({ line: i + 1, notice: { noticeId: String(i) } as never, body, record: "{}" })), rejects: [], read: 3 };
    const { message, transfer } = batchMessage(batch, 7);
    expect(transfer).toHaveLength(1);
    // views into the buffer transferred (not into the scratch space the next batch is written in)
    expect(message.type === "batch" && message.notices.every((n) => (n.body as Uint8Array).buffer === transfer[0])).toBe(true);
    const got = structuredClone(message, { transfer });
    expect(transfer[0]!.byteLength).toBe(0); // detached here: it moved
    if (got.type !== "batch") throw new Error(got.type);
    expect(got.bytes).toBe(7);
    const buffers = got.notices.map((n) => (n.body instanceof Uint8Array ? n.body.buffer : undefined));
    expect(buffers.every((b) => b !== undefined && b === buffers[0])).toBe(true);
    expect(got.notices.map((n) => Buffer.from(n.body as Uint8Array).toString("utf8"))).toEqual(bodies);
    expect(got.notices.map((n) => n.line)).toEqual([1, 2, 3]);
  });
});
