/**
 * The access log writes whole lines, in order, and everything on close; it makes its file owner-only.
 */
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AccessLog } from "./access-log.js";

describe("AccessLog", () => {
  it("keeps every line whole and in order across large and timed flushes, and writes the rest on close", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-log-")), "access.log");
    const log = new AccessLog(path);
    for (let i = 0; i < 5000; i++) log.write(`{"i":${i},"pad":"${"x".repeat(i % 97)}"}\n`);
    await new Promise((r) => setTimeout(r, 300)); // a timed flush happens
    for (let i = 5000; i < 5003; i++) log.write(`{"i":${i}}\n`);
    log.close();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 5003 }, (_, i) => i));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    log.write("after close\n"); // ignored, never thrown
    expect(readFileSync(path, "utf8")).not.toContain("after close");
  });
});
