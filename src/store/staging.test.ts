/** Staged files: written piece by piece to a temporary sibling, flushed, then installed by a rename or discarded. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openStagingFile, stageFile } from "./staging.js";

describe("openStagingFile", () => {
  it("writes in pieces, flushes early on request, and installs the whole file under its name", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    const f = openStagingFile(target);
    f.write(Buffer.from("head-"));
    f.write(Buffer.alloc(100_000, 1));
    await f.flush();
    f.write(Buffer.from("-tail"));
    expect(existsSync(target)).toBe(false);
    const staged = f.finish();
    expect(() => f.write(Buffer.from("late"))).toThrow(/closed/);
    staged.install();
    const data = readFileSync(target);
    expect(data.length).toBe(5 + 100_000 + 5);
    expect(data.subarray(-5).toString()).toBe("-tail");
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["a.crl"]);
  });

  it("finishAsync syncs on the thread pool, closes, and installs the whole file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    const f = openStagingFile(target);
    f.write(Buffer.from("head-"));
    await f.flush();
    f.write(Buffer.from("tail"));
    const staged = await f.finishAsync();
    expect(() => f.write(Buffer.from("late"))).toThrow(/closed/);
    await expect(f.finishAsync()).rejects.toThrow(/closed/);
    expect(existsSync(target)).toBe(false);
    staged.install();
    expect(readFileSync(target, "utf8")).toBe("head-tail");
    expect(readdirSync(dir)).toEqual(["a.crl"]);
  });

  it("discard removes the temporary file, open or finished, and leaves the target alone", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-staging-"));
    const target = join(dir, "a.crl");
    stageFile(target, "old").install();
    const open = openStagingFile(target);
    open.write(Buffer.from("new"));
    open.discard();
    const finished = openStagingFile(target);
    finished.write(Buffer.from("new"));
    finished.finish().discard();
    expect(readdirSync(dir)).toEqual(["a.crl"]);
    expect(readFileSync(target, "utf8")).toBe("old");
  });
});
