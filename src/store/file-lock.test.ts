import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { withFileLock } from "./file-lock.js";

describe("withFileLock", () => {
  it("runs under the lock and lets go of it after", async () => {
    const lock = join(mkdtempSync(join(tmpdir(), "jpki-lock-")), ".lock");
    expect(await withFileLock(lock, "the test", async () => 1)).toBe(1);
    expect(await withFileLock(lock, "the test", async () => 2)).toBe(2);
  });

  it("takes over at once a killed holder's lock whose taker was killed too (its takeover marker names a dead process)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-lock-"));
    const lock = join(dir, ".lock");
    writeFileSync(lock, "2147483646 1", { mode: 0o600 });
    writeFileSync(`${lock}.takeover`, "2147483645 1", { mode: 0o600 });
    expect(await withFileLock(lock, "the test", async () => readdirSync(dir))).toEqual([".lock"]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("says what is wrong with a directory or a link planted at the lock's path, at once, instead of blaming another process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-lock-"));
    mkdirSync(join(dir, ".a.lock"));
    symlinkSync(join(dir, "elsewhere"), join(dir, ".b.lock"));
    for (const [name, what] of [[".a.lock", "a directory"], [".b.lock", "a symbolic link"]] as const) {
      const e = await withFileLock(join(dir, name), "the test", async () => 1).catch((x: unknown) => x);
      expect(isJpkiError(e, "ERR_WORKSPACE_LOCKED"), String(e)).toBe(true);
      expect((e as Error).message).toContain(`is not a lock file (${what})`);
    }
  });
});
