/**
 * The access log when its thread cannot be made: the Worker constructor throws ERR_WORKER_INIT_FAILED at the
 * process's thread limit (a container's pids.max, systemd's TasksMax), and `jpki serve` did not start (the raw
 * error from AccessLog's constructor). Now the log is as after its thread failed: requests are recorded without a
 * throw, every line is counted as dropped (what /metrics exports), the cause goes to onError once, close() returns.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { AccessLog } from "./access-log.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

describe("AccessLog at the process's thread limit", () => {
  it("counts every line as dropped and says why once, instead of failing the server's start", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-limit-")), "access.log");
    const errors: Error[] = [];
    const log = new AccessLog(path, { onError: (e) => errors.push(e) });
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["ERR_WORKER_INIT_FAILED"]);
    for (let i = 0; i < 3; i++) log.record(Date.parse("2026-11-30T12:00:00Z"), "GET", "/crl/13-sig.crl", 304, 0.1, "127.0.0.1", "anonymous");
    expect(log.dropped).toBe(3);
    log.reopen(); // SIGHUP: nothing to reopen, no throw
    await log.close();
    log.record(0, "GET", "/after-close", 200, 0, "", "anonymous"); // after close: not written, counted dropped, as with a thread
    expect(log.dropped).toBe(4);
    expect(readFileSync(path, "utf8")).toBe("");
  });
});
