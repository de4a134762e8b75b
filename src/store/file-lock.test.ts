import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
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
