import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it, vi } from "vitest";
import type { EncodedEntries, EntriesTotal } from "../profile/crl-entry.js";

// The collections the stream asks for, in order with the blocks it hands out.
const events: Array<"collect" | number> = [];
vi.mock("./young-generation.js", () => ({ collectYoungGeneration: () => events.push("collect") }));
const { SqliteStore } = await import("./sqlite.js");

describe("SQLite CRL stream from the revocation log", () => {
  it("hands out at most a page of blocks between two young-generation collections, and every block once, in order", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-logstream-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    // 24 blocks of 300 KB (7.2 MB), as a large CA's log holds (≈ 460 KB a block at national scale). Their bytes are
    // only handed on (none is expired at the cut-off), so they need not be entries to be streamed.
    const raw = new Database(path);
    const blocks = Array.from({ length: 24 }, (_, i) => Buffer.alloc(300_000, i + 1));
    const insert = raw.prepare("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES ('13-sig', 1000, ?, ?, ?)");
    for (const b of blocks) insert.run(Date.UTC(2030, 0, 1), b, Buffer.alloc(8000));
    raw.close();

    events.length = 0;
    const got: Buffer[] = [];
    let total: EntriesTotal | undefined;
    for await (const c of s.crlEntries("13-sig", { expiredBefore: new Date(0), withTotal: true }) as AsyncIterable<EncodedEntries | EntriesTotal>) {
      if ("totalBytes" in c) total = c;
      else (got.push(c.der), events.push(c.der.length));
    }
    await s.close();

    expect(total).toEqual({ totalBytes: 24 * 300_000, totalCount: 24_000 });
    expect(got.length).toBe(24);
    expect(got.every((b, i) => b.equals(blocks[i]!))).toBe(true);
    // Each page's Buffers reuse the memory of the last only when the last was collected before they were read: more
    // than a few blocks between collections is fresh memory, a page fault each 4 KB (see LOG_STREAM_PAGE).
    let since = 0;
    let most = 0;
    for (const e of events) (e === "collect" ? (since = 0) : (since += e)), (most = Math.max(most, since));
    expect(most).toBeLessThanOrEqual(4 * 300_000);
    expect(events.filter((e) => e === "collect").length).toBeGreaterThanOrEqual(5);
  });
});
