/**
 * `jpki --json watch`: stderr is a stream of JSON objects, one a line (each CRL published is one), so a reader that
 * parses each line never meets a plain-text warning among them.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { copyOfTemplate, tokyoCasTemplate } from "../../../test/ca-template.js";
import { CrlUpdater } from "../../crl/updater.js";
import { JpkiError } from "../../errors.js";
import type { Io } from "../output.js";
import { run } from "../program.js";

let template: string;
beforeAll(async () => {
  template = await tokyoCasTemplate("watch-json", new Date().toISOString());
});
afterEach(() => vi.restoreAllMocks());

describe("jpki --json watch: every stderr line is a JSON object", () => {
  it("a CRL tick that failed and the workspace's own warning are JSON lines, with code and message", async () => {
    const ws = copyOfTemplate(template, "watch-json");
    const spool = join(ws, "..", "spool");
    mkdirSync(spool);
    // the workspace's own warning (said by every command that opens it): a file others could read, made owner-only again
    chmodSync(join(ws, "config.json"), 0o644);
    // a disk that filled up: every CRL round fails, and the watch goes on, saying so
    vi.spyOn(CrlUpdater.prototype, "publishDue").mockRejectedValue(new JpkiError("ERR_STORE", "no space left on the CRL disk"));
    let stdout = "";
    let stderr = "";
    const io: Io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { JPKI_PASSPHRASE: "pw" }, cwd: ws };
    const running = run(["--workspace", ws, "--json", "watch", spool, "--poll", "10", "--no-ocsp"], io);
    try {
      await vi.waitFor(() => expect(stderr).toContain("crl-tick-failed"), { timeout: 30_000, interval: 20 });
    } finally {
      process.emit("SIGTERM"); // the watch's stop signal (withStopSignal)
    }
    expect(await running).toBe(0);
    const lines = stderr.trimEnd().split("\n");
    const events = lines.map((l) => JSON.parse(l) as { event?: string; code?: string; message?: string });
    expect(events.find((e) => e.event === "crl-tick-failed")).toMatchObject({ code: "ERR_STORE", message: "no space left on the CRL disk", retry: "next CRL tick" });
    expect(events.find((e) => e.event === "message")?.message).toMatch(/could be read or written by other users: made owner-only again/);
    expect(events.every((e) => typeof e.event === "string")).toBe(true);
    expect(JSON.parse(stdout)).toMatchObject({ stopped: true });
  });
});
