/**
 * CrlRevocationDays (GET /v1/overview's revocation counts) when its counting thread cannot be made: the Worker
 * constructor throws ERR_WORKER_INIT_FAILED at the process's thread limit (a container's pids.max, systemd's
 * TasksMax), and every overview failed with that raw error. The file is then counted in the calling thread: the
 * same answer. The Worker is a stand-in here (test/thread-limit.ts); the thread itself: overview.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { CrlRevocationDays } from "./overview.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

describe("CrlRevocationDays at the process's thread limit", () => {
  it("counts in the calling thread, each time, instead of failing the overview", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-overview-limit-"));
    writeFileSync(join(dir, "13-sig.crl"), "not a CRL: what is wrong with it is the answer either way");
    // any module that exists: the stand-in never starts it
    const days = new CrlRevocationDays(dir, { thread: new URL(import.meta.url) });
    const here = new CrlRevocationDays(dir);
    const record = { path: "13-sig.crl", number: 1n } as Parameters<CrlRevocationDays["of"]>[1];
    for (let i = 0; i < 2; i++) expect(await days.of("13-sig", record)).toEqual(await here.of("13-sig", record));
    expect(await here.of("13-sig", record)).toEqual({ problem: "unreadable" });
  });
});
